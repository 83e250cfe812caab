/**
 * Output of the management commands: rows as an aligned table for people, or
 * one JSON document for scripts (`--json`). Commands hand over plain rows;
 * this file owns how they look.
 */
import { maskDsn } from "../pg/mod.ts";

const encoder = new TextEncoder();

/** A result row as postgres.js returns it. */
export type Row = Record<string, unknown>;

/** How a result is shaped: a single value, one row, or many rows. */
export type ResultShape = "scalar" | "record" | "setof" | "void";

/** Renders one value for a table cell. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(cell).join(",");
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Renders rows as a psql-like aligned table with a header; columns from the first row. */
export function formatTable(rows: readonly Row[], columns?: readonly string[]): string {
  const names = columns ?? Object.keys(rows[0] ?? {});
  if (names.length === 0) return "";
  const cells = rows.map((row) => names.map((name) => cell(row[name])));
  const widths = names.map((name, i) => Math.max(name.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  const lines = [line([...names]), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const row of cells) lines.push(line(row));
  lines.push(`(${rows.length} ${rows.length === 1 ? "row" : "rows"})`);
  return lines.join("\n") + "\n";
}

/** Turns rows into the text printed for `shape`, as a table or as JSON. */
export function formatResult(rows: readonly Row[], shape: ResultShape, json: boolean): string {
  if (json) {
    const document = shape === "setof" ? rows : shape === "void" ? null : rows[0] ?? null;
    return JSON.stringify(
      document,
      (_key, value) => typeof value === "bigint" ? String(value) : value,
    ) +
      "\n";
  }
  switch (shape) {
    case "void":
      return "";
    case "scalar": {
      const row = rows[0];
      return row === undefined ? "" : cell(Object.values(row)[0]) + "\n";
    }
    case "record":
    case "setof":
      return formatTable(rows);
  }
}

/** Writes `text` to the command's stdout. */
export async function writeOut(stdout: WritableStream<Uint8Array>, text: string): Promise<void> {
  if (text === "") return;
  const writer = stdout.getWriter();
  try {
    await writer.write(encoder.encode(text));
  } finally {
    writer.releaseLock();
  }
}

/** Masks every value of a `dsn`-like column, so listings never print passwords. */
export function maskDsnColumns(rows: Row[]): Row[] {
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map((
        [key, value],
      ) => [key, /dsn$/.test(key) && typeof value === "string" ? maskDsn(value) : value]),
    )
  );
}

/** A time read from the catalog as ISO 8601, or the value as it came. */
export function formatTime(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}
