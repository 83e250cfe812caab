/**
 * The waits of cluster operations: each on a position some node reports,
 * polled, with a timeout that names what did not happen.
 */
import { formatLsn, type Lsn, parseLsn } from "../pg/mod.ts";
import type { ClusterNode } from "./cluster_nodes.ts";
import { ClusterError } from "./errors.ts";

const POLL_MS = 200;

/** How long a wait may take and what stops it. */
export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Polls `check` until it returns a value other than undefined.
 *
 * @throws {ClusterError} naming `what` when the timeout passes first.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: WaitOptions,
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      throw new ClusterError(
        `Timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${what}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Emits a sync event on `origin` (Spock's sync_event()); its LSN. */
export async function syncEvent(origin: ClusterNode): Promise<Lsn> {
  const [row] = await origin.sql`select spock.sync_event()::text as lsn`;
  return parseLsn(row.lsn);
}

/** What `node` has applied of `origin`'s changes (its spock.progress), or 0. */
export async function appliedFrom(node: ClusterNode, origin: { id: string }): Promise<Lsn> {
  const [row] = await node.sql`select p.remote_lsn::text as lsn from spock.progress p
    where p.node_id = ${node.id}::oid and p.remote_node_id = ${origin.id}::oid`;
  return row === undefined ? 0n : parseLsn(row.lsn);
}

/** Waits until `node` has applied `origin`'s changes up to `lsn` (wait_for_sync_event). */
export async function waitApplied(
  node: ClusterNode,
  origin: ClusterNode,
  lsn: Lsn,
  options: WaitOptions,
): Promise<void> {
  await waitUntil(
    `${node.name} to apply ${origin.name}'s changes up to ${formatLsn(lsn)}`,
    async () => (await appliedFrom(node, origin)) >= lsn ? true : undefined,
    options,
  );
}

/** A sync event on `origin`, waited for on `node`: `node` has all `origin` wrote before now. */
export async function waitCaughtUp(
  node: ClusterNode,
  origin: ClusterNode,
  options: WaitOptions,
): Promise<void> {
  await waitApplied(node, origin, await syncEvent(origin), options);
}
