/**
 * `spock conflicts`: the conflicts a node resolved recently, read from
 * spock.resolutions (written by the apply engine when `save_resolutions` is
 * on). Prints each conflict with both row images for people, or one JSON
 * object per line for scripts. Every filter is a bind parameter.
 */
import { cancellableQuery } from "./_api.ts";
import { formatTime, type Row, writeOut } from "./_output.ts";
import { TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import type { Command } from "./command.ts";
import { listingFlags, parseListing, wantedTableSql } from "./_listing.ts";

/**
 * The newest `$3` resolutions logged in the last `$1` seconds, oldest first.
 * `$2` is a table as `schema.table` or `table` (parsed like a regclass name),
 * matched against relname, which holds quote_ident(schema).quote_ident(table).
 */
const QUERY = `
  WITH ${wantedTableSql(2)},
  quoted AS (SELECT (SELECT array_agg(quote_ident(p)) FROM unnest(w.parts) p) AS parts FROM wanted w),
  newest AS (
    SELECT r.* FROM spock.resolutions r, quoted w
    WHERE r.log_time >= now() - make_interval(secs => $1::bigint)
      AND (w.parts IS NULL
        OR (cardinality(w.parts) = 2 AND r.relname = w.parts[1] || '.' || w.parts[2])
        OR (cardinality(w.parts) = 1 AND right(r.relname, length(w.parts[1]) + 1) = '.' || w.parts[1]))
    ORDER BY r.log_time DESC, r.id DESC
    LIMIT $3::bigint)
  SELECT id, node_name::text, log_time, relname, idxname, conflict_type, conflict_resolution,
    local_origin, local_tuple, local_xid::text, local_timestamp, remote_origin, remote_tuple,
    remote_xid::text, remote_timestamp, remote_lsn::text
  FROM newest ORDER BY log_time, id`;

/** Which row a resolution kept, when it says so. */
function winner(resolution: unknown): string | undefined {
  switch (resolution) {
    case "apply_remote":
    case "insert":
      return "remote";
    case "keep_local":
    case "skip":
      return "local";
    default:
      return undefined;
  }
}

/** A row image: the logged JSON, parsed when it is JSON (it always is when the engine wrote it). */
function tuple(text: unknown): unknown {
  if (typeof text !== "string") return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The text block of one conflict: a header line, then the local and the remote row. */
function describeConflict(row: Row): string {
  const header = [
    formatTime(row.log_time),
    row.relname ?? "(unknown table)",
    row.conflict_type ?? "(unknown type)",
    `resolution ${row.conflict_resolution ?? "unknown"}`,
  ];
  const kept = winner(row.conflict_resolution);
  if (kept !== undefined) header.push(`winner ${kept}`);
  if (row.idxname) header.push(`index ${row.idxname}`);
  const side = (name: string, image: unknown, details: [string, unknown][]) => {
    const parts = [`  ${name.padEnd(6)} ${image == null ? "(no row)" : String(image)}`];
    for (const [label, value] of details) {
      if (value !== null && value !== undefined) parts.push(`${label} ${formatTime(value)}`);
    }
    return parts.join("  ");
  };
  return [
    header.join("  "),
    side("local", row.local_tuple, [
      ["origin", row.local_origin],
      ["at", row.local_timestamp],
      ["xid", row.local_xid],
    ]),
    side("remote", row.remote_tuple, [
      ["origin", row.remote_origin],
      ["at", row.remote_timestamp],
      ["xid", row.remote_xid],
      ["lsn", row.remote_lsn],
    ]),
  ].join("\n") + "\n";
}

/** One JSON object per line: every column, the row images as JSON values. */
function jsonLines(rows: readonly Row[]): string {
  return rows.map((row) =>
    JSON.stringify({
      ...row,
      local_tuple: tuple(row.local_tuple),
      remote_tuple: tuple(row.remote_tuple),
    }) + "\n"
  ).join("");
}

/** `spock conflicts` */
export const conflictsCommand: Command = {
  name: "conflicts",
  summary: "Show the conflicts a node resolved recently (spock.resolutions)",
  usage: "spock conflicts (--dsn DSN | --node NAME) [--since DURATION] [--table TABLE] " +
    "[--limit N] [--json]",
  description: "Show the conflicts a node resolved recently, oldest first: when, on which " +
    "table, the conflict type, the resolution and which row won, then the local and the " +
    "remote row with their origins, commit times, xids and the remote commit LSN.\n" +
    "Conflicts are logged in spock.resolutions only while engine.save_resolutions is on, and " +
    "kept for engine.resolutions_retention_days.",
  flags: { ...TARGET_FLAGS, ...listingFlags("conflicts") },
  async run(flags, _positionals, context) {
    const { seconds, limit, table } = parseListing(flags, conflictsCommand);
    const dsn = targetDsn(flags, context, conflictsCommand);
    return await withTarget(dsn, context, conflictsCommand, async (sql) => {
      const rows = await cancellableQuery(sql, QUERY, [seconds, table, limit], context.signal);
      const text = flags.json
        ? jsonLines(rows)
        : rows.length === 0
        ? `No conflicts logged in the last ${flags.since}${table === null ? "" : ` on ${table}`}\n`
        : rows.map(describeConflict).join("\n");
      await writeOut(context.stdout, text);
      return 0;
    });
  },
};
