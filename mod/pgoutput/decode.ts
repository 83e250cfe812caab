/**
 * `decodeMessage()`: one pgoutput message (an XLogData payload) to one
 * `PgoutputMessage`, protocol versions 1–4. Readers mirror `proto.c`'s
 * `logicalrep_read_*` functions and are dispatched from one table keyed by
 * the type byte; the readers live in `_read_change.ts` and
 * `_read_transaction.ts`. Framing, transaction state and the Relation cache
 * are the caller's; decoding does no I/O and keeps no state between calls.
 */

import { formatByte } from "./_format.ts";
import {
  readDelete,
  readInsert,
  readMessage,
  readRelation,
  readTruncate,
  readType,
  readUpdate,
} from "./_read_change.ts";
import {
  readBegin,
  readBeginPrepare,
  readCommit,
  readCommitPrepared,
  readOrigin,
  readPrepare,
  readRollbackPrepared,
  readStreamAbort,
  readStreamCommit,
  readStreamPrepare,
  readStreamStart,
  readStreamStop,
} from "./_read_transaction.ts";
import { MessageReader } from "./_reader.ts";
import { ProtocolError } from "./errors.ts";
import type { PgoutputMessage, PgoutputMessageType } from "./messages.ts";

/** What the caller knows about the stream that the bytes cannot say. */
export interface DecodeContext {
  /** The `proto_version` given to START_REPLICATION: 1 to 4. */
  protoVersion: number;
  /**
   * True between Stream Start and Stream Stop. With protocol 2 or later the
   * change messages (Relation, Type, Insert, Update, Delete, Truncate,
   * Message) then carry an Int32 xid prefix; the decoder never guesses.
   */
  inStream: boolean;
}

/** The highest protocol version this decoder understands (PostgreSQL 16–18). */
export const MAX_PROTO_VERSION = 4;

/**
 * Decodes one pgoutput message: the payload of one XLogData ('w') message,
 * starting with the type byte. Tuple column values and Message contents are
 * subarrays of `bytes`, so keep `bytes` unchanged while they are in use.
 *
 * @throws {ProtocolError} when the message is malformed, truncated, has an
 *   unknown type byte or trailing bytes, or needs a newer protocol version.
 * @throws {RangeError} when `context` is not a valid protocol state.
 */
export function decodeMessage(bytes: Uint8Array, context: DecodeContext): PgoutputMessage {
  const protoVersion = context.protoVersion;
  const inStream = context.inStream;
  if (!Number.isInteger(protoVersion) || protoVersion < 1 || protoVersion > MAX_PROTO_VERSION) {
    throw new RangeError(
      `Cannot decode with protocol version ${protoVersion}: expected 1 to ${MAX_PROTO_VERSION}`,
    );
  }
  if (inStream && protoVersion < 2) {
    throw new RangeError(
      "Cannot decode inside a stream with protocol version 1: streaming needs 2",
    );
  }
  if (bytes.length === 0) {
    throw new ProtocolError("the message is empty", { messageType: "", offset: 0 });
  }
  const typeByte = bytes[0];
  const spec = MESSAGE_SPECS[typeByte];
  if (spec === undefined) {
    throw new ProtocolError(`unknown message type byte ${formatByte(typeByte)}`, {
      messageType: String.fromCharCode(typeByte),
      offset: 0,
    });
  }
  if (protoVersion < spec.minProtoVersion) {
    throw new ProtocolError(
      `the message needs protocol version ${spec.minProtoVersion}, the stream uses ${protoVersion}`,
      { messageType: spec.name, offset: 0 },
    );
  }
  const reader = new MessageReader(bytes, spec.name);
  const xid = spec.streamXid && inStream ? reader.readUint32() : undefined;
  const message = spec.read(reader, xid, protoVersion);
  reader.finish();
  return message;
}

// Dispatch.

/** How to read one message type. */
interface MessageSpec {
  readonly name: PgoutputMessageType;
  /** The first protocol version that sends this message. */
  readonly minProtoVersion: number;
  /** Carries an Int32 xid prefix between Stream Start and Stream Stop. */
  readonly streamXid: boolean;
  readonly read: (
    r: MessageReader,
    xid: number | undefined,
    protoVersion: number,
  ) => PgoutputMessage;
}

/** The dispatch table: type byte → reader, built once. */
const MESSAGE_SPECS: readonly (MessageSpec | undefined)[] = indexByTypeByte({
  B: { name: "begin", minProtoVersion: 1, streamXid: false, read: readBegin },
  C: { name: "commit", minProtoVersion: 1, streamXid: false, read: readCommit },
  O: { name: "origin", minProtoVersion: 1, streamXid: false, read: readOrigin },
  R: { name: "relation", minProtoVersion: 1, streamXid: true, read: readRelation },
  Y: { name: "type", minProtoVersion: 1, streamXid: true, read: readType },
  I: { name: "insert", minProtoVersion: 1, streamXid: true, read: readInsert },
  U: { name: "update", minProtoVersion: 1, streamXid: true, read: readUpdate },
  D: { name: "delete", minProtoVersion: 1, streamXid: true, read: readDelete },
  T: { name: "truncate", minProtoVersion: 1, streamXid: true, read: readTruncate },
  M: { name: "message", minProtoVersion: 1, streamXid: true, read: readMessage },
  S: { name: "stream_start", minProtoVersion: 2, streamXid: false, read: readStreamStart },
  E: { name: "stream_stop", minProtoVersion: 2, streamXid: false, read: readStreamStop },
  c: { name: "stream_commit", minProtoVersion: 2, streamXid: false, read: readStreamCommit },
  A: { name: "stream_abort", minProtoVersion: 2, streamXid: false, read: readStreamAbort },
  b: { name: "begin_prepare", minProtoVersion: 3, streamXid: false, read: readBeginPrepare },
  P: { name: "prepare", minProtoVersion: 3, streamXid: false, read: readPrepare },
  K: { name: "commit_prepared", minProtoVersion: 3, streamXid: false, read: readCommitPrepared },
  r: {
    name: "rollback_prepared",
    minProtoVersion: 3,
    streamXid: false,
    read: readRollbackPrepared,
  },
  p: { name: "stream_prepare", minProtoVersion: 3, streamXid: false, read: readStreamPrepare },
});

function indexByTypeByte(specs: Record<string, MessageSpec>): (MessageSpec | undefined)[] {
  const table: (MessageSpec | undefined)[] = new Array(256).fill(undefined);
  for (const [typeChar, spec] of Object.entries(specs)) table[typeChar.charCodeAt(0)] = spec;
  return table;
}
