/**
 * The apply folder's domain error, `ApplyError`: every failure to apply a
 * remote change names where it happened (origin, remote xid, commit LSN,
 * relation, operation), as PG's `apply_error_callback` does. Row values never
 * reach the message; the PostgresError rides along as `cause`.
 */
import { formatLsn, type Lsn } from "../pg/mod.ts";

/** Why applying failed; stable, for callers to branch on. */
export type ApplyErrorCode =
  | "ERR_APPLY_MISSING_RELATION"
  | "ERR_APPLY_MISSING_COLUMNS"
  | "ERR_APPLY_NO_IDENTITY"
  | "ERR_APPLY_UNSUPPORTED"
  | "ERR_APPLY_PROTOCOL_ORDER"
  /** A logical message of spock's (queue, row filters) that cannot be read. */
  | "ERR_APPLY_BAD_MESSAGE"
  | "ERR_APPLY_SQL"
  /** Exception handling must replay a transaction too big to keep: restart the stream. */
  | "ERR_APPLY_REPLAY_RESTART"
  /** A conflict in a transaction too big to keep: restart the stream, apply it with conflict handling. */
  | "ERR_APPLY_CAREFUL_RESTART"
  /** A replay found no failing operation: retry the transaction as a whole. */
  | "ERR_APPLY_RETRY"
  /** exception_behaviour sub_disable disabled the subscription. */
  | "ERR_APPLY_SUB_DISABLED"
  /** The subscription's replication origin is gone: resuming would apply transactions twice. */
  | "ERR_APPLY_NO_ORIGIN"
  /** The previous apply session's last commit is still ending: open the session again later. */
  | "ERR_APPLY_COMMIT_IN_DOUBT";

/** Where an apply error happened. */
export interface ApplyErrorOptions {
  code: ApplyErrorCode;
  /** The message being applied: `"insert"`, `"relation"`, `"stream_start"` … */
  operation: string;
  /** Replication origin (the subscription's slot name). */
  origin?: string;
  remoteXid?: number;
  remoteCommitLsn?: Lsn;
  /** `schema.table` as the provider named it. */
  relation?: string;
  cause?: unknown;
}

/**
 * A remote change that could not be applied locally: a missing table or
 * column, a message this increment does not apply (streamed or two-phase
 * transactions), or an SQL error (then `cause` is the PostgresError and
 * `sqlState` its SQLSTATE).
 *
 * @example
 * ```ts
 * import { ApplyError } from "./mod.ts";
 * const error = new ApplyError("Cannot apply insert", {
 *   code: "ERR_APPLY_SQL",
 *   operation: "insert",
 *   relation: "public.t",
 * });
 * console.assert(error.message.includes('relation "public.t"'));
 * ```
 */
export class ApplyError extends Error {
  readonly code: ApplyErrorCode;
  readonly operation: string;
  readonly origin: string | undefined;
  readonly remoteXid: number | undefined;
  readonly remoteCommitLsn: Lsn | undefined;
  readonly relation: string | undefined;
  /** SQLSTATE of the cause, when it is a server error. */
  readonly sqlState: string | undefined;
  /** The message without the context suffix. */
  readonly summary: string;

  constructor(summary: string, options: ApplyErrorOptions) {
    super(`${summary}${context(options)}`, { cause: options.cause });
    this.name = "ApplyError";
    this.summary = summary;
    this.code = options.code;
    this.operation = options.operation;
    this.origin = options.origin;
    this.remoteXid = options.remoteXid;
    this.remoteCommitLsn = options.remoteCommitLsn;
    this.relation = options.relation;
    const cause = options.cause as { code?: unknown } | undefined;
    this.sqlState = typeof cause?.code === "string" && /^[0-9A-Z]{5}$/.test(cause.code)
      ? cause.code
      : undefined;
  }
}

function context(options: ApplyErrorOptions): string {
  const parts = [`processing remote message "${options.operation}"`];
  if (options.relation !== undefined) parts.push(`for relation "${options.relation}"`);
  if (options.origin !== undefined) parts.push(`from origin "${options.origin}"`);
  if (options.remoteXid !== undefined) parts.push(`in transaction ${options.remoteXid}`);
  if (options.remoteCommitLsn !== undefined) {
    parts.push(`finished at ${formatLsn(options.remoteCommitLsn)}`);
  }
  return ` (${parts.join(" ")})`;
}
