/**
 * Test-only pgoutput encoder: writes each `PgoutputMessage` the way the
 * server's `logicalrep_write_*` functions do, so tests can round-trip them
 * and build malformed variants byte by byte with `ByteWriter`.
 */

import type { PgoutputMessage, Tuple } from "../../mod/pgoutput/mod.ts";

const UTF8 = new TextEncoder();

/** A growable big-endian writer, chained like postgres.js `bytes.js`. */
export class ByteWriter {
  #bytes = new Uint8Array(64);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  #reserve(count: number): number {
    const at = this.#length;
    if (at + count > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, at + count));
      grown.set(this.#bytes.subarray(0, at));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#length = at + count;
    return at;
  }

  /** Writes one byte; a one-character string writes its char code. */
  byte(value: number | string): this {
    const code = typeof value === "string" ? value.charCodeAt(0) : value;
    const at = this.#reserve(1);
    this.#view.setUint8(at, code);
    return this;
  }

  int16(value: number): this {
    const at = this.#reserve(2);
    this.#view.setUint16(at, value);
    return this;
  }

  int32(value: number): this {
    const at = this.#reserve(4);
    this.#view.setInt32(at, value);
    return this;
  }

  uint32(value: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, value);
    return this;
  }

  uint64(value: bigint): this {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, value);
    return this;
  }

  int64(value: bigint): this {
    const at = this.#reserve(8);
    this.#view.setBigInt64(at, value);
    return this;
  }

  /** Writes raw bytes. */
  raw(value: Uint8Array): this {
    const at = this.#reserve(value.length);
    this.#bytes.set(value, at);
    return this;
  }

  /** Writes a NUL-terminated UTF-8 string. */
  string(value: string): this {
    return this.raw(UTF8.encode(value)).byte(0);
  }

  /** The bytes written so far, as a fresh copy. */
  end(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}

/** Writes TupleData. */
export function writeTuple(w: ByteWriter, tuple: Tuple): ByteWriter {
  w.int16(tuple.length);
  for (const column of tuple) {
    switch (column.kind) {
      case "null":
        w.byte("n");
        break;
      case "unchanged":
        w.byte("u");
        break;
      case "text":
        w.byte("t").int32(column.bytes.length).raw(column.bytes);
        break;
      case "binary":
        w.byte("b").int32(column.bytes.length).raw(column.bytes);
        break;
    }
  }
  return w;
}

/** Writes a schema name as the server does: `pg_catalog` becomes "". */
function writeNamespace(w: ByteWriter, namespace: string): ByteWriter {
  return w.string(namespace === "pg_catalog" ? "" : namespace);
}

/** Writes the Int32 xid prefix of an in-stream change message, when the message has one. */
function writeXid(w: ByteWriter, xid: number | undefined): ByteWriter {
  return xid === undefined ? w : w.uint32(xid);
}

/**
 * Encodes `message` as the server would. Change messages with an `xid` get
 * the in-stream xid prefix; decode them with `inStream: true`.
 */
export function encodeMessage(message: PgoutputMessage): Uint8Array {
  const w = new ByteWriter();
  switch (message.type) {
    case "begin":
      w.byte("B").uint64(message.finalLsn).int64(message.commitTime).uint32(message.xid);
      break;
    case "commit":
      w.byte("C").byte(message.flags).uint64(message.commitLsn).uint64(message.endLsn)
        .int64(message.commitTime);
      break;
    case "origin":
      w.byte("O").uint64(message.originLsn).string(message.originName);
      break;
    case "relation":
      writeXid(w.byte("R"), message.xid).uint32(message.relationId);
      writeNamespace(w, message.namespace).string(message.relationName)
        .byte(message.replicaIdentity).int16(message.columns.length);
      for (const column of message.columns) {
        w.byte(column.flags).string(column.name).uint32(column.typeOid).int32(column.typeMod);
      }
      break;
    case "type":
      writeXid(w.byte("Y"), message.xid).uint32(message.typeOid);
      writeNamespace(w, message.namespace).string(message.typeName);
      break;
    case "insert":
      writeXid(w.byte("I"), message.xid).uint32(message.relationId).byte("N");
      writeTuple(w, message.newTuple);
      break;
    case "update":
      writeXid(w.byte("U"), message.xid).uint32(message.relationId);
      if (message.oldTuple !== null) {
        writeTuple(w.byte(message.oldKind === "key" ? "K" : "O"), message.oldTuple);
      }
      writeTuple(w.byte("N"), message.newTuple);
      break;
    case "delete":
      writeXid(w.byte("D"), message.xid).uint32(message.relationId);
      writeTuple(w.byte(message.oldKind === "key" ? "K" : "O"), message.oldTuple);
      break;
    case "truncate":
      writeXid(w.byte("T"), message.xid).int32(message.relationIds.length)
        .byte((message.cascade ? 1 : 0) | (message.restartIdentity ? 2 : 0));
      for (const relationId of message.relationIds) w.uint32(relationId);
      break;
    case "message":
      writeXid(w.byte("M"), message.xid).byte(message.transactional ? 1 : 0)
        .uint64(message.messageLsn).string(message.prefix).int32(message.content.length)
        .raw(message.content);
      break;
    case "stream_start":
      w.byte("S").uint32(message.xid).byte(message.firstSegment ? 1 : 0);
      break;
    case "stream_stop":
      w.byte("E");
      break;
    case "stream_commit":
      w.byte("c").uint32(message.xid).byte(message.flags).uint64(message.commitLsn)
        .uint64(message.endLsn).int64(message.commitTime);
      break;
    case "stream_abort":
      w.byte("A").uint32(message.xid).uint32(message.subXid);
      if (message.abortLsn !== undefined) w.uint64(message.abortLsn);
      if (message.abortTime !== undefined) w.int64(message.abortTime);
      break;
    case "begin_prepare":
      w.byte("b").uint64(message.prepareLsn).uint64(message.endLsn).int64(message.prepareTime)
        .uint32(message.xid).string(message.gid);
      break;
    case "prepare":
    case "stream_prepare":
      w.byte(message.type === "prepare" ? "P" : "p").byte(message.flags)
        .uint64(message.prepareLsn).uint64(message.endLsn).int64(message.prepareTime)
        .uint32(message.xid).string(message.gid);
      break;
    case "commit_prepared":
      w.byte("K").byte(message.flags).uint64(message.commitLsn).uint64(message.endLsn)
        .int64(message.commitTime).uint32(message.xid).string(message.gid);
      break;
    case "rollback_prepared":
      w.byte("r").byte(message.flags).uint64(message.prepareEndLsn)
        .uint64(message.rollbackEndLsn).int64(message.prepareTime).int64(message.rollbackTime)
        .uint32(message.xid).string(message.gid);
      break;
    default: {
      const unknown: never = message;
      throw new TypeError(`Cannot encode ${JSON.stringify(unknown)}`);
    }
  }
  return w.end();
}
