/**
 * Folder-private readers for the change messages: Relation, Type, Insert,
 * Update, Delete, Truncate and Message, with TupleData and the Relation
 * column list. Each mirrors a `logicalrep_read_*` function of `proto.c`;
 * the in-stream xid prefix is read by `decode.ts` and handed in.
 */

import { formatByte } from "./_format.ts";
import type { MessageReader } from "./_reader.ts";
import {
  type Delete,
  type Insert,
  type Message,
  NULL_COLUMN,
  type Relation,
  type RelationColumn,
  type ReplicaIdentity,
  type Truncate,
  type Tuple,
  type Type,
  UNCHANGED_COLUMN,
  type Update,
} from "./messages.ts";

const MARKER_NEW = 0x4e; // 'N'
const MARKER_KEY = 0x4b; // 'K'
const MARKER_OLD = 0x4f; // 'O'
const KIND_NULL = 0x6e; // 'n'
const KIND_UNCHANGED = 0x75; // 'u'
const KIND_TEXT = 0x74; // 't'
const KIND_BINARY = 0x62; // 'b'
/** A Relation column is at least a flags byte, an empty name's NUL and two Int32s. */
const MIN_ATTR_BYTES = 10;
/** Relation ('R'), as `logicalrep_read_rel`. */
export function readRelation(r: MessageReader, xid: number | undefined): Relation {
  const relationId = r.readUint32();
  const namespace = readNamespace(r);
  const relationName = r.readString();
  const replicaIdentity = readReplicaIdentity(r);
  const columns = readAttrs(r);
  return xid === undefined
    ? { type: "relation", relationId, namespace, relationName, replicaIdentity, columns }
    : { type: "relation", xid, relationId, namespace, relationName, replicaIdentity, columns };
}

/** Type ('Y'), as `logicalrep_read_typ`. */
export function readType(r: MessageReader, xid: number | undefined): Type {
  const typeOid = r.readUint32();
  const namespace = readNamespace(r);
  const typeName = r.readString();
  return xid === undefined
    ? { type: "type", typeOid, namespace, typeName }
    : { type: "type", xid, typeOid, namespace, typeName };
}

/** Insert ('I'), as `logicalrep_read_insert`: an 'N' tuple. */
export function readInsert(r: MessageReader, xid: number | undefined): Insert {
  const relationId = r.readUint32();
  const marker = r.readByte();
  if (marker !== MARKER_NEW) failMarker(r, '"N"', marker);
  const newTuple = readTuple(r);
  return xid === undefined
    ? { type: "insert", relationId, newTuple }
    : { type: "insert", xid, relationId, newTuple };
}

/** Update ('U'), as `logicalrep_read_update`: an optional 'K' or 'O' tuple, then 'N'. */
export function readUpdate(r: MessageReader, xid: number | undefined): Update {
  const relationId = r.readUint32();
  let marker = r.readByte();
  let oldKind: "key" | "old" | null = null;
  let oldTuple: Tuple | null = null;
  if (marker === MARKER_KEY || marker === MARKER_OLD) {
    oldKind = marker === MARKER_KEY ? "key" : "old";
    oldTuple = readTuple(r);
    marker = r.readByte();
    if (marker !== MARKER_NEW) failMarker(r, '"N"', marker);
  } else if (marker !== MARKER_NEW) {
    failMarker(r, '"K", "O" or "N"', marker);
  }
  const newTuple = readTuple(r);
  return xid === undefined
    ? { type: "update", relationId, oldKind, oldTuple, newTuple }
    : { type: "update", xid, relationId, oldKind, oldTuple, newTuple };
}

/** Delete ('D'), as `logicalrep_read_delete`: a 'K' or 'O' tuple. */
export function readDelete(r: MessageReader, xid: number | undefined): Delete {
  const relationId = r.readUint32();
  const marker = r.readByte();
  if (marker !== MARKER_KEY && marker !== MARKER_OLD) failMarker(r, '"K" or "O"', marker);
  const oldKind = marker === MARKER_KEY ? "key" : "old";
  const oldTuple = readTuple(r);
  return xid === undefined
    ? { type: "delete", relationId, oldKind, oldTuple }
    : { type: "delete", xid, relationId, oldKind, oldTuple };
}

/** Truncate ('T'), as `logicalrep_read_truncate`. */
export function readTruncate(r: MessageReader, xid: number | undefined): Truncate {
  const countOffset = r.pos;
  const count = r.readInt32();
  const flags = r.readByte();
  // Check the count against what is left before allocating for it.
  if (count < 0 || count * 4 > r.remaining()) {
    r.fail(`relation count ${count} does not fit the ${r.remaining()} bytes left`, countOffset);
  }
  const relationIds: number[] = [];
  for (let i = 0; i < count; i++) relationIds.push(r.readUint32());
  const cascade = (flags & 1) !== 0;
  const restartIdentity = (flags & 2) !== 0;
  return xid === undefined
    ? { type: "truncate", relationIds, cascade, restartIdentity }
    : { type: "truncate", xid, relationIds, cascade, restartIdentity };
}

/** Message ('M'), as pgoutput's `logicalrep_write_message` writes it. */
export function readMessage(r: MessageReader, xid: number | undefined): Message {
  const transactional = (r.readByte() & 1) !== 0;
  const messageLsn = r.readUint64();
  const prefix = r.readString();
  const lengthOffset = r.pos;
  const content = r.readBytes(r.readInt32(), lengthOffset);
  return xid === undefined
    ? { type: "message", transactional, messageLsn, prefix, content }
    : { type: "message", xid, transactional, messageLsn, prefix, content };
}

/**
 * Reads TupleData. Columns are at least one byte each, so the count is
 * checked against the bytes left before the array grows; values are
 * subarrays of the message.
 */
function readTuple(r: MessageReader): Tuple {
  const countOffset = r.pos;
  const count = r.readUint16();
  const bytes = r.bytes;
  const end = bytes.length;
  let pos = r.pos;
  if (count > end - pos) {
    r.fail(`tuple of ${count} columns does not fit the ${end - pos} bytes left`, countOffset);
  }
  const columns: Tuple = [];
  for (let i = 0; i < count; i++) {
    if (pos >= end) r.fail(`expected column ${i + 1} of ${count}, got end of message`, pos);
    const kind = bytes[pos];
    if (kind === KIND_TEXT || kind === KIND_BINARY) {
      if (end - pos < 5) r.fail(`expected a 4-byte column length, got ${end - pos - 1}`, pos + 1);
      const length = (bytes[pos + 1] << 24) | (bytes[pos + 2] << 16) | (bytes[pos + 3] << 8) |
        bytes[pos + 4];
      const start = pos + 5;
      if (length < 0 || length > end - start) {
        r.fail(`column length ${length} does not fit the ${end - start} bytes left`, pos + 1);
      }
      pos = start + length;
      const value = bytes.subarray(start, pos);
      columns.push(
        kind === KIND_TEXT ? { kind: "text", bytes: value } : { kind: "binary", bytes: value },
      );
    } else if (kind === KIND_NULL) {
      columns.push(NULL_COLUMN);
      pos++;
    } else if (kind === KIND_UNCHANGED) {
      columns.push(UNCHANGED_COLUMN);
      pos++;
    } else {
      r.fail(`unknown column kind ${formatByte(kind)}, expected "n", "u", "t" or "b"`, pos);
    }
  }
  r.pos = pos;
  return columns;
}

/** Reads a Relation's column list, as `logicalrep_read_attrs` does. */
function readAttrs(r: MessageReader): RelationColumn[] {
  const countOffset = r.pos;
  const count = r.readUint16();
  if (count * MIN_ATTR_BYTES > r.remaining()) {
    r.fail(`${count} columns do not fit the ${r.remaining()} bytes left`, countOffset);
  }
  const columns: RelationColumn[] = [];
  for (let i = 0; i < count; i++) {
    const flags = r.readByte();
    columns.push({
      flags,
      isKey: (flags & 1) !== 0,
      name: r.readString(),
      typeOid: r.readUint32(),
      typeMod: r.readInt32(),
    });
  }
  return columns;
}

/** Reads a schema name; the server sends "" for `pg_catalog` to save space. */
function readNamespace(r: MessageReader): string {
  const namespace = r.readString();
  return namespace === "" ? "pg_catalog" : namespace;
}

function readReplicaIdentity(r: MessageReader): ReplicaIdentity {
  const offset = r.pos;
  const identity = r.readByte();
  // 'd', 'n', 'f', 'i': the values of pg_class.relreplident.
  if (identity !== 0x64 && identity !== 0x6e && identity !== 0x66 && identity !== 0x69) {
    r.fail(
      `unknown replica identity ${formatByte(identity)}, expected "d", "n", "f" or "i"`,
      offset,
    );
  }
  return String.fromCharCode(identity) as ReplicaIdentity;
}

function failMarker(r: MessageReader, expected: string, marker: number): never {
  return r.fail(`expected tuple marker ${expected}, got ${formatByte(marker)}`, r.pos - 1);
}
