/**
 * The transaction applier: one remote transaction becomes one local
 * transaction, exactly once, on the apply session (`apply_session.ts`).
 * Handlers are named after the pgoutput messages (`applyInsert` …), as PG's
 * `worker.c` names `apply_handle_*`. Reading the stream and reporting
 * feedback are the caller's; what is durable is `flush_tracker.ts`'s answer.
 *
 * Durability rule: the rows and the origin's position (set by
 * `pg_replication_origin_xact_setup`) commit in ONE local transaction, so
 * after a crash the origin's position says exactly which remote transactions
 * are in the table. `spock.progress` and the counters ride along at most once
 * a second; the origin is the truth.
 *
 * Transactions applied with fast statements are pipelined: their statements
 * and COMMITs go out without waiting, up to the commit window's limits
 * (`commit_window.ts`), and a COMMIT counts once the server answers it.
 *
 *   remote:  T1 T2 T3 T4          (T3 fails on the subscriber)
 *   local:   T1 ✓ T2 ✓ T3 ✗ T4 skipped by the server
 *   then:    Sync, rollback, origin back to T2's end; T3 again with conflict
 *            handling (then exception handling); T4 sent again
 *
 * Apply modes, as PostgreSQL's TransApplyAction: fast (pipelined), careful
 * (conflict handling, each statement awaited) and exception mode (each
 * operation in a savepoint); a failure moves a transaction one step down.
 */
import { getLogger } from "@logtape/logtape";
import type {
  Begin,
  Commit,
  Delete,
  Insert,
  Message,
  Origin,
  PgoutputMessage,
  Relation,
  Truncate,
  Tuple,
  Update,
} from "../pgoutput/mod.ts";
import { tupleText } from "../pgoutput/mod.ts";
import {
  formatLsn,
  formatPgTimestamp,
  type Lsn,
  type PgConnectOptions,
  PgSkippedError,
  quoteIdent,
  type WireSession,
} from "../pg/mod.ts";
import { type ApplyMode, initialMode, nextMode } from "./apply_mode.ts";
import { ApplySession } from "./apply_session.ts";
import type { CommitsInDoubt } from "./commits_in_doubt.ts";
import { CommitWindow, type CommitWindowLimits, type WindowEntry } from "./commit_window.ts";
import { ApplyStatistics, CHANNEL_STATS_SQL } from "./conflicts/report.ts";
import { type ConflictSettings, DEFAULT_CONFLICT_SETTINGS } from "./conflicts/settings.ts";
import { ApplyError, type ApplyErrorCode } from "./errors.ts";
import {
  DEFAULT_EXCEPTION_SETTINGS,
  describeFailure,
  ExceptionReplay,
  type ExceptionSettings,
  type GuardedOperation,
  guardedOperation,
} from "./exception_mode.ts";
import { CAUGHT_UP_SQL, PROGRESS_SQL, ProgressRecorder } from "./progress_recorder.ts";
import type { LocalRelation } from "./relation_map.ts";
import { RelationMappings } from "./relation_mappings.ts";
import { ReplayQueue } from "./replay_queue.ts";
import {
  APPLY_QUEUED_SEQUENCE_SQL,
  APPLY_QUEUED_SQL,
  APPLY_QUEUED_TABLE_SYNC_SQL,
  parseQueuedCommand,
  QUEUE_MESSAGE_PREFIX,
  queuedForSets,
} from "./queued_commands.ts";
import { type RowFilterState, SAVE_ROW_FILTERS_SQL } from "./row_filters.ts";
import { SqlWriter, type WriteFailure } from "./sql_writer.ts";

const log = getLogger(["spock", "apply"]);

/** How an applier identifies itself and its provider. */
export interface TransactionApplierOptions {
  /** Replication origin name: the subscription's slot name, as in Spock. */
  originName: string;
  /** `spock.node` id of this (subscriber) node: `spock.progress.node_id`. */
  localNodeId: number | bigint;
  /** `spock.node` id of the provider: `spock.progress.remote_node_id`. */
  remoteNodeId: number | bigint;
  /** Transactions and bytes in flight on the apply session (`engine.apply_window_*`). */
  window?: Partial<CommitWindowLimits>;
  /**
   * Row filters of the subscribed replication sets (the provider's catalog
   * holds them; publications do not): a row is applied only when it passes
   * every one of them. Announcements in the stream change them, and each
   * change is saved with the commit of the transaction that carried it.
   */
  rowFilters?: RowFilterState;
  /**
   * The subscribed replication sets: queued commands of the provider's are
   * run only when queued for one of them (or for none in particular). All
   * are run without it.
   */
  replicationSets?: readonly string[];
  /**
   * Wait for the local WAL flush at each applied commit (Spock's
   * `synchronous_commit` setting; default false, as PostgreSQL's own apply
   * worker). Without it, feedback still confirms only flushed positions.
   */
  synchronousCommit?: boolean;
  /**
   * The subscription's commits whose outcome a lost session never saw,
   * carried from one applier to the next (see `commits_in_doubt.ts`).
   */
  commitsInDoubt?: CommitsInDoubt;
  /** Runs of INSERTs into one table become multi-row INSERTs (default true). */
  batchInserts?: boolean;
  /** How conflicts are resolved and recorded; Spock's defaults when absent. */
  conflicts?: ConflictSettings;
  /**
   * `spock.subscription` id: the apply counters are added to
   * `spock._channel_stats` under it (not counted without one).
   */
  subscriptionId?: number;
  /** The subscription's name (`sub_disable` records it). */
  subscriptionName?: string;
  /**
   * Exception handling: a failing remote transaction is replayed operation by
   * operation and discarded or kept as these settings say. Without it, every
   * failure is thrown.
   */
  exceptions?: ExceptionSettings;
  /**
   * Commit LSN of a remote transaction to apply in exception mode from its
   * first operation: it failed before, too big to replay from memory.
   */
  exceptionModeAt?: Lsn;
  /**
   * Commit LSN of a remote transaction to apply with conflict handling from
   * its first operation: it failed with fast statements, too big to apply
   * again from memory.
   */
  carefulAt?: Lsn;
}

/** ALTER TABLE disabling, or enabling again as they were, a relation's statement-level triggers. */
function alterTriggers(relation: LocalRelation, action: "disable" | "enable"): string {
  const clauses = relation.statementTriggers.map(({ name, enabled }) =>
    action === "disable"
      ? `disable trigger ${quoteIdent(name)}`
      : `enable ${enabled === "A" ? "always" : "replica"} trigger ${quoteIdent(name)}`
  );
  return `alter table ${relation.qualifiedName} ${clauses.join(", ")}`;
}

/** A transaction in the commit window failed: the window is recovered before anything else. */
class WindowFailed extends Error {
  constructor() {
    super("A transaction of the commit window failed");
  }
}

/**
 * Applies decoded pgoutput messages to the local database, one local
 * transaction per remote one. Feed every message in stream order to
 * {@link applyMessage}; await each call. Commits are acknowledged later:
 * {@link drain} waits for them.
 */
export class TransactionApplier {
  #session: ApplySession;
  #wire: WireSession;
  #writer: SqlWriter;
  #options: TransactionApplierOptions;
  #relations: RelationMappings;
  #begin: Begin | undefined;
  /** How the open transaction is applied (undefined between transactions). */
  #mode: ApplyMode | undefined;
  #remoteOrigin: string | undefined;
  #appliedEndLsn: Lsn;
  #lastWalEnd: Lsn = 0n;
  #closed = false;
  #statistics: ApplyStatistics;
  /** The current remote transaction's messages, kept for a replay. */
  #replay: ReplayQueue;
  /** Commit LSN of a remote transaction to apply with conflict handling from the start. */
  #carefulAt: Lsn | undefined;
  #carefulReplays = 0;
  /** Set while a transaction is applied in exception mode. */
  #exceptions: ExceptionReplay | undefined;
  /** Relations whose statement-level triggers this transaction disabled (re-enabled at commit). */
  #quieted = new Set<LocalRelation>();
  /** Transactions whose COMMIT is not answered yet. */
  #window: CommitWindow;
  /** The open transaction's place in the window. */
  #entry: WindowEntry | undefined;
  #progress: ProgressRecorder;
  /** The public operation under way (a stream stopping may close the applier meanwhile). */
  #busy: Promise<void> = Promise.resolve();

  private constructor(session: ApplySession, options: TransactionApplierOptions) {
    this.#session = session;
    this.#wire = session.wire;
    this.#options = options;
    const conflicts = options.conflicts ?? DEFAULT_CONFLICT_SETTINGS;
    this.#statistics = new ApplyStatistics({
      subscriptionId: options.subscriptionId,
      remoteNodeId: Number(options.remoteNodeId),
      logLevel: conflicts.logLevel,
    });
    this.#replay = this.#newReplayQueue();
    this.#carefulAt = options.carefulAt;
    this.#window = new CommitWindow(options.window);
    this.#writer = new SqlWriter(session.wire, {
      settings: conflicts,
      sessionOrigin: session.originId,
      remoteNodeId: Number(options.remoteNodeId),
      localNodeName: session.localNodeName,
    }, { batchInserts: options.batchInserts });
    this.#appliedEndLsn = session.startLsn;
    this.#relations = new RelationMappings(session.wire, options.rowFilters);
    this.#progress = new ProgressRecorder(options.localNodeId, options.remoteNodeId);
  }

  /**
   * Opens the apply session to the database `connection` names and binds
   * the replication origin (see {@link ApplySession.open} for its failures).
   */
  static async open(
    connection: PgConnectOptions,
    options: TransactionApplierOptions,
  ): Promise<TransactionApplier> {
    const session = await ApplySession.open(connection, {
      originName: options.originName,
      localNodeId: options.localNodeId,
      remoteNodeId: options.remoteNodeId,
      synchronousCommit: options.synchronousCommit,
      commitsInDoubt: options.commitsInDoubt,
    });
    return new TransactionApplier(session, options);
  }

  /** True between a Begin and its Commit. */
  get inTransaction(): boolean {
    return this.#begin !== undefined;
  }

  /**
   * Remote transactions this session applied a second time, with conflict
   * handling, after their fast statements met a conflict or an error.
   */
  get carefulReplays(): number {
    return this.#carefulReplays;
  }

  /** End LSN of the last remote transaction whose local COMMIT was acknowledged (or at open). */
  get appliedEndLsn(): Lsn {
    return this.#appliedEndLsn;
  }

  /** Records the provider's WAL end seen on the stream, for `spock.progress.remote_insert_lsn`. */
  noteWalEnd(walEnd: Lsn): void {
    if (walEnd > this.#lastWalEnd) this.#lastWalEnd = walEnd;
  }

  /**
   * Applies one message (`size`: its bytes on the wire, for the replay
   * limit). On an error the open local transaction is rolled back; with
   * exception handling a failed transaction is then replayed operation by
   * operation, otherwise (and for transient errors) an `ApplyError` is thrown
   * and the caller restarts from the origin's position. A transaction of the
   * window that failed is dealt with the same way when it is noticed.
   */
  applyMessage(message: PgoutputMessage, size = 0): Promise<void> {
    return this.#track(async () => {
      if (this.#window.failure !== undefined) await this.#recoverWindow();
      try {
        await this.#applyOne(message, size);
      } catch (error) {
        if (!(error instanceof WindowFailed)) throw error;
        await this.#recoverWindow();
      }
    });
  }

  /** Runs one public operation; {@link close} waits for the one under way. */
  #track<T>(operation: () => Promise<T>): Promise<T> {
    const running = operation();
    this.#busy = running.then(() => undefined, () => undefined);
    return running;
  }

  /**
   * Waits until every COMMIT sent is answered, dealing with any failure
   * among them; then {@link appliedEndLsn} covers everything applied.
   */
  drain(): Promise<void> {
    return this.#track(() => this.#drain());
  }

  async #drain(): Promise<void> {
    for (;;) {
      await this.#writer.drain();
      await this.#window.drain(this.#entry);
      if (this.#window.failure === undefined) return;
      await this.#recoverWindow();
    }
  }

  async #applyOne(message: PgoutputMessage, size: number): Promise<void> {
    // Noted before anything can throw WindowFailed: recovery sends it again from there.
    if (this.#exceptions === undefined) {
      if (message.type === "begin") this.#replay = this.#newReplayQueue();
      this.#replay.note(message, size);
    }
    if (this.#mode === "fast" && this.#replay.messages === undefined && this.#window.size > 1) {
      // Too big to keep: it may fail only alone, so the ones before it settle first.
      await this.#settleWindow();
    }
    const begin = message.type === "begin" ? message : this.#begin;
    const modeBefore = this.#mode;
    try {
      await this.#dispatch(message);
    } catch (error) {
      if (error instanceof WindowFailed) throw error;
      // A failed awaited COMMIT has already cleared the transaction's state.
      const mode = this.#mode ?? modeBefore;
      await this.#settleWindow();
      const replay = this.#replay.messages;
      await this.#rollback();
      if (begin === undefined || mode === undefined) throw error;
      await this.#stepDown(mode, replay, begin, error);
    }
  }

  #newReplayQueue(): ReplayQueue {
    return new ReplayQueue(
      this.#options.exceptions?.replayQueueSize ?? DEFAULT_EXCEPTION_SETTINGS.replayQueueSize,
    );
  }

  /**
   * Applies a transaction that failed in `mode` again one step down the
   * ladder (`apply_mode.ts`), from `messages`; throws `error` when there is
   * no step left, and a restart error when the messages were too many to keep.
   */
  async #stepDown(
    mode: ApplyMode,
    messages: PgoutputMessage[] | undefined,
    begin: Begin,
    error: unknown,
  ): Promise<void> {
    const next = nextMode(mode, error, this.#options.exceptions !== undefined);
    if (next === undefined) throw error;
    if (messages === undefined) {
      const operation = (error as ApplyError).operation;
      throw next === "careful"
        ? this.#error(
          `Cannot apply remote transaction ${begin.xid} again from memory (over exception_replay_queue_size); restarting to apply it with conflict handling`,
          "ERR_APPLY_CAREFUL_RESTART",
          operation,
          undefined,
          error,
          begin,
        )
        : this.#error(
          `Cannot replay remote transaction ${begin.xid} from memory (over exception_replay_queue_size); restarting to apply it in exception mode`,
          "ERR_APPLY_REPLAY_RESTART",
          operation,
          undefined,
          error,
          begin,
        );
    }
    if (next === "careful") await this.#replayCarefully(messages, error);
    else await this.#replayWithExceptions(messages, error);
  }

  /**
   * A transaction of the window failed, and the server skipped everything
   * sent after it: ends the error state, rolls back, puts the origin back to
   * the last acknowledged commit, applies the failed transaction again one
   * step down the ladder, then sends the ones after it again.
   */
  async #recoverWindow(): Promise<void> {
    // Messages still to send again, in stream order (after the window's entries).
    let backlog: PgoutputMessage[] = [];
    while (this.#window.failure !== undefined) {
      const failure = this.#window.failure;
      await this.#session.recover(this.#appliedEndLsn);
      const entries = this.#window.takeAll();
      this.#resetTransaction();
      for (const entry of entries) {
        if (entry.counters !== undefined) {
          this.#statistics.settle(entry.counters, false, entry.taken);
        }
      }
      this.#progress.writeNext();
      const [failed, ...later] = entries;
      const again: PgoutputMessage[] = [];
      for (const entry of later) {
        const messages = entry.replay.messages;
        if (messages === undefined) {
          throw this.#error(
            `Cannot send remote transaction ${entry.begin.xid} again from memory (over exception_replay_queue_size); restarting from the last applied commit`,
            "ERR_APPLY_RETRY",
            "begin",
            undefined,
            undefined,
            entry.begin,
          );
        }
        again.push(...messages);
      }
      backlog = [...again, ...backlog];
      const begin = failed.begin;
      const cause = failure.cause;
      const error = cause instanceof ApplyError
        ? cause
        : this.#sqlError(cause, failure.operation, failure.relation?.remoteName, begin);
      log.debug(
        "Remote transaction {xid} at {lsn} failed in the commit window ({error}); {later} later transactions are sent again",
        {
          xid: begin.xid,
          lsn: formatLsn(begin.finalLsn),
          error: describeFailure(cause),
          later: later.length,
        },
      );
      try {
        this.#replay = failed.replay;
        await this.#stepDown(failed.mode, failed.replay.messages, begin, error);
        while (backlog.length > 0) await this.#applyOne(backlog.shift()!, 0);
      } catch (thrown) {
        if (!(thrown instanceof WindowFailed)) throw thrown;
      }
    }
  }

  /** Clears the open transaction's state (the server side is rolled back by the caller). */
  #resetTransaction(): void {
    this.#options.rowFilters?.discard();
    this.#quieted.clear();
    this.#begin = undefined;
    this.#mode = undefined;
    this.#exceptions = undefined;
    this.#entry = undefined;
    this.#writer.discard();
    this.#statistics.discardTransaction();
  }

  /**
   * Applies the transaction's messages so far again with conflict handling:
   * a fast statement met a conflict (or an error, which conflict handling may
   * resolve). A failure now goes to exception handling.
   */
  async #replayCarefully(messages: PgoutputMessage[], cause: unknown): Promise<void> {
    const begin = messages[0] as Begin;
    log.debug(
      "Remote transaction {xid} at {lsn} failed with fast statements ({error}): applying it again with conflict handling",
      { xid: begin.xid, lsn: formatLsn(begin.finalLsn), error: describeFailure(cause) },
    );
    this.#carefulAt = begin.finalLsn;
    this.#carefulReplays++;
    try {
      for (const message of messages) await this.#dispatch(message);
    } catch (error) {
      if (error instanceof WindowFailed) throw error;
      const replay = this.#replay.messages;
      await this.#rollback();
      await this.#stepDown("careful", replay, begin, error);
    }
  }

  /** Applies the transaction's messages so far again, each operation in its own savepoint. */
  async #replayWithExceptions(messages: PgoutputMessage[], cause: unknown): Promise<void> {
    const begin = messages[0] as Begin;
    log.warning(
      "Remote transaction {xid} at {lsn} failed: {error}; replaying it operation by operation (exception_behaviour {behaviour})",
      {
        xid: begin.xid,
        lsn: formatLsn(begin.finalLsn),
        error: (cause as Error).message,
        behaviour: this.#options.exceptions!.behaviour,
      },
    );
    try {
      this.#startExceptionMode(begin);
      for (const message of messages) await this.#dispatch(message);
    } catch (error) {
      await this.#rollback();
      throw error;
    }
  }

  #startExceptionMode(begin: Begin): void {
    this.#replay.clear();
    this.#exceptions = new ExceptionReplay(this.#wire, this.#writer, this.#options.exceptions!, {
      remoteNodeId: Number(this.#options.remoteNodeId),
      commitTime: formatPgTimestamp(begin.commitTime),
      xid: String(begin.xid),
    });
  }

  #dispatch(message: PgoutputMessage): Promise<void> | void {
    switch (message.type) {
      case "begin":
        return this.applyBegin(message);
      case "commit":
        return this.applyCommit(message);
      case "origin":
        return this.applyOrigin(message);
      case "relation":
        return this.applyRelation(message);
      case "insert":
        return this.applyInsert(message);
      case "update":
        return this.applyUpdate(message);
      case "delete":
        return this.applyDelete(message);
      case "truncate":
        return this.applyTruncate(message);
      case "type":
        return; // Types come as text; the local type's input function parses them.
      case "message":
        return this.applyLogicalMessage(message);
      case "stream_start":
      case "stream_stop":
      case "stream_commit":
      case "stream_abort":
      case "stream_prepare":
      case "begin_prepare":
      case "prepare":
      case "commit_prepared":
      case "rollback_prepared":
        throw this.#error(
          `Cannot apply "${message.type}": streamed and two-phase transactions are not supported yet; start replication without "streaming" and "two_phase"`,
          "ERR_APPLY_UNSUPPORTED",
          message.type,
        );
      default: {
        const unknown: never = message;
        throw new TypeError(`Unknown message ${(unknown as { type: string }).type}`);
      }
    }
  }

  /** Begin: opens the local transaction (pipelined, not awaited). */
  async applyBegin(begin: Begin): Promise<void> {
    if (this.#begin !== undefined) {
      throw this.#error(
        "Cannot apply begin inside a transaction",
        "ERR_APPLY_PROTOCOL_ORDER",
        "begin",
      );
    }
    this.#begin = begin;
    this.#remoteOrigin = undefined;
    this.#relations.startTransaction();
    this.#quieted.clear();
    this.#options.rowFilters?.discard();
    const mode = initialMode(begin, {
      appliedEndLsn: this.#appliedEndLsn,
      carefulAt: this.#carefulAt,
      exceptionModeAt: this.#options.exceptionModeAt,
      exceptionsEnabled: this.#options.exceptions !== undefined,
    });
    if (mode === "skip") {
      this.#mode = mode;
      log.debug("Skipping remote transaction {xid} at {lsn}: already applied", {
        xid: begin.xid,
        lsn: formatLsn(begin.finalLsn),
      });
      return;
    }
    // A replay with exception handling started exception mode before its Begin.
    this.#mode = this.#exceptions !== undefined ? "exception" : mode;
    if (this.#mode === "exception" && this.#exceptions === undefined) {
      log.warning("Applying remote transaction {xid} at {lsn} in exception mode", {
        xid: begin.xid,
        lsn: formatLsn(begin.finalLsn),
      });
      this.#startExceptionMode(begin);
    }
    const fast = this.#mode === "fast";
    const entry = this.#window.open(begin, this.#replay, this.#mode);
    this.#entry = entry;
    // Statements awaited one by one must not meet a failure of the window ahead of them.
    if (!fast) await this.#settleWindow();
    this.#writer.setTransaction({
      commitTime: formatPgTimestamp(begin.commitTime),
      xid: String(begin.xid),
      commitLsn: formatLsn(begin.finalLsn),
      fast,
      onConflict: (event) => this.#statistics.noteConflict(event, begin, entry.counters),
      onFailure: fast ? (failure) => this.#noteFailure(entry, failure) : undefined,
    });
    await this.#writer.run("begin", [], "begin");
  }

  /** A failure in the window (statements the server skipped after it do not count). */
  #noteFailure(entry: WindowEntry, failure: WriteFailure): void {
    if (failure.cause instanceof PgSkippedError) return;
    this.#window.noteFailure({ entry, ...failure });
  }

  /**
   * Waits for every statement sent so far; a failure in the window is
   * recovered first (WindowFailed, thrown to `applyMessage`). Returns the
   * first failure of statements awaited one by one.
   */
  async #settleWindow(): Promise<WriteFailure | undefined> {
    const failure = await this.#writer.drain();
    await this.#window.drain(this.#entry);
    if (this.#window.failure !== undefined) throw new WindowFailed();
    return failure;
  }

  /** Waits for the statements sent so far; throws the first failure among them. */
  async #syncPoint(): Promise<void> {
    this.#throwFailure(await this.#settleWindow());
  }
  /**
   * Message: a row filter announcement (counted from this transaction's
   * commit), or a queued command of the provider's, run here at its position
   * in the transaction; other prefixes are not applied.
   */
  async applyLogicalMessage(message: Message): Promise<void> {
    if (this.#begin === undefined || this.#mode === "skip") return;
    if (message.prefix === QUEUE_MESSAGE_PREFIX) return await this.#applyQueued(message);
    this.#options.rowFilters?.note(message);
  }

  /**
   * A queued command, for the subscription's sets: 'Q' and 'D' run as their role,
   * 'S' sets its sequence, 'A' records the table for a copy (the daemon
   * restarts the worker for it once this transaction commits); in exception
   * mode each in its own savepoint and logged under its operation.
   */
  async #applyQueued(message: Message): Promise<void> {
    const queued = parseQueuedCommand(message);
    const sets = this.#options.replicationSets;
    if (sets !== undefined && !queuedForSets(queued, sets)) return;
    let run: () => Promise<void>;
    let operation: GuardedOperation;
    switch (queued.type) {
      case "Q":
      case "D":
        log.info("Running a queued command as {role}", { role: queued.role });
        run = () => this.#writer.run(APPLY_QUEUED_SQL, [queued.role, queued.command], "ddl");
        operation = {
          operation: "DDL",
          schema: "",
          table: "",
          relation: undefined,
          ddl: { statement: queued.command, user: queued.role },
        };
        break;
      case "S": {
        const body = JSON.stringify({
          schema_name: queued.schema,
          sequence_name: queued.sequence,
          last_value: queued.lastValue,
        });
        run = () => this.#writer.run(APPLY_QUEUED_SEQUENCE_SQL, [body], "sequence");
        operation = {
          operation: "SEQUENCE",
          schema: queued.schema,
          table: queued.sequence,
          relation: undefined,
          newTuple: { last_value: queued.lastValue },
        };
        break;
      }
      case "A": {
        const subscription = this.#options.subscriptionId;
        if (subscription === undefined) return;
        log.info("Table {schema}.{table} was added with its data on the provider: copying it", {
          schema: queued.schema,
          table: queued.table,
        });
        const params = [String(subscription), queued.schema, queued.table];
        run = () => this.#writer.run(APPLY_QUEUED_TABLE_SYNC_SQL, params, "table sync");
        operation = {
          operation: "TABLESYNC",
          schema: queued.schema,
          table: queued.table,
          relation: undefined,
        };
        break;
      }
    }
    const exceptions = this.#exceptions;
    if (exceptions === undefined) return await run();
    await exceptions.run(operation, run);
  }

  /** Origin: the transaction came to the provider from another node. */
  applyOrigin(origin: Origin): void {
    this.#remoteOrigin = origin.originName;
  }

  /**
   * Relation: maps the remote table onto the local one (one catalog query).
   * A table the subscriber cannot map (missing, or missing columns) fails
   * this transaction, and every later change to it until it maps; exception
   * handling then deals with those changes as with any failed operation.
   */
  async applyRelation(relation: Relation): Promise<void> {
    await this.#syncPoint();
    const failure = await this.#mapped(relation, () => this.#relations.describe(relation));
    if (failure !== undefined && this.#exceptions === undefined) throw failure;
  }

  /**
   * Runs a mapping of `relation`: its failure, named after this
   * transaction; an error of the catalog query is thrown.
   */
  async #mapped(
    relation: Relation,
    map: () => Promise<ApplyError | undefined>,
  ): Promise<ApplyError | undefined> {
    let failure: ApplyError | undefined;
    try {
      failure = await map();
    } catch (error) {
      throw this.#sqlError(error, "relation", `${relation.namespace}.${relation.relationName}`);
    }
    return failure && this.#error(failure.summary, failure.code, "relation", failure.relation);
  }

  /**
   * The mapping of a relation that could not be mapped, tried once more per
   * transaction (the subscriber may have been fixed since), or the failure.
   */
  async #retryBroken(relationId: number): Promise<ApplyError | undefined> {
    const broken = this.#relations.broken(relationId);
    if (broken === undefined) return undefined;
    if (!this.#relations.takeRetry(relationId)) {
      const { summary, code, relation } = broken.error;
      return this.#error(summary, code, "relation", relation);
    }
    await this.#syncPoint();
    return await this.#mapped(broken.relation, () => this.#relations.map(broken.relation));
  }

  /** Insert: pipelined INSERT. */
  async applyInsert(insert: Insert): Promise<void> {
    await this.#rowOperation("INSERT", insert.relationId, insert.newTuple, null, (relation) => {
      log.trace("Insert into {relation}", () => ({ relation: relation.remoteName }));
      this.#statistics.count(relation).inserts++;
      return this.#writer.insert(relation, tupleText(insert.newTuple));
    });
  }

  /** Update: pipelined UPDATE by the local replica identity. */
  async applyUpdate(update: Update): Promise<void> {
    await this.#rowOperation(
      "UPDATE",
      update.relationId,
      update.newTuple,
      update.oldTuple,
      (relation) => {
        const identity = this.#identity(relation, "update");
        const values = tupleText(update.newTuple);
        if (relation.identityFull && update.oldTuple === null) {
          throw this.#error(
            `Cannot apply update: local table uses REPLICA IDENTITY FULL but the provider sent no old row; set REPLICA IDENTITY FULL on the provider too`,
            "ERR_APPLY_NO_IDENTITY",
            "update",
            relation.remoteName,
          );
        }
        const old = update.oldTuple === null ? undefined : tupleText(update.oldTuple);
        log.trace("Update of {relation}", () => ({ relation: relation.remoteName }));
        const counters = this.#statistics.count(relation);
        counters.updates++;
        if (relation.deltaColumns.length > 0) counters.deltaApplied++;
        return this.#writer.update(relation, identity, old ?? values, values, old);
      },
    );
  }

  /** Delete: pipelined DELETE by the local replica identity. */
  async applyDelete(del: Delete): Promise<void> {
    await this.#rowOperation("DELETE", del.relationId, null, del.oldTuple, (relation) => {
      const identity = this.#identity(relation, "delete");
      log.trace("Delete from {relation}", () => ({ relation: relation.remoteName }));
      this.#statistics.count(relation).deletes++;
      return this.#writer.delete(relation, identity, tupleText(del.oldTuple));
    });
  }

  /**
   * A row change: applied at once, or in exception mode inside its own
   * savepoint (a table that could not be mapped fails every change to it).
   */
  async #rowOperation(
    kind: GuardedOperation["operation"],
    relationId: number,
    newTuple: Tuple | null,
    oldTuple: Tuple | null,
    apply: (relation: LocalRelation) => Promise<void>,
  ): Promise<void> {
    const exceptions = this.#exceptions;
    const unmapped = this.#mode === "skip" || !this.#relations.anyBroken
      ? undefined
      : await this.#retryBroken(relationId);
    if (unmapped !== undefined) {
      // Outside exception mode the transaction fails here, to be replayed in it.
      if (exceptions === undefined) throw unmapped;
      const { relation } = this.#relations.broken(relationId)!;
      await exceptions.run(
        guardedOperation(kind, relation, newTuple, oldTuple),
        undefined,
        unmapped,
      );
      this.#statistics.countTable(relation.namespace, relation.relationName).discarded++;
      return;
    }
    const relation = this.#rowTarget(relationId, kind.toLowerCase());
    if (relation === undefined) return;
    if (relation.statementTriggers.length > 0) await this.#quietStatementTriggers(relation);
    if (exceptions === undefined) return apply(relation);
    const counters = this.#statistics.count(relation);
    const before = { ...counters };
    const error = await exceptions.run(
      guardedOperation(kind, relation, newTuple, oldTuple),
      () => apply(relation),
    );
    if (!exceptions.kept) {
      // Counted as applied by `apply`, but rolled back: counted as discarded instead.
      counters.inserts = before.inserts;
      counters.updates = before.updates;
      counters.deletes = before.deletes;
      counters.deltaApplied = before.deltaApplied;
      counters.discarded = before.discarded + 1;
    }
    const state = (error as { sqlState?: string } | undefined)?.sqlState;
    if (state === "SP002") counters.conflicts.update_missing++;
    if (state === "23505" && kind === "UPDATE") counters.conflicts.update_exists++;
  }

  /**
   * Disables the relation's statement-level triggers until this transaction
   * commits (as PG's apply, which fires row triggers only); in the
   * transaction, ahead of any operation's savepoint, so a rolled-back
   * operation does not take it back.
   */
  async #quietStatementTriggers(relation: LocalRelation): Promise<void> {
    if (relation.statementTriggers.length === 0 || this.#quieted.has(relation)) return;
    this.#quieted.add(relation);
    await this.#writer.run(alterTriggers(relation, "disable"), [], "trigger");
  }

  /** Truncate: one TRUNCATE of every listed relation; RESTART IDENTITY if flagged, never CASCADE. */
  async applyTruncate(truncate: Truncate): Promise<void> {
    const relations: LocalRelation[] = [];
    for (const relationId of truncate.relationIds) {
      const relation = this.#rowTarget(relationId, "truncate");
      if (relation === undefined) return;
      relations.push(relation);
    }
    if (relations.length === 0) return;
    await this.#writer.truncate(relations, truncate.restartIdentity);
  }

  /**
   * Commit: the counters and `spock.progress` when due, then the origin's
   * position and COMMIT (`ApplySession.commit`). A
   * fast transaction's COMMIT is not awaited: it joins the window. Careful
   * and exception-mode transactions wait for it, and a failure rolls back,
   * puts the origin back and is thrown.
   */
  async applyCommit(commit: Commit): Promise<void> {
    const begin = this.#begin;
    if (begin === undefined) {
      throw this.#error(
        "Cannot apply commit outside a transaction",
        "ERR_APPLY_PROTOCOL_ORDER",
        "commit",
      );
    }
    if (this.#mode === "skip") {
      this.#begin = undefined;
      this.#mode = undefined;
      return;
    }
    const exceptions = this.#exceptions;
    await exceptions?.finish();
    // Before anything commits (sub_disable commits its log rows below).
    for (const relation of this.#quieted) {
      await this.#writer.run(alterTriggers(relation, "enable"), [], "commit");
    }
    this.#quieted.clear();
    if (exceptions !== undefined) {
      const behaviour = this.#options.exceptions!.behaviour;
      if (exceptions.failures === 0 && behaviour !== "discard") {
        throw this.#error(
          "Cannot apply remote transaction: it failed, but none of its operations failed on its own; retrying it whole",
          "ERR_APPLY_RETRY",
          "commit",
        );
      }
      if (exceptions.failures > 0 && behaviour === "sub_disable") {
        await this.#disableSubscription(exceptions, begin);
      }
    }
    const fast = this.#mode === "fast";
    const commitTime = formatPgTimestamp(commit.commitTime);
    const stats = this.#statistics.takeForCommit();
    if (stats !== undefined) await this.#writer.run(CHANNEL_STATS_SQL, stats.params, "commit");
    const rowFilters = this.#options.rowFilters;
    const filtersChange = rowFilters?.pending === true;
    if (filtersChange && this.#options.subscriptionId !== undefined) {
      await this.#writer.run(SAVE_ROW_FILTERS_SQL, [
        String(this.#options.subscriptionId),
        JSON.stringify(rowFilters!.committedDocument()),
      ], "commit");
    }
    const progress = this.#progress.paramsFor(commit, this.#lastWalEnd);
    const writesProgress = this.#progress.takeDue(fast);
    if (writesProgress) await this.#writer.run(PROGRESS_SQL, progress, "commit");
    await this.#writer.flush();
    const entry = this.#entry!;
    entry.commit = commit;
    this.#window.committed(entry);
    entry.counters = this.#statistics.detach();
    entry.taken = stats?.taken;
    const acknowledge = () => {
      this.#window.acknowledge(entry);
      this.#statistics.settle(entry.counters!, true);
      this.#appliedEndLsn = commit.endLsn;
      this.#progress.acknowledged(progress, writesProgress);
      log.debug("Applied remote transaction {xid} committed at {lsn} end {end}", () => ({
        end: formatLsn(commit.endLsn),
        xid: begin.xid,
        lsn: formatLsn(commit.commitLsn),
      }));
    };
    if (fast) {
      entry.settled = this.#session.commit(commit.endLsn, commitTime).then(
        acknowledge,
        (cause) => this.#noteFailure(entry, { cause, operation: "commit", relation: undefined }),
      );
      this.#begin = undefined;
      this.#entry = undefined;
      this.#mode = undefined;
      if (filtersChange) {
        // Later transactions are filtered the new way: this one must have committed.
        await this.#settleWindow();
        await this.#refilter(rowFilters!.commit());
      }
      await this.#window.admit();
      await this.#wire.writable();
      return;
    }
    const failure = await this.#writer.drain();
    const commitError = failure !== undefined
      ? undefined
      : await this.#session.commit(commit.endLsn, commitTime).then(
        () => undefined,
        (error: unknown) => error,
      );
    if (failure !== undefined || commitError !== undefined) {
      const error = failure !== undefined
        ? this.#sqlError(failure.cause, failure.operation, failure.relation?.remoteName)
        : this.#sqlError(commitError, "commit");
      this.#statistics.settle(entry.counters, false, entry.taken);
      this.#window.forget(entry);
      this.#resetTransaction();
      await this.#session.recover(this.#appliedEndLsn);
      throw error;
    }
    this.#begin = undefined;
    this.#entry = undefined;
    this.#mode = undefined;
    acknowledge();
    if (filtersChange) await this.#refilter(rowFilters!.commit());
    if (exceptions !== undefined) {
      this.#exceptions = undefined;
      log.warning(
        "Remote transaction {xid} at {lsn}: {failed} of {operations} operations failed, {discarded} discarded (exception_behaviour {behaviour}); see spock.exception_log",
        {
          xid: begin.xid,
          lsn: formatLsn(begin.finalLsn),
          failed: exceptions.failures,
          operations: exceptions.operations,
          discarded: exceptions.discarded,
          behaviour: this.#options.exceptions!.behaviour,
        },
      );
    }
  }

  /**
   * Between transactions, on a keepalive from the provider: everything it
   * sent is applied, up to its WAL position `walEnd`. Recorded in
   * `spock.progress` (`CAUGHT_UP_SQL`) and in the replication origin.
   */
  noteCaughtUp(walEnd: Lsn): Promise<void> {
    return this.#track(() => this.#noteCaughtUp(walEnd));
  }

  async #noteCaughtUp(walEnd: Lsn): Promise<void> {
    if (this.#begin !== undefined) return;
    await this.#drain();
    // The origin moves there too (nothing before walEnd is left to apply), so a
    // restart starts from here and an idle link passes a channel switch point.
    const position = walEnd > this.#appliedEndLsn ? walEnd : this.#appliedEndLsn;
    const unwritten = this.#progress.unwritten;
    const statements: Promise<unknown>[] = [this.#wire.query("begin")];
    if (unwritten !== undefined) {
      statements.push(this.#wire.query(PROGRESS_SQL, unwritten, { prepare: true }));
    }
    statements.push(
      this.#wire.query(CAUGHT_UP_SQL, this.#progress.caughtUpParams(walEnd), { prepare: true }),
    );
    statements.push(this.#session.commit(position, new Date().toISOString()));
    const ended = this.#wire.sync();
    const failed = (await Promise.allSettled(statements)).find((s) => s.status === "rejected");
    await ended;
    if (failed !== undefined) {
      await this.#session.recover(this.#appliedEndLsn);
      throw (failed as PromiseRejectedResult).reason;
    }
    this.#progress.caughtUp();
    this.#appliedEndLsn = position;
  }

  /**
   * Between transactions: writes the counters gathered since the last write,
   * at most once a second unless `now` (a commit writes them in its own
   * transaction).
   */
  async flushCounters(now = false): Promise<void> {
    if (this.#begin !== undefined || this.#window.size > 0) return;
    const params = this.#statistics.takeIfDue(now);
    if (params !== undefined) {
      await this.#wire.query(CHANNEL_STATS_SQL, params, { prepare: true, sync: true });
    }
  }
  /**
   * After a commit that changed the row filters or column lists of
   * `tables`: their relations are mapped again (a new object, so the writer
   * builds their statements anew).
   */
  async #refilter(tables: Array<[string, string]>): Promise<void> {
    try {
      for await (const { name, filter } of this.#relations.remap(tables)) {
        log.info("Row filter of {relation} is now {filter}", {
          relation: name,
          filter: filter ?? "none",
        });
      }
    } catch (error) {
      throw this.#sqlError(error, "relation");
    }
  }
  /**
   * exception_behaviour sub_disable: commits the exception_log rows and the
   * disabled subscription without moving the origin (the transaction stays
   * unapplied), then throws.
   */
  async #disableSubscription(exceptions: ExceptionReplay, begin: Begin): Promise<never> {
    const name = this.#options.subscriptionName ?? this.#options.originName;
    const lsn = formatLsn(begin.finalLsn);
    await exceptions.disableSubscription({ id: this.#options.subscriptionId ?? 0, name }, lsn);
    await this.#wire.simple("commit");
    if (this.#entry !== undefined) this.#window.forget(this.#entry);
    this.#resetTransaction();
    throw this.#error(
      `Subscription "${name}" disabled by exception_behaviour sub_disable: remote transaction ${begin.xid} failed (skip_lsn = ${lsn}, see spock.exception_log); fix the cause and run SELECT spock.sub_enable('${name}'), or skip the transaction with SELECT spock.sub_alter_skiplsn('${name}', '${lsn}'); SELECT spock.sub_enable('${name}')`,
      "ERR_APPLY_SUB_DISABLED",
      "commit",
      undefined,
      undefined,
      begin,
    );
  }

  /**
   * Waits for the COMMITs in flight, rolls back anything open (putting the
   * origin back if a COMMIT failed), writes the progress and counters not
   * written yet, and ends the session.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#busy;
    try {
      await this.#writer.drain();
      await this.#window.drain(this.#entry);
      const failed = this.#window.failure !== undefined;
      await this.#rollback();
      if (failed) {
        this.#window.takeAll();
        await this.#session.recover(this.#appliedEndLsn);
      } else if (this.#progress.unwritten !== undefined) {
        await this.#wire.query("begin");
        await this.#wire.query(PROGRESS_SQL, this.#progress.unwritten, { prepare: true });
        await this.#wire.simple("commit");
        this.#progress.caughtUp();
      }
      await this.flushCounters(true);
    } catch (error) {
      log.warning("Cannot close the apply session cleanly: {error}", {
        error: (error as Error).message,
      });
    }
    await this.#session.close();
  }
  #rowTarget(relationId: number, operation: string): LocalRelation | undefined {
    if (this.#begin === undefined) {
      throw this.#error(
        `Cannot apply ${operation} outside a transaction`,
        "ERR_APPLY_PROTOCOL_ORDER",
        operation,
      );
    }
    if (this.#mode === "skip") return undefined;
    const relation = this.#relations.get(relationId);
    if (relation === undefined) {
      throw this.#error(
        `Cannot apply ${operation}: relation ${relationId} was never described`,
        "ERR_APPLY_PROTOCOL_ORDER",
        operation,
      );
    }
    return relation;
  }

  #identity(relation: LocalRelation, operation: string) {
    if (relation.identity === undefined) {
      throw this.#error(
        `Cannot apply ${operation}: ${relation.identityProblem}; add a primary key or replica identity`,
        "ERR_APPLY_NO_IDENTITY",
        operation,
        relation.remoteName,
      );
    }
    return relation.identity;
  }

  /** Rolls back the open transaction: everything sent before it has answered once this returns. */
  async #rollback(): Promise<void> {
    const entry = this.#entry;
    const wasOpen = this.#begin !== undefined && this.#mode !== "skip";
    this.#resetTransaction();
    if (entry !== undefined) this.#window.forget(entry);
    if (!wasOpen) return;
    const status = await this.#wire.sync().catch(() => "I");
    if (status !== "I") await this.#wire.simple("rollback").catch(() => {});
    if (this.#window.failure?.entry === entry && this.#window.size === 0) this.#window.takeAll();
  }

  #throwFailure(failure: WriteFailure | undefined): void {
    if (failure === undefined) return;
    throw this.#sqlError(failure.cause, failure.operation, failure.relation?.remoteName);
  }

  #sqlError(cause: unknown, operation: string, relation?: string, begin?: Begin): ApplyError {
    const sqlState = (cause as { code?: string }).code;
    return this.#error(
      `Cannot apply remote ${operation}: server error ${sqlState ?? "unknown"}`,
      "ERR_APPLY_SQL",
      operation,
      relation,
      cause,
      begin ?? this.#begin,
    );
  }

  #error(
    summary: string,
    code: ApplyErrorCode,
    operation: string,
    relation?: string,
    cause?: unknown,
    begin: Begin | undefined = this.#begin,
  ): ApplyError {
    return new ApplyError(summary, {
      code,
      operation,
      origin: this.#options.originName,
      remoteXid: begin?.xid,
      remoteCommitLsn: begin?.finalLsn,
      relation,
      cause,
    });
  }
}
