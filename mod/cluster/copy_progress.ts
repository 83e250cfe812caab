/**
 * Watching a new node's initial copy, which its daemon runs: the sync state
 * of the subscription and of each table, and the rows COPY has written so far
 * (`pg_stat_progress_copy`), reported as lines with a rate.
 */
import { syncStateOfLetter } from "../sync/mod.ts";
import { ClusterError } from "./errors.ts";
import type { ClusterNode } from "./cluster_nodes.ts";
import type { Link } from "./links.ts";

/** Where progress lines go. */
export type TableCopyReporter = (line: string) => void;

const POLL_MS = 500;
const REPORT_EVERY_MS = 2_000;
const NO_DAEMON_HINT_MS = 15_000;

/** The name of a `local_sync_status` letter (the letter itself if it is unknown). */
function stateName(letter: string | undefined): string {
  try {
    return syncStateOfLetter(letter ?? "");
  } catch {
    return String(letter);
  }
}

/**
 * Waits until the link's initial sync is done (catchup or ready), reporting
 * each state, each table copied, and every few seconds the rows of the tables
 * being copied.
 *
 * @throws {ClusterError} when nothing moves for `timeoutMs`.
 */
export async function watchInitialCopy(
  node: ClusterNode,
  link: Link,
  options: { timeoutMs: number; signal?: AbortSignal; report: TableCopyReporter },
): Promise<void> {
  const { report } = options;
  let state: string | undefined;
  const done = new Set<string>();
  const rows = new Map<string, { rows: number; at: number }>();
  let movedAt = performance.now();
  let reportedAt = performance.now();
  let hinted = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const now = performance.now();
    const [sub] = await node.sql`select sync_status::text as status from spock.local_sync_status
      where sync_subid = ${link.id}::oid and sync_relname is null`;
    if (sub === undefined) {
      throw new ClusterError(`Subscription ${link.name} is gone from ${node.name}`);
    }
    if (sub.status !== state) {
      state = sub.status;
      movedAt = now;
      report(`  ${link.name}: ${stateName(sub.status)}`);
    }
    const tables = await node.sql`select sync_nspname::text || '.' || sync_relname::text as name,
        sync_status::text as status
      from spock.local_sync_status where sync_subid = ${link.id}::oid and sync_relname is not null
      order by 1`;
    for (const table of tables) {
      if ((table.status === "r" || table.status === "y") && !done.has(table.name)) {
        done.add(table.name);
        movedAt = now;
        const copied = rows.get(table.name);
        report(`  copied ${table.name}${copied === undefined ? "" : ` (${copied.rows} rows)`}`);
      }
    }
    if (state === "u" || state === "r") return;
    const copying = await node.sql`select n.nspname::text || '.' || c.relname::text as name,
        p.tuples_processed::int8 as rows
      from pg_catalog.pg_stat_progress_copy p
      join pg_catalog.pg_class c on c.oid = p.relid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where p.datname = current_database() and p.command = 'COPY FROM'`;
    const lines: string[] = [];
    for (const table of copying) {
      const count = Number(table.rows);
      const before = rows.get(table.name);
      if (before === undefined || before.rows !== count) movedAt = now;
      const rate = before === undefined || now === before.at
        ? undefined
        : Math.round((count - before.rows) / ((now - before.at) / 1000));
      if (before === undefined || now - reportedAt >= REPORT_EVERY_MS) {
        lines.push(
          `  copying ${table.name}: ${count} rows${rate === undefined ? "" : ` (${rate} rows/s)`}`,
        );
      }
      rows.set(table.name, { rows: count, at: now });
    }
    if (lines.length > 0 && now - reportedAt >= REPORT_EVERY_MS) {
      for (const line of lines) report(line);
      reportedAt = now;
    }
    if (!hinted && state === "i" && now - movedAt > NO_DAEMON_HINT_MS) {
      hinted = true;
      report(`  the copy has not started: is a daemon (spock run) serving ${node.name}?`);
    }
    if (now - movedAt > options.timeoutMs) {
      throw new ClusterError(
        `Timed out after ${
          Math.round(options.timeoutMs / 1000)
        } s without progress of ${link.name}'s ` +
          `initial copy on ${node.name} (state ${stateName(state)})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
