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
