/**
 * Errors of a wire session: what the server said (every ErrorResponse
 * field), a statement the server skipped because an earlier one in the same
 * pipeline failed, and a lost or refused connection (no SQLSTATE).
 */

/** The fields of an ErrorResponse or NoticeResponse, named as libpq names them. */
export interface ServerMessageFields {
  severity?: string;
  /** SQLSTATE. */
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  position?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  routine?: string;
}

/** An ErrorResponse: `code` is its SQLSTATE. */
export class PgServerError extends Error {
  readonly code: string;
  readonly severity: string | undefined;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly where: string | undefined;
  readonly schema: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly constraint: string | undefined;

  constructor(fields: ServerMessageFields) {
    super(fields.message ?? "unknown server error");
    this.name = "PgServerError";
    this.code = fields.code ?? "XX000";
    this.severity = fields.severity;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.where = fields.where;
    this.schema = fields.schema;
    this.table = fields.table;
    this.column = fields.column;
    this.constraint = fields.constraint;
  }
}

/**
 * A statement the server never ran: an earlier one in the same pipeline
 * failed (`cause`), and the server discards everything until the next Sync.
 */
export class PgSkippedError extends Error {
  readonly code = "ERR_PG_SKIPPED";
  constructor(cause: unknown) {
    super("Statement skipped: an earlier statement of the pipeline failed", { cause });
    this.name = "PgSkippedError";
  }
}

/** The connection could not be opened, or was lost; what was in flight is unknown. */
export class PgConnectionError extends Error {
  readonly code = "ERR_PG_CONNECTION";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PgConnectionError";
  }
}
