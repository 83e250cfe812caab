/**
 * Commits sent to an apply session whose acknowledgement never came, kept
 * across the subscription's apply sessions. PostgreSQL 16+ moves a replication
 * origin forward with an abort record too: an apply session terminated
 * after its COMMIT query set up the origin but before the commit itself
 * (`pg_terminate_backend`, a fast shutdown) leaves the origin past a
 * transaction whose rows were rolled back. Resuming there would lose it.
 *
 * Each commit reports its local xid as it runs; the next session asks the
 * server how those transactions ended and puts the origin back to the end
 * of the last one that committed:
 *
 *   sent k-1 (xid 700) ✓ committed   sent k (xid 701) ✗ aborted
 *   origin says k's end               → put back to k-1's end
 *
 * A commit whose xid never arrived (the connection was cut) is judged by the
 * ones after it, or else the origin is trusted: the server then ran the
 * whole query, COMMIT included.
 */
import type { Lsn } from "../pg/mod.ts";

/** One commit in flight: the end LSNs before and after it, and its local xid once known. */
export interface CommitInDoubt {
  readonly previousEndLsn: Lsn;
  readonly endLsn: Lsn;
  /** `undefined`: not reported yet; `null`: the transaction wrote nothing (no xid). */
  xid: string | null | undefined;
}

/** How the server says a transaction ended (`pg_xact_status`), `null` when it does not know. */
export type XactStatus = "committed" | "aborted" | "in progress" | null;

/** The commits of one subscription whose outcome its apply session has not seen. */
export class CommitsInDoubt {
  #entries: CommitInDoubt[] = [];

  /** Commits still in doubt, oldest first. */
  get entries(): readonly CommitInDoubt[] {
    return this.#entries;
  }

  /** Records a commit as it is sent. */
  sent(previousEndLsn: Lsn, endLsn: Lsn): CommitInDoubt {
    const entry: CommitInDoubt = { previousEndLsn, endLsn, xid: undefined };
    this.#entries.push(entry);
    return entry;
  }

  /** The commit was acknowledged: its outcome is known. */
  settled(entry: CommitInDoubt): void {
    const at = this.#entries.indexOf(entry);
    if (at >= 0) this.#entries.splice(at, 1);
  }

  /** Forgets every entry: a session resolved them, or put the origin back past them. */
  clear(): void {
    this.#entries = [];
  }
}

/**
 * Where the origin must stand at most, given how the commits in doubt ended
 * (`statuses` by xid): the previous end LSN of the first that aborted;
 * `"wait"` while one is still in progress (its session is ending);
 * `undefined` when the origin can be trusted.
 */
export function lastCommittedEnd(
  entries: readonly CommitInDoubt[],
  statuses: ReadonlyMap<string, XactStatus>,
): Lsn | "wait" | undefined {
  for (const entry of entries) {
    if (typeof entry.xid !== "string") continue;
    const status = statuses.get(entry.xid) ?? null;
    if (status === "in progress") return "wait";
    if (status === "aborted") return entry.previousEndLsn;
  }
  return undefined;
}

/** How the transactions with xids $1 (comma-separated) ended: `xid`, `status`. */
export const XACT_STATUS_SQL =
  "select x as xid, pg_catalog.pg_xact_status(x::xid8)::text as status " +
  "from unnest(pg_catalog.string_to_array($1, ',')) x";
