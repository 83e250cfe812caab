/**
 * The demo's closing summary: rows and checksum per node, then per
 * subscription the transactions its worker applied and its lag, read from
 * the subscriber's `spock.lag_tracker` and `spock.progress`.
 */
import type { WorkerSummary } from "../mod/daemon/mod.ts";
import type { MeshSubscription } from "./_mesh.ts";
import type { TableChecksum } from "./_workload.ts";

/** A subscription's lag as its subscriber records it. */
export interface SubscriptionLag {
  subscription: string;
  /** `lag_tracker.replication_lag_bytes`: provider WAL not yet received. */
  bytes: number;
  /** Remote commit to local apply of the last transaction received (`spock.progress`). */
  applyMs: number;
}

/** Reads the lag of every subscription from its subscriber. */
export function readLags(subscriptions: MeshSubscription[]): Promise<SubscriptionLag[]> {
  return Promise.all(subscriptions.map(async ({ name, node, provider }) => {
    const [row] = await node.sql`
      select t.replication_lag_bytes::bigint as bytes,
        round(extract(epoch from p.last_updated_ts - p.remote_commit_ts) * 1000)::int as apply_ms
      from spock.lag_tracker t
      join spock.node o on o.node_name = t.origin_name
      join spock.local_node l on true
      join spock.progress p on p.node_id = l.node_id and p.remote_node_id = o.node_id
      where t.origin_name = ${provider.name} and t.receiver_name = ${node.name}`;
    return { subscription: name, bytes: Number(row?.bytes ?? 0), applyMs: row?.apply_ms ?? 0 };
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
        lag ? `${lag.applyMs} ms` : "?",
        lag ? `${lag.bytes} B` : "?",
      ];
    }),
  );
  const legend = "lag: provider commit to local apply, last transaction; " +
    "behind: spock.lag_tracker.replication_lag_bytes";
  return `${nodes}\n\n${subscriptions}\n${legend}\n`;
}
