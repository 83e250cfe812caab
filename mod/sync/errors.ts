/**
 * The sync folder's domain errors, with stable codes callers branch on.
 */

/** Why structure synchronization failed; stable, for callers to branch on. */
export type StructureSyncErrorCode =
  | "ERR_SYNC_NO_PG_DUMP"
  | "ERR_SYNC_DUMP_FAILED"
  | "ERR_SYNC_DUMP_META"
  | "ERR_SYNC_RESTORE_FAILED";

/**
 * A failed structure synchronization: no suitable pg_dump, pg_dump failed or
 * wrote a psql meta-command we will not run, or the subscriber refused the
 * script (then `cause` is the PostgresError and `sqlState` its SQLSTATE).
 * Messages never contain a password.
 */
export class StructureSyncError extends Error {
  readonly code: StructureSyncErrorCode;
  /** SQLSTATE of the cause, when the subscriber refused the script. */
  readonly sqlState: string | undefined;

  constructor(
    message: string,
    options: { code: StructureSyncErrorCode; sqlState?: string; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StructureSyncError";
    this.code = options.code;
    this.sqlState = options.sqlState;
  }
}

/** Why a data copy failed; stable, for callers to branch on. */
export type DataCopyErrorCode =
  /** A provider session could not import the slot's exported snapshot. */
  | "ERR_COPY_SNAPSHOT"
  /** A subscriber session could not create or bind its replication origin. */
  | "ERR_COPY_ORIGIN"
  /** A table in the subscription's sets is gone from the provider. */
  | "ERR_COPY_NO_TABLE"
  /** Reading a table on the provider or writing it on the subscriber failed. */
  | "ERR_COPY_TABLE";

/**
 * A failed data copy, naming the table (or the snapshot, or the origin) and
 * why; `cause` is the underlying error and `sqlState` its SQLSTATE when a
 * server refused something (a duplicate key, a missing column, a lost
 * connection). Row values never reach the message.
 */
export class DataCopyError extends Error {
  readonly code: DataCopyErrorCode;
  /** `schema.table` as quoted in the message, when one table failed. */
  readonly table: string | undefined;
  readonly sqlState: string | undefined;

  constructor(
    message: string,
    options: { code: DataCopyErrorCode; table?: string; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DataCopyError";
    this.code = options.code;
    this.table = options.table;
    const sqlState = (options.cause as { code?: unknown } | undefined)?.code;
    this.sqlState = typeof sqlState === "string" && /^[0-9A-Z]{5}$/.test(sqlState)
      ? sqlState
      : undefined;
  }

  /**
   * True when retrying cannot help until someone changes a database: the
   * table is missing, or the subscriber refused the rows (data, integrity or
   * schema errors, SQLSTATE classes 22, 23 and 42).
   */
  get operatorMustAct(): boolean {
    if (this.code === "ERR_COPY_NO_TABLE") return true;
    return this.code === "ERR_COPY_TABLE" && /^(22|23|42)/.test(this.sqlState ?? "");
  }
}
