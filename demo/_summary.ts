/**
 * The demo's closing summary: rows and checksum per node, then per
 * subscription the transactions its worker applied and its lag, read from
 * the subscriber's `spock.lag_tracker` (as `spock status` reads it).
 */
import type { WorkerSummary } from "../mod/daemon/mod.ts";
import type { MeshSubscription } from "./_mesh.ts";
import type { TableChecksum } from "./_workload.ts";

/** A subscription's lag as its subscriber's `spock.lag_tracker` reports it. */
export interface SubscriptionLag {
  subscription: string;
  /** `replication_lag_bytes`: provider WAL not yet applied. */
  bytes: number;
  /** `replication_lag`: how old the oldest unapplied work may be (near 0 when caught up). */
  lagMs: number;
}

/** Reads the lag of every subscription from its subscriber. */
export function readLags(subscriptions: MeshSubscription[]): Promise<SubscriptionLag[]> {
  return Promise.all(subscriptions.map(async ({ name, node, provider }) => {
    const [row] = await node.sql`
      select replication_lag_bytes::bigint as bytes,
        round(extract(epoch from replication_lag) * 1000)::int as lag_ms
      from spock.lag_tracker
      where origin_name = ${provider.name} and receiver_name = ${node.name}`;
    return { subscription: name, bytes: Number(row?.bytes ?? 0), lagMs: row?.lag_ms ?? 0 };
  }));
}

/** Left-aligned columns separated by two spaces; numbers right-aligned. */
function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, col) => Math.max(...cells.map((row) => row[col].length)));
  const numeric = header.map((_, col) => rows.every((row) => typeof row[col] === "number"));
  return cells.map((row) =>
    row.map((cell, col) => numeric[col] ? cell.padStart(widths[col]) : cell.padEnd(widths[col]))
      .join("  ").trimEnd()
  ).join("\n");
}

/** The summary: the nodes' checksums, then the subscriptions' counts and lag. */
export function formatSummary(options: {
  checksums: TableChecksum[];
  subscriptions: MeshSubscription[];
  workers: WorkerSummary[];
  lags: SubscriptionLag[];
}): string {
  const nodes = table(
    ["node", "rows", "checksum (md5 of accounts)"],
    options.checksums.map((sum) => [sum.node, sum.rows, sum.checksum]),
  );
  const subscriptions = table(
    ["subscription", "from → to", "transactions", "lag", "behind"],
    options.subscriptions.map(({ name, node, provider }) => {
      const worker = options.workers.find((w) => w.subscription === name && w.node === node.name);
      const lag = options.lags.find((l) => l.subscription === name);
      return [
        name,
        `${provider.name} → ${node.name}`,
        worker?.transactions ?? 0,
        lag ? `${lag.lagMs} ms` : "?",
        lag ? `${lag.bytes} B` : "?",
      ];
    }),
  );
  const legend = "lag and behind: spock.lag_tracker's replication_lag and replication_lag_bytes";
  return `${nodes}\n\n${subscriptions}\n${legend}\n`;
}
