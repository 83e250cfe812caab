/**
 * What the bench prints: the machine it ran on, the capture's make-up, the
 * results table (messages/s, row changes/s, MB/s) and the ratios to
 * pg-logical-replication. Producing the numbers is `_measure.ts`'s job.
 */
import type { CaseResult } from "./_measure.ts";

/** Where the numbers were measured. */
export interface MachineInfo {
  deno: string;
  v8: string;
  cpu: string;
  cpus: number;
  os: string;
}

/** Reads the CPU model from /proc/cpuinfo (Linux), else reports it unknown. */
export async function machineInfo(): Promise<MachineInfo> {
  let cpu = "unknown";
  try {
    const text = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(text)?.[1].trim() ?? cpu;
  } catch { /* not Linux */ }
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    cpu,
    cpus: navigator.hardwareConcurrency,
    os: `${Deno.build.os} ${Deno.build.arch}`,
  };
}

/** `170010` → `"17.10"`; before PostgreSQL 10, `90624` → `"9.6.24"`. */
export function formatServerVersion(serverVersionNum: number): string {
  if (serverVersionNum >= 100000) {
    return `${Math.floor(serverVersionNum / 10000)}.${serverVersionNum % 10000}`;
  }
  const major = Math.floor(serverVersionNum / 10000);
  const minor = Math.floor(serverVersionNum / 100) % 100;
  return `${major}.${minor}.${serverVersionNum % 100}`;
}

/** How many of each pgoutput message type (by its type byte) the capture holds. */
export function countByType(payloads: readonly Uint8Array[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const payload of payloads) {
    const type = String.fromCharCode(payload[0]);
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

/** The results table; rates use the median round, plus messages/s of the best round. */
export function formatTable(results: readonly CaseResult[], payloadBytes: number): string {
  const header = [
    "case",
    "median ms",
    "best ms",
    "messages/s",
    "(best)",
    "row changes/s",
    "MB/s",
  ];
  const rows = results.map((result) => {
    const seconds = result.medianMs / 1000;
    return [
      `(${result.key}) ${result.label}`,
      result.medianMs.toFixed(1),
      result.bestMs.toFixed(1),
      formatCount(result.counts.messages / seconds),
      formatCount(result.counts.messages / (result.bestMs / 1000)),
      formatCount(result.counts.rowChanges / seconds),
      (payloadBytes / 1e6 / seconds).toFixed(1),
    ];
  });
  const widths = header.map((_, column) =>
    Math.max(...[header, ...rows].map((row) => row[column].length))
  );
  const line = (row: string[]) =>
    row.map((cell, column) => column === 0 ? cell.padEnd(widths[0]) : cell.padStart(widths[column]))
      .join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * `case / other` on messages/s, from the median rounds and from the best
 * rounds; both cases decode the same messages, so it is a ratio of times.
 */
export function formatRatio(ours: CaseResult, theirs: CaseResult): string {
  const median = theirs.medianMs / ours.medianMs;
  const best = theirs.bestMs / ours.bestMs;
  return `(${ours.key}) / (${theirs.key}): ${median.toFixed(2)}× median, ${best.toFixed(2)}× best`;
}

/** `1234567` → `"1.23 M"`, `12345` → `"12.3 k"`. */
function formatCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k`;
  return value.toFixed(0);
}
