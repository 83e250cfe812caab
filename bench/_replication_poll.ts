/**
 * Waiting on a condition with a deadline, as native_baseline.sh's `wait_sub`
 * does: one boolean query every ~10 ms, each its own short transaction (no
 * snapshot or xmin held), returning the time the condition was first seen.
 */
import type postgres from "postgres";

/** How to wait. */
export interface WaitOptions {
  /** Named in the timeout error. */
  what: string;
  /** Pause between polls; default 10 ms. */
  intervalMs?: number;
  /** Default 1,200 s (native_baseline.sh's WAIT_TIMEOUT). */
  timeoutMs?: number;
  /** Called before each poll; throws to give up (e.g. the daemon died). */
  check?: () => void;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` (boolean SQL) until true; returns performance.now() when it was seen. */
export async function waitFor(
  sql: postgres.Sql,
  condition: string,
  options: WaitOptions,
): Promise<number> {
  const deadline = performance.now() + (options.timeoutMs ?? 1_200_000);
  const query = `select coalesce((${condition}), false) as ok`;
  while (true) {
    options.check?.();
    const [{ ok }] = await sql.unsafe(query);
    if (ok) return performance.now();
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${options.what}`);
    await sleep(options.intervalMs ?? 10);
  }
}

/** Inserts the next marker row on the provider (its own transaction); returns its id. */
export async function insertMarker(provider: postgres.Sql): Promise<number> {
  const [{ id }] = await provider.unsafe(
    "insert into bench_marker(id) select coalesce(max(id), 0) + 1 from bench_marker returning id",
  );
  return id;
}

/** Boolean SQL: the marker is visible on the subscriber. */
export function markerVisible(id: number): string {
  return `exists (select 1 from bench_marker where id = ${id})`;
}
