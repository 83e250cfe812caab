/**
 * Leaf primitives shared by every folder: LSNs, timestamps, quoting, COPY
 * text rows, `text[]` literals, and libpq-style DSNs (parse, mask, resolve to connection settings), and the
 * pipelining wire session the apply path runs on.
 *
 * @example
 * ```ts
 * import { formatLsn, maskDsn, parseLsn } from "./mod.ts";
 * formatLsn(parseLsn("16/B374D848") + 8n); // "16/B374D850"
 * maskDsn("host=db password=secret"); // "host=db password=********"
 * ```
 */
export {
  type PgConnectOptions,
  resolveConnectOptions,
  type ResolveOptions,
  type TlsSettings,
} from "./connection_options.ts";
export { copyTextRow } from "./copy_text.ts";
export {
  type ConnectionParams,
  DsnError,
  formatDsn,
  type HostTarget,
  isUnixSocketHost,
  maskDsn,
  parseDsn,
  type SslMode,
} from "./dsn.ts";
export { formatLsn, INVALID_LSN, type Lsn, parseLsn } from "./lsn.ts";
export { lookupPgpass } from "./pgpass.ts";
export {
  PgConnectionError,
  PgServerError,
  PgSkippedError,
  type ServerMessageFields,
} from "./wire/errors.ts";
export {
  type CopyIn,
  type QueryOptions,
  type QueryResult,
  type Row,
  WireSession,
  type WireSessionOptions,
} from "./wire/session.ts";
export { quoteIdent, quoteLiteral } from "./quote.ts";
export { textArrayLiteral } from "./text_array.ts";
export {
  formatPgTimestamp,
  PG_EPOCH_UNIX_MICROS,
  type PgTimestamp,
  pgTimestampDiffMillis,
  pgTimestampFromUnixMicros,
  pgTimestampNow,
} from "./timestamp.ts";
