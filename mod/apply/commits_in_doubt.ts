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
 * A commit whose xid never arrived (the session was closed, or the server
 * died, before its answer was read: seen often under fast shutdowns) is
 * judged by the ones after it. When the origin stands at the end of such a
 * commit, the server's commit timestamps decide: the transactions committed
 * with this origin since the session's first xid are counted, and a commit
 * whose remote commit time is not among them aborted.
 */
import type { Lsn } from "../pg/mod.ts";

/** One commit in flight: the end LSNs before and after it, and its local xid once known. */
export interface CommitInDoubt {
  readonly previousEndLsn: Lsn;
  readonly endLsn: Lsn;
  /** The remote commit time it commits with (the origin's timestamp, ISO text). */
  readonly commitTime: string;
  /** `undefined`: not reported yet; `null`: the transaction wrote nothing (no xid). */
  xid: string | null | undefined;
}

/** How the server says a transaction ended (`pg_xact_status`), `null` when it does not know. */
export type XactStatus = "committed" | "aborted" | "in progress" | null;

/** The commits of one subscription whose outcome its apply session has not seen. */
export class CommitsInDoubt {
  #entries: CommitInDoubt[] = [];
  #floorXid: bigint | undefined;

  /** Commits still in doubt, oldest first. */
  get entries(): readonly CommitInDoubt[] {
    return this.#entries;
  }

  /** Every transaction of the entries has a larger (64-bit) xid than this, when known. */
  get floorXid(): bigint | undefined {
    return this.#floorXid;
  }

  /** A session opens: its transactions will get xids from `nextXid` on. */
  startAt(nextXid: bigint): void {
    this.#floorXid = nextXid - 1n;
  }

  /** Records a commit as it is sent. */
  sent(previousEndLsn: Lsn, endLsn: Lsn, commitTime: string): CommitInDoubt {
    const entry: CommitInDoubt = { previousEndLsn, endLsn, commitTime, xid: undefined };
    this.#entries.push(entry);
    return entry;
  }

  /** The commit was acknowledged: its outcome is known, and later ones have larger xids. */
  settled(entry: CommitInDoubt): void {
    const at = this.#entries.indexOf(entry);
    if (at >= 0) this.#entries.splice(at, 1);
    if (typeof entry.xid === "string") {
      const xid = BigInt(entry.xid);
      if (this.#floorXid === undefined || xid > this.#floorXid) this.#floorXid = xid;
    }
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

/**
 * The commit in doubt that moved the origin to `applied` when its xid was
 * never reported (so `pg_xact_status` cannot tell how it ended), and how many
 * entries up to it share its commit time: that many transactions with this
 * origin and commit time must have committed for it to have committed too.
 */
export function unreportedMover(
  entries: readonly CommitInDoubt[],
  applied: Lsn,
): { entry: CommitInDoubt; sameTime: number } | undefined {
  const at = entries.findIndex((entry) => entry.endLsn === applied);
  if (at < 0 || entries[at].xid !== undefined) return undefined;
  const entry = entries[at];
  const sameTime = entries.slice(0, at + 1).filter((e) => e.commitTime === entry.commitTime)
    .length;
  return { entry, sameTime };
}

/**
 * How many transactions committed with origin $2 and commit time $3 since xid
 * $1 (a 64-bit xid, exclusive): `committed`. Commit timestamps record the
 * origin of every commit (track_commit_timestamp); at most ten million xids
 * are looked at.
 */
export const COMMITTED_WITH_ORIGIN_SQL = `
select count(*)::int as committed
from pg_catalog.generate_series($1::text::int8 + 1, least(
    pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::int8 - 1,
    $1::text::int8 + 10000000)) x
cross join lateral pg_catalog.pg_xact_commit_timestamp_origin(
  pg_catalog.xid(x::text::pg_catalog.xid8)) c
where c.roident = (select roident from pg_catalog.pg_replication_origin where roname = $2)
  and c."timestamp" = $3::timestamptz`;

/** How the transactions with xids $1 (comma-separated) ended: `xid`, `status`. */
export const XACT_STATUS_SQL =
  "select x as xid, pg_catalog.pg_xact_status(x::xid8)::text as status " +
  "from unnest(pg_catalog.string_to_array($1, ',')) x";
