/**
 * Exception handling (Spock's `exception_behaviour` and `exception_logging`):
 * once a remote transaction fails, it is replayed with every operation in its
 * own savepoint. A failed operation is rolled back; a successful one is kept
 * under `discard` and rolled back under `transdiscard` and `sub_disable`
 * (the whole remote transaction is discarded). Operations are recorded in
 * `spock.exception_log` as `exception_logging` says: failed ones always
 * (unless `none`), successful ones with `all` or when the transaction is
 * discarded. Deciding when to replay and how to commit is the applier's.
 *
 *   first try:  begin; insert; update ✗ (23514) → rollback
 *   replay:     begin; savepoint; insert ✓; rollback to savepoint (transdiscard)
 *                      savepoint; update ✗; rollback to savepoint
 *                      exception_log rows; progress; xact_setup + commit
 */
import type { WireSession } from "../pg/mod.ts";
import { type Relation, type Tuple, tupleText } from "../pgoutput/mod.ts";
import { localRowStatement } from "./conflicts/statements.ts";
import { ApplyError } from "./errors.ts";
import type { LocalRelation, MappedColumn } from "./relation_map.ts";
import type { SqlWriter } from "./sql_writer.ts";

/** What happens to a remote transaction that fails to apply. */
export type ExceptionBehaviour = "discard" | "transdiscard" | "sub_disable";
/** Which replayed operations go to `spock.exception_log`. */
export type ExceptionLogging = "none" | "discard" | "all";

/** The exception handling settings of one subscription. */
export interface ExceptionSettings {
  behaviour: ExceptionBehaviour;
  logging: ExceptionLogging;
  /** Bytes of a remote transaction kept for a replay without restarting the stream. */
  replayQueueSize: number;
}

/** Spock's defaults. */
export const DEFAULT_EXCEPTION_SETTINGS: Readonly<ExceptionSettings> = Object.freeze({
  behaviour: "transdiscard",
  logging: "all",
  replayQueueSize: 4_194_304,
});

// Connection, transaction-rollback (serialization, deadlock), resources,
// operator intervention, system errors; lock and object-in-use timeouts.
const TRANSIENT_CLASSES = ["08", "40", "53", "57", "58"];
const TRANSIENT_STATES = ["55P03", "55006"];

/**
 * True when an error says nothing about the data: no SQLSTATE (a lost
 * connection) or a class retried rather than discarded (serialization
 * failure, deadlock, lock timeout, shutdown, out of resources).
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof ApplyError && error.code !== "ERR_APPLY_SQL") return false;
  let cause: unknown = error;
  while (cause instanceof Error && !hasSqlState(cause) && cause.cause !== undefined) {
    cause = cause.cause;
  }
  const state = hasSqlState(cause) ? (cause as { code: string }).code : undefined;
  if (state === undefined) return true;
  return TRANSIENT_CLASSES.includes(state.slice(0, 2)) || TRANSIENT_STATES.includes(state);
}

function hasSqlState(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code);
}

/** The SQLSTATE and message of an error, for `exception_log.error_message`. */
export function describeFailure(error: unknown): string {
  let cause: unknown = error;
  while (cause instanceof Error && !hasSqlState(cause) && cause.cause !== undefined) {
    cause = cause.cause;
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return hasSqlState(cause) ? `${(cause as { code: string }).code}: ${message}` : message;
}

/** One remote operation as exception handling records it. */
export interface GuardedOperation {
  /**
   * A row change, or a queued command ('Q' and 'D' run as DDL, 'S' sets a
   * sequence, 'A' asks for a table copy).
   */
  operation: "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE" | "DDL" | "SEQUENCE" | "TABLESYNC";
  schema: string;
  table: string;
  /** The mapped local table; undefined when mapping it failed. */
  relation: LocalRelation | undefined;
  newTuple?: Record<string, string | null>;
  oldTuple?: Record<string, string | null>;
  /** How to find the local row: identity columns and their values. */
  key?: { columns: MappedColumn[]; values: (string | null)[] };
  /** A queued command: its text and the role it runs as (`ddl_statement`, `ddl_user`). */
  ddl?: { statement: string; user: string };
}

/** The remote transaction being replayed. */
export interface ReplayedTransaction {
  remoteNodeId: number;
  commitTime: string;
  xid: string;
}

/**
 * Inserts one exception_log row: $1 origin, $2 commit time, $3 command
 * counter, $4 xid, $5 schema, $6 table, $7 operation, $8 old and $9 new rows
 * (JSON), $10 message, $11 and $12 a queued command and its role; `local` (a
 * lateral select of `tup`, `ts`, `origin` with its key from $13 on) finds the
 * local row in the same statement.
 */
function exceptionLogSql(local: string | undefined): string {
  const lookup = local === undefined
    ? "select null::text as tup, null::text as ts, null::text as origin"
    : local;
  return `
insert into spock.exception_log (remote_origin, remote_commit_ts, command_counter,
  retry_errored_at, remote_xid, local_origin, local_commit_ts, table_schema, table_name,
  operation, local_tup, remote_old_tup, remote_new_tup, error_message, ddl_statement, ddl_user)
select $1::text::oid, $2::text::timestamptz, $3::text::int4, now(), $4::text::int8,
  l.origin::oid, l.ts::timestamptz, $5, $6, $7, l.tup::jsonb, $8::text::jsonb, $9::text::jsonb, $10,
  $11, $12
from (values (1)) as d left join lateral (${lookup}) as l on true`;
}

/** Parameters of an exception_log row before the local row's key. */
const LOG_PARAMS = 12;
const END_KEPT = "release savepoint spock_operation";
const END_DISCARDED = "rollback to savepoint spock_operation; release savepoint spock_operation";

/** Runs the operations of one replayed transaction, each in its own savepoint. */
export class ExceptionReplay {
  #sql: WireSession;
  #writer: SqlWriter;
  #settings: ExceptionSettings;
  #transaction: ReplayedTransaction;
  #counter = 0;
  #failures = 0;
  #discarded = 0;
  #kept = false;
  /** The last operation was kept: its savepoint is released with the next one's. */
  #releasePending = false;
  /** The last discarded operation's rollback and log row, resolving to their failure if any. */
  #inFlight: Promise<unknown> = Promise.resolve(undefined);

  constructor(
    sql: WireSession,
    writer: SqlWriter,
    settings: ExceptionSettings,
    transaction: ReplayedTransaction,
  ) {
    this.#sql = sql;
    this.#writer = writer;
    this.#settings = settings;
    this.#transaction = transaction;
  }

  /** Operations that failed. */
  get failures(): number {
    return this.#failures;
  }

  /** Operations rolled back (failed or discarded with the transaction). */
  get discarded(): number {
    return this.#discarded;
  }

  /** Operations run so far. */
  get operations(): number {
    return this.#counter;
  }

  /** Whether the last operation run was kept (applied) rather than rolled back. */
  get kept(): boolean {
    return this.#kept;
  }

  /**
   * Runs `apply` in a savepoint (or records `failure` without running
   * anything); keeps or rolls back its effect and logs it. A transient
   * failure is thrown: the transaction must be retried, not discarded.
   *
   * Every savepoint is released, also after ROLLBACK TO (left in place, it
   * would nest the next one inside it, and 50,000 nested subtransactions run
   * out of lock memory). A kept operation's release travels with the next
   * operation's savepoint, a discarded one's with its log row: one or two
   * round trips per operation. Call {@link finish} before the commit.
   */
  async run(
    operation: GuardedOperation,
    apply: (() => Promise<void>) | undefined,
    failure?: unknown,
  ): Promise<unknown> {
    this.#counter++;
    // Sent now, ahead of the operation.
    const savepoint = this.#sql.simple(
      this.#releasePending ? `${END_KEPT}; savepoint spock_operation` : "savepoint spock_operation",
    );
    this.#releasePending = false;
    let error = failure;
    if (apply !== undefined) {
      try {
        await apply();
        error = (await this.#writer.drain())?.cause;
      } catch (thrown) {
        await this.#writer.drain();
        error = thrown;
      }
    }
    await this.#settle();
    await savepoint;
    if (error !== undefined && isTransientError(error)) throw error;
    const keep = error === undefined && this.#settings.behaviour === "discard";
    this.#kept = keep;
    if (error !== undefined) this.#failures++;
    const logged = this.#logs(error !== undefined);
    if (keep) {
      this.#releasePending = true;
      if (logged) await this.#log(operation, error, keep);
      return error;
    }
    this.#discarded++;
    // Logged after the rollback (sent behind it), so that the log row stays and
    // sees the local row as it is; both are awaited with the next operation.
    const end = this.#sql.simple(END_DISCARDED);
    const log = logged ? this.#log(operation, error, keep) : undefined;
    this.#inFlight = Promise.all([end, log]).then(() => undefined, (failed) => failed);
    return error;
  }

  /** Waits for the previous operation's rollback and log row; throws their failure. */
  async #settle(): Promise<void> {
    const failed = await this.#inFlight;
    this.#inFlight = Promise.resolve(undefined);
    if (failed !== undefined) throw failed;
  }

  /** Completes the last operation (its release, or rollback and log row): call it before committing. */
  async finish(): Promise<void> {
    await this.#settle();
    if (!this.#releasePending) return;
    this.#releasePending = false;
    await this.#sql.simple(END_KEPT);
  }

  /** Spock's should_log_exception(). */
  #logs(failed: boolean): boolean {
    const { logging, behaviour } = this.#settings;
    if (logging === "none") return false;
    return failed || logging === "all" || behaviour !== "discard";
  }

  async #log(operation: GuardedOperation, error: unknown, kept: boolean): Promise<void> {
    const { relation, key } = operation;
    const lookup = relation !== undefined && key !== undefined && key.columns.length > 0
      ? localRowStatement(relation, key.columns, LOG_PARAMS)
      : undefined;
    const message = error !== undefined
      ? describeFailure(error)
      : kept
      ? "applied (exception_logging = all)"
      : "discarded with its transaction";
    await this.#sql.query(exceptionLogSql(lookup), [
      String(this.#transaction.remoteNodeId),
      this.#transaction.commitTime,
      String(this.#counter),
      this.#transaction.xid,
      operation.schema,
      operation.table,
      operation.operation,
      operation.oldTuple === undefined ? null : JSON.stringify(operation.oldTuple),
      operation.newTuple === undefined ? null : JSON.stringify(operation.newTuple),
      message,
      operation.ddl?.statement ?? null,
      operation.ddl?.user ?? null,
      ...(lookup === undefined ? [] : key!.values),
    ], { prepare: true, sync: true });
  }

  /**
   * Records that the subscription is disabled because of this transaction,
   * with the LSN to give `sub_alter_skiplsn`, and disables it.
   */
  async disableSubscription(
    subscription: { id: number; name: string },
    commitLsn: string,
  ): Promise<void> {
    this.#counter++;
    await this.#sql.query(
      `insert into spock.exception_log (remote_origin, remote_commit_ts, command_counter,
         retry_errored_at, remote_xid, operation, error_message)
       values ($1::text::oid, $2::text::timestamptz, $3::text::int4, now(), $4::text::int8,
         'SUB_DISABLE', $5)`,
      [
        String(this.#transaction.remoteNodeId),
        this.#transaction.commitTime,
        String(this.#counter),
        this.#transaction.xid,
        `disabling subscription ${subscription.name} due to exception(s) - skip_lsn = ${commitLsn}`,
      ],
      { sync: true },
    );
    await this.#sql.query(
      "update spock.subscription set sub_enabled = false where sub_id = $1::text::oid",
      [String(subscription.id)],
      { sync: true },
    );
    await this.#sql.query("select spock._notify('subscription', $1, 'disable')", [
      subscription.name,
    ], { sync: true });
  }
}

/**
 * A row change as exception handling records it, for a mapped local table
 * or (mapping failed) the remote relation alone.
 */
export function guardedOperation(
  kind: GuardedOperation["operation"],
  relation: LocalRelation | Relation,
  newTuple: Tuple | null,
  oldTuple: Tuple | null,
): GuardedOperation {
  const newValues = newTuple === null ? undefined : tupleText(newTuple);
  const oldValues = oldTuple === null ? undefined : tupleText(oldTuple);
  if (!("qualifiedName" in relation)) {
    return {
      operation: kind,
      schema: relation.namespace,
      table: relation.relationName,
      relation: undefined,
      newTuple: newValues && tupleRecord(relation.columns, newValues),
      oldTuple: oldValues && tupleRecord(relation.columns, oldValues),
    };
  }
  const keyValues = oldValues ?? newValues;
  const key = relation.identity?.filter((column) =>
    typeof keyValues?.[column.remoteIndex] !== "symbol"
  );
  const [schema, table] = relation.remoteNameParts;
  return {
    operation: kind,
    schema,
    table,
    relation,
    newTuple: newValues && tupleRecord(relation.columns, newValues),
    oldTuple: oldValues && tupleRecord(relation.columns, oldValues),
    key: key === undefined || keyValues === undefined ? undefined : {
      columns: key,
      values: key.map((column) => keyValues[column.remoteIndex] as string | null),
    },
  };
}

/** A tuple's text values by column name, for `exception_log` (unchanged TOAST left out). */
function tupleRecord(
  columns: readonly { name: string }[],
  values: readonly (string | null | symbol)[],
): Record<string, string | null> {
  const record: Record<string, string | null> = {};
  columns.forEach((column, i) => {
    const value = values[i];
    if (typeof value !== "symbol") record[column.name] = value ?? null;
  });
  return record;
}
