/**
 * The pgoutput folder's public API: decode PostgreSQL's pgoutput logical
 * replication messages (protocol versions 1–4, PostgreSQL 15–18) into the
 * `PgoutputMessage` union, and keep the Relation descriptions row messages
 * refer to. No I/O, clocks or logging: framing is `transport/`'s job,
 * applying changes `apply/`'s.
 *
 * @example Decoding an Insert
 * ```ts
 * import { decodeMessage, RelationCache } from "./mod.ts";
 *
 * const relations = new RelationCache();
 * // 'I', relation 16384, 'N', 1 column: text "42"
 * const bytes = new Uint8Array([
 *   0x49, 0, 0, 0x40, 0, 0x4e, 0, 1, 0x74, 0, 0, 0, 2, 0x34, 0x32,
 * ]);
 * const message = decodeMessage(bytes, { protoVersion: 4, inStream: false });
 * switch (message.type) {
 *   case "relation":
 *     relations.set(message);
 *     break;
 *   case "insert": {
 *     const column = message.newTuple[0];
 *     if (column.kind === "text") console.log(new TextDecoder().decode(column.bytes)); // "42"
 *     break;
 *   }
 * }
 * ```
 *
 * @module
 */

export { type DecodeContext, decodeMessage, MAX_PROTO_VERSION } from "./decode.ts";
export { ProtocolError, type ProtocolErrorOptions } from "./errors.ts";
export {
  type Begin,
  type BeginPrepare,
  type BinaryColumn,
  type Commit,
  type CommitPrepared,
  type Delete,
  type Insert,
  type Message,
  NULL_COLUMN,
  type NullColumn,
  type Origin,
  type PgoutputMessage,
  type PgoutputMessageType,
  type Prepare,
  type Relation,
  type RelationColumn,
  type ReplicaIdentity,
  type RollbackPrepared,
  type StreamAbort,
  type StreamCommit,
  type StreamPrepare,
  type StreamStart,
  type StreamStop,
  type TextColumn,
  type Truncate,
  type Tuple,
  type TupleColumn,
  type Type,
  UNCHANGED_COLUMN,
  type UnchangedColumn,
  type Update,
} from "./messages.ts";
export { RelationCache } from "./relations.ts";
export { PgoutputStreamDecoder } from "./stream_decoder.ts";
export { byteaHex, type ColumnText, columnText, tupleText, UNCHANGED_TOAST } from "./tuple_text.ts";
