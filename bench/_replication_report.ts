/**
 * What the replication bench prints: one markdown table per PostgreSQL version
 * with native and spock side by side, the ratio of their times (ours/native,
 * ≤ 1.0 is the goal), live-mode lag and the daemon's peak RSS. Measuring is
 * `_replication_workloads.ts`'s job.
 */
import type { WorkloadResult } from "./_replication_workloads.ts";

/** The results of one engine on one version, in run order. */
export interface EngineResults {
  native: WorkloadResult[];
  spock: WorkloadResult[];
}

const HEADER = [
  "workload",
  "mode",
  "txns",
  "rows",
  "native s",
  "native rate",
  "spock s",
  "spock rate",
  "ratio spock/native (time)",
  "lag p50/p99 ms native",
  "lag p50/p99 ms spock",
  "daemon peak RSS MB",
];

const LABELS: Record<string, string> = {
  "a": "(a) initial sync",
  "b simple-update": "(b) simple-update",
  "b tpcb-like": "(b) tpcb-like",
  "c": "(c) 1 big INSERT txn",
  "d": "(d) single-row INSERT txns",
  "e": "(e) 1 big UPDATE / DELETE txn",
};

/** A markdown table: one row per workload and mode, pairing the engines' results. */
export function formatResultsTable(results: EngineResults): string {
  const keys = [...results.native, ...results.spock].map((r) => `${r.workload}|${r.mode}`);
  const rows = [...new Set(keys)].map((key) => {
    const native = results.native.find((r) => `${r.workload}|${r.mode}` === key);
    const spock = results.spock.find((r) => `${r.workload}|${r.mode}` === key);
    const any = (native ?? spock)!;
    return [
      LABELS[any.workload] ?? any.workload,
      any.mode,
      formatInt(any.txns),
      formatInt(any.rows),
      native ? native.seconds.toFixed(3) : "–",
      native ? formatRate(native) : "–",
      spock ? spock.seconds.toFixed(3) : "–",
      spock ? formatRate(spock) : "–",
      native && spock ? (spock.seconds / native.seconds).toFixed(2) : "–",
      formatLag(native),
      formatLag(spock),
      spock?.peakRssKb ? (spock.peakRssKb / 1024).toFixed(0) : "–",
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(HEADER),
    line(HEADER.map((_, i) => (i < 2 ? "---" : "---:"))),
    ...rows.map(line),
  ].join("\n");
}

/**
 * Totals not in the table: what each provider run did (txns differ between
 * the engines' runs because pgbench -T is time-bound).
 */
export function formatProviderTps(results: EngineResults): string {
  const lines: string[] = [];
  for (const [engine, list] of Object.entries(results)) {
    const parts = (list as WorkloadResult[])
      .filter((r) => r.providerTps !== undefined)
      .map((r) => `${r.workload} ${r.mode} ${Math.round(r.providerTps!)}`);
    if (parts.length > 0) lines.push(`provider TPS during ${engine}'s runs: ${parts.join(", ")}`);
  }
  return lines.join("\n");
}

function formatRate(result: WorkloadResult): string {
  return `${formatInt(result.rate)} ${result.rateUnit}`;
}

function formatLag(result: WorkloadResult | undefined): string {
  if (result?.lag === undefined || result.lag.samples === 0) return "–";
  return `${result.lag.p50Ms.toFixed(1)} / ${result.lag.p99Ms.toFixed(1)}`;
}

function formatInt(value: number): string {
  return Math.round(value).toLocaleString("en");
}
