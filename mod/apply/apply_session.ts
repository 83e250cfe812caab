/**
 * The apply session: one pipelining wire session to the subscriber with
 * `session_replication_role = replica`, text-value settings, and the
 * subscription's replication origin bound to it. It owns the replication
 * origin SQL of the apply path: binding, the statement that sets the
 * origin's position and commits, and putting the origin back after a failure.
 *
 * The commit is one simple Query,
 * `set constraints all immediate; execute spock_apply_commit(…); commit`:
 * the server reads the message whole before running any of it, so
 * `pg_replication_origin_xact_setup()` never runs without the COMMIT that
 * follows (an aborted transaction that ran it would still move the origin).
 * Deferred constraints are checked first, so the usual reason for a COMMIT
 * to fail aborts the transaction before the origin is involved. The origin
 * setup is a statement the session prepared, so the message costs little to
 * parse.
 *
 * A COMMIT that fails in a simple query leaves the session idle, and the
 * next transaction's statements would run. So the prepared statement also
 * checks that the previous transaction of the pipeline committed. Each
 * commit moves the session setting `spock_apply.committed` from the previous
 * commit's end LSN to its own (rolled back with a transaction that does not
 * commit); the next one sets up the origin only if that setting holds the LSN
 * it expects, and fails otherwise:
 *
 *   tx k:   … execute spock_apply_commit(k-1 → k); commit ✗       mark stays k-1
 *   tx k+1: … execute spock_apply_commit(k → k+1) ✗ (mark is k-1): aborted, origin untouched
 *   tx k+2: begin → 25P02, and everything after it is skipped until Sync
 *
 * A session terminated inside that query (after the origin was set up,
 * before the COMMIT) aborts, and on PostgreSQL 16+ the abort moves the
 * origin all the same: the next session asks how the commits it never saw
 * acknowledged ended and puts the origin back (`commits_in_doubt.ts`).
 */
import { getLogger } from "@logtape/logtape";
import {
  formatLsn,
  type Lsn,
  parseLsn,
  type PgConnectOptions,
  quoteLiteral,
  type ServerMessageFields,
  WireSession,
} from "../pg/mod.ts";
import { ORIGIN_SQL, prepareCommitStatementSql } from "../catalog/mod.ts";
import { ApplyError } from "./errors.ts";
import {
  CommitsInDoubt,
  COMMITTED_WITH_ORIGIN_SQL,
  lastCommittedEnd,
  unreportedMover,
  XACT_STATUS_SQL,
  type XactStatus,
} from "./commits_in_doubt.ts";

const log = getLogger(["spock", "apply"]);

/** Who the session applies for. */
export interface ApplySessionOptions {
  originName: string;
  localNodeId: number | bigint;
  remoteNodeId: number | bigint;
  synchronousCommit?: boolean;
  /**
   * The subscription's commits whose outcome an earlier session did not
   * see; this session records its own there too.
   */
  commitsInDoubt?: CommitsInDoubt;
  /** Notices no statement claimed. */
  onNotice?: (notice: ServerMessageFields) => void;
}

const MARK_SETTING = "spock_apply.committed";

/**
 * The session's prepared statement that sets the origin's position ($2, the
 * remote end LSN, committed at $3) for the COMMIT after it and moves the
 * commit mark from $1 to $2; it fails, before the origin is touched, when the
 * mark is not at $1.
 */
const COMMIT_STATEMENT = "spock_apply_commit";

/** The apply session and where its origin stood when it was bound. */
export class ApplySession {
  readonly wire: WireSession;
  readonly originName: string;
  /** The origin's position at open: the end LSN of the last remote commit applied. */
  readonly startLsn: Lsn;
  /** `pg_replication_origin.roident`: rows this session writes carry it. */
  readonly originId: number;
  readonly localNodeName: string;
  /** The end LSN the next commit expects the previous one to have recorded. */
  #mark: string;
  #doubts: CommitsInDoubt;

  private constructor(
    wire: WireSession,
    originName: string,
    bound: { start: Lsn; originId: number; localNodeName: string; doubts: CommitsInDoubt },
  ) {
    this.wire = wire;
    this.#doubts = bound.doubts;
    this.originName = originName;
    this.startLsn = bound.start;
    this.originId = bound.originId;
    this.localNodeName = bound.localNodeName;
    this.#mark = formatLsn(bound.start);
  }

  /**
   * Opens the session and binds the replication origin. Fails (SQLSTATE
   * 55006) while another session holds the origin, and with
   * `ERR_APPLY_NO_ORIGIN` when it is missing: it is the record of what was
   * applied, and starting over from 0/0 would apply it all again.
   */
  static async open(
    connection: PgConnectOptions,
    options: ApplySessionOptions,
  ): Promise<ApplySession> {
    const wire = await WireSession.open(connection, { onNotice: options.onNotice });
    try {
      // Text values arrive in ISO dates and postgres-style intervals: read them so.
      // Conflicts inside an INSERT's upsert are reported as notices.
      await wire.simple(
        "set session_replication_role = replica; set datestyle = 'ISO'; " +
          "set intervalstyle = 'postgres'; set client_min_messages = notice; " +
          `set synchronous_commit = ${options.synchronousCommit ? "on" : "off"}`,
      );
      await assertOriginExists(wire, options);
      const doubts = options.commitsInDoubt ?? new CommitsInDoubt();
      await putOriginBack(wire, options.originName, doubts);
      await wire.query(ORIGIN_SQL.sessionSetup, [options.originName], { sync: true });
      const { rows: [row] } = await wire.query(
        `select b.lsn, b.origin_id, (select n.node_name::text from spock.node n
           join spock.local_node l using (node_id)) as node_name,
           pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text as next_xid
         from (${ORIGIN_SQL.bound}) b`,
        [options.originName],
        { sync: true },
      );
      const start = row.lsn === null ? 0n : parseLsn(row.lsn as string);
      doubts.startAt(BigInt(row.next_xid as string));
      const session = new ApplySession(wire, options.originName, {
        start,
        originId: Number(row.origin_id),
        localNodeName: (row.node_name as string | null) ?? "",
        doubts,
      });
      await wire.simple(prepareCommitStatementSql(COMMIT_STATEMENT, MARK_SETTING));
      await session.#setMark();
      log.info("Apply session for origin {origin} opened at {lsn}", {
        origin: options.originName,
        lsn: formatLsn(start),
      });
      return session;
    } catch (error) {
      await wire.close();
      throw error;
    }
  }

  /**
   * Commits the open transaction as the remote one ending at `endLsn`,
   * committed at `commitTime`, without waiting to send more: checks deferred
   * constraints, checks and moves the pipeline's commit mark, then sets the
   * origin's position and commits, in one simple Query.
   */
  commit(endLsn: Lsn, commitTime: string): Promise<void> {
    const previous = this.#mark;
    const lsn = formatLsn(endLsn);
    this.#mark = lsn;
    const doubt = this.#doubts.sent(parseLsn(previous), endLsn, commitTime);
    return this.wire.simple(
      `set constraints all immediate; execute ${COMMIT_STATEMENT}(${quoteLiteral(previous)}, ` +
        `${quoteLiteral(lsn)}, ${quoteLiteral(commitTime)}); commit`,
      { onRow: (row) => doubt.xid = (row.xid as string | null | undefined) ?? null },
    ).then(() => this.#doubts.settled(doubt));
  }

  /**
   * After a failure: ends the pipeline's error state, rolls back what is
   * open, and puts the origin back to `appliedEndLsn` (the last commit
   * acknowledged; a failed COMMIT's abort record moved it past).
   */
  async recover(appliedEndLsn: Lsn): Promise<void> {
    const status = await this.wire.sync();
    if (status !== "I") await this.wire.simple("rollback");
    const name = this.originName;
    await this.wire.query(ORIGIN_SQL.sessionReset, [], { sync: true });
    await this.wire.query(ORIGIN_SQL.advance, [name, formatLsn(appliedEndLsn)], { sync: true });
    await this.wire.query(ORIGIN_SQL.sessionSetup, [name], { sync: true });
    this.#doubts.clear();
    this.#mark = formatLsn(appliedEndLsn);
    await this.#setMark();
  }

  /** Releases the origin and ends the session. */
  async close(): Promise<void> {
    await this.wire.query(ORIGIN_SQL.sessionReset, [], { sync: true }).catch(() => {});
    await this.wire.close();
  }

  async #setMark(): Promise<void> {
    await this.wire.query(
      "select pg_catalog.set_config($1, $2, false)",
      [MARK_SETTING, this.#mark],
      {
        sync: true,
      },
    );
  }
}

/**
 * Puts origin `name` back to the end of the last commit in doubt that
 * committed, when one after it aborted and moved the origin past it (see
 * `commits_in_doubt.ts`); fails, to be retried, while that transaction is
 * still ending.
 */
async function putOriginBack(wire: WireSession, name: string, doubts: CommitsInDoubt) {
  if (doubts.entries.length === 0) return;
  const xids = doubts.entries.flatMap((entry) => typeof entry.xid === "string" ? [entry.xid] : []);
  const statuses = new Map<string, XactStatus>();
  if (xids.length > 0) {
    const { rows } = await wire.query(XACT_STATUS_SQL, [xids.join(",")], { sync: true });
    for (const row of rows) statuses.set(row.xid as string, row.status as XactStatus);
  }
  let limit = lastCommittedEnd(doubts.entries, statuses);
  if (limit === "wait") {
    throw new ApplyError(
      `Cannot apply yet: the previous apply session's commit on origin ${quoteLiteral(name)} ` +
        "is still ending; retrying",
      { code: "ERR_APPLY_COMMIT_IN_DOUBT", operation: "start", origin: name },
    );
  }
  const { rows: [row] } = await wire.query(ORIGIN_SQL.positions, [name], { sync: true });
  const applied = row?.applied ? parseLsn(row.applied as string) : 0n;
  const mover = limit === undefined ? unreportedMover(doubts.entries, applied) : undefined;
  if (mover !== undefined && doubts.floorXid !== undefined) {
    const { rows: [found] } = await wire.query(
      COMMITTED_WITH_ORIGIN_SQL,
      [String(doubts.floorXid), name, mover.entry.commitTime],
      { sync: true },
    );
    if ((found.committed as number) < mover.sameTime) limit = mover.entry.previousEndLsn;
  }
  if (limit !== undefined && applied > limit) {
    log.warning(
      "The apply session of origin {origin} ended inside a COMMIT that aborted but moved the origin to {applied}: putting it back to {lsn}, the last remote commit applied",
      { origin: name, applied: formatLsn(applied), lsn: formatLsn(limit) },
    );
    await wire.query(ORIGIN_SQL.advance, [name, formatLsn(limit)], { sync: true });
  }
  doubts.clear();
}

/**
 * The subscription's origin must exist before apply starts: the initial sync
 * (or sub_create for a disabled subscription) creates it. A missing one was
 * dropped behind spock's back; the error says how far `spock.progress` says
 * the subscription had got and how to resume right after that.
 */
async function assertOriginExists(wire: WireSession, options: ApplySessionOptions): Promise<void> {
  const { rows: [row] } = await wire.query(
    `select (${ORIGIN_SQL.exists}) as present,
       (select p.remote_lsn::text from spock.progress p
        where p.node_id = $2::text::oid and p.remote_node_id = $3::text::oid) as applied_lsn`,
    [options.originName, String(options.localNodeId), String(options.remoteNodeId)],
    { sync: true },
  );
  if (row.present) return;
  const name = quoteLiteral(options.originName);
  const applied = row.applied_lsn === null ? 0n : parseLsn(row.applied_lsn as string);
  const resume = applied === 0n
    ? "recreate the subscription (spock sub drop, then spock sub create) to synchronize it again"
    : `resume right after it with SELECT pg_replication_origin_create(${name}); ` +
      `SELECT pg_replication_origin_advance(${name}, '${formatLsn(applied + 1n)}')`;
  throw new ApplyError(
    `Cannot apply: replication origin ${name} is missing (dropped outside spock?)` +
      (applied === 0n
        ? ""
        : `, while spock.progress says remote commit ${formatLsn(applied)} was applied`) +
      `; starting from 0/0 would apply transactions twice, so the worker stops: ${resume}`,
    { code: "ERR_APPLY_NO_ORIGIN", operation: "start", origin: options.originName },
  );
}
