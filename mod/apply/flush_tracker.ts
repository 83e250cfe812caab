/**
 * Where to resume and what to confirm, from the replication origin alone (as
 * PG's `worker.c` `get_flush_position` does with its flush list): resume at
 * the last applied remote commit's end, and confirm to the provider only what
 * is durable locally. Never the last received LSN. Sending the feedback is
 * `transport/`'s; this only answers which LSN.
 *
 *   applied (origin, false) ─ committed locally, maybe not yet on disk
 *   flushed (origin, true)  ─ committed and flushed: safe to confirm
 *   idle keepalive walEnd   ─ confirmable too, once nothing is open and
 *                             everything applied is flushed
 */
import type postgres from "postgres";
import { ORIGIN_SQL } from "../catalog/mod.ts";
import { type Lsn, parseLsn } from "../pg/mod.ts";

/** Positions of one replication origin, in the provider's WAL. */
export interface OriginPositions {
  /** End LSN of the last remote transaction committed locally. */
  appliedRemoteLsn: Lsn;
  /** End LSN of the last remote transaction whose local commit is flushed. */
  flushedRemoteLsn: Lsn;
}

/**
 * Answers where to START_REPLICATION and what to report as flushed.
 * Poll {@link confirmableLsn} on the status interval and hand the result to
 * `ReplicationStream.reportProgress`.
 */
export class FlushTracker {
  #sql: postgres.Sql;
  #originName: string;
  #idleWalEnd: Lsn = 0n;
  #confirmed: Lsn = 0n;
  #knownFlushed: Lsn = 0n;

  /** `sql` is any session of the subscriber database (not the apply session). */
  constructor(sql: postgres.Sql, originName: string) {
    this.#sql = sql;
    this.#originName = originName;
  }

  /** The origin's applied and flushed positions (0 when it has none yet). */
  async positions(): Promise<OriginPositions> {
    const [row] = await this.#sql.unsafe(ORIGIN_SQL.positions, [this.#originName]);
    return {
      appliedRemoteLsn: row?.applied ? parseLsn(row.applied) : 0n,
      flushedRemoteLsn: row?.flushed ? parseLsn(row.flushed) : 0n,
    };
  }

  /** Where to start replication: just past the last remote transaction applied. */
  async resumeLsn(): Promise<Lsn> {
    return (await this.positions()).appliedRemoteLsn;
  }

  /**
   * Notes a keepalive received while no remote transaction was open and every
   * message before it had been applied: its walEnd covers only WAL that had
   * nothing for us, so it may be confirmed once what was applied is flushed.
   */
  noteIdleKeepalive(walEnd: Lsn): void {
    if (walEnd > this.#idleWalEnd) this.#idleWalEnd = walEnd;
  }

  /**
   * The LSN the provider may forget up to: the origin's flushed position, or
   * the last idle keepalive's walEnd when all applied work is flushed. Never
   * goes backwards.
   */
  async confirmableLsn(): Promise<Lsn> {
    const { appliedRemoteLsn, flushedRemoteLsn } = await this.positions();
    if (flushedRemoteLsn > this.#knownFlushed) this.#knownFlushed = flushedRemoteLsn;
    let lsn = flushedRemoteLsn;
    if (flushedRemoteLsn >= appliedRemoteLsn && this.#idleWalEnd > lsn) lsn = this.#idleWalEnd;
    if (lsn > this.#confirmed) this.#confirmed = lsn;
    return this.#confirmed;
  }

  /**
   * The same answer without asking the server, from the flushed position the
   * last {@link confirmableLsn} saw: used to answer a keepalive at once (a
   * server shutting down waits for that answer, and may refuse new queries).
   * `appliedRemoteLsn` is the applier's last committed end LSN.
   */
  confirmableNow(appliedRemoteLsn: Lsn): Lsn {
    if (this.#knownFlushed >= appliedRemoteLsn && this.#idleWalEnd > this.#confirmed) {
      this.#confirmed = this.#idleWalEnd;
    }
    return this.#confirmed;
  }
}
