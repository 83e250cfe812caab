/**
 * `spock.progress` for one link, written at most once a second while
 * transactions stream (as Spock 5.0.x does) and whenever the applier stops
 * or goes idle. The replication origin, set with every COMMIT, is what makes
 * apply exactly-once; this row is what `lag_tracker` and monitoring read,
 * and a crash between two writes loses nothing (the next write catches up).
 */
import type { Commit } from "../pgoutput/mod.ts";
import { formatLsn, formatPgTimestamp, type Lsn } from "../pg/mod.ts";

/** `spock.progress` is written at most this often while transactions stream. */
const PROGRESS_INTERVAL_MS = 1000;

/**
 * Upserts `spock.progress`: $1 local node, $2 remote node, $3 remote commit
 * time, $4 remote commit LSN, $5 provider insert LSN.
 */
export const PROGRESS_SQL = `
insert into spock.progress as p (node_id, remote_node_id, remote_commit_ts, remote_lsn,
  remote_insert_lsn, last_updated_ts, updated_by_decode)
values ($1::text::oid, $2::text::oid, $3::text::timestamptz, $4::text::pg_lsn,
  $5::text::pg_lsn, now(), true)
on conflict (node_id, remote_node_id) do update set
  remote_commit_ts = excluded.remote_commit_ts, remote_lsn = excluded.remote_lsn,
  remote_insert_lsn = excluded.remote_insert_lsn, last_updated_ts = excluded.last_updated_ts,
  updated_by_decode = true`;

/**
 * Marks the link caught up at the provider's WAL position $3: Spock's
 * `updated_by_decode` false, so `lag_tracker` reports the time since the
 * link was last known to be caught up rather than the age of the last
 * transaction; `remote_lsn` reaches $3 as the origin does (everything before
 * it is applied), so `wait_for_sync_event` on an idle provider returns.
 */
export const CAUGHT_UP_SQL = `
update spock.progress set last_updated_ts = now(), updated_by_decode = false,
  remote_lsn = greatest(remote_lsn, $3::text::pg_lsn),
  remote_insert_lsn = greatest(remote_insert_lsn, $3::text::pg_lsn)
where node_id = $1::text::oid and remote_node_id = $2::text::oid`;

/** When a link's progress row is written, and what it holds. */
export class ProgressRecorder {
  #localNodeId: string;
  #remoteNodeId: string;
  /** When the row was last written by a commit (performance.now). */
  #writtenAt = 0;
  /** The progress of the last acknowledged commit, when no commit wrote it. */
  #unwritten: string[] | undefined;

  constructor(localNodeId: number | bigint, remoteNodeId: number | bigint) {
    this.#localNodeId = String(localNodeId);
    this.#remoteNodeId = String(remoteNodeId);
  }

  /** {@link PROGRESS_SQL}'s parameters for `commit`, with the provider's WAL end seen so far. */
  paramsFor(commit: Commit, walEnd: Lsn): string[] {
    const insertLsn = walEnd > commit.endLsn ? walEnd : commit.endLsn;
    return [
      this.#localNodeId,
      this.#remoteNodeId,
      formatPgTimestamp(commit.commitTime),
      formatLsn(commit.commitLsn),
      formatLsn(insertLsn),
    ];
  }

  /**
   * Whether the commit under way writes the row: every awaited (careful or
   * exception-mode) commit does, a pipelined one once a second.
   */
  takeDue(pipelined: boolean): boolean {
    const now = performance.now();
    if (pipelined && now - this.#writtenAt < PROGRESS_INTERVAL_MS) return false;
    this.#writtenAt = now;
    return true;
  }

  /** The next commit writes the row (after a recovery, say). */
  writeNext(): void {
    this.#writtenAt = 0;
  }

  /** A commit was acknowledged; `written` says whether it wrote `params`. */
  acknowledged(params: string[], written: boolean): void {
    this.#unwritten = written ? undefined : params;
  }

  /** The progress of the last acknowledged commit that no commit wrote. */
  get unwritten(): string[] | undefined {
    return this.#unwritten;
  }

  /** The unwritten progress was written outside a commit. */
  caughtUp(): void {
    this.#unwritten = undefined;
  }

  /** {@link CAUGHT_UP_SQL}'s parameters for the provider's WAL position `walEnd`. */
  caughtUpParams(walEnd: Lsn): string[] {
    return [this.#localNodeId, this.#remoteNodeId, formatLsn(walEnd)];
  }
}
