/**
 * Test-only sample messages: one or more valid instances of every pgoutput
 * message kind with the decode context each needs. Shared by the example
 * tests and the corruption properties; encoding is `pgoutput_encode.ts`'s job.
 */

import type { DecodeContext, PgoutputMessage, Tuple } from "../../mod/pgoutput/mod.ts";

/** A valid message and the context to decode it in. */
export interface Fixture {
  name: string;
  message: PgoutputMessage;
  context: DecodeContext;
}

const UTF8 = new TextEncoder();

/** A text column holding `value`. */
export function text(value: string): { kind: "text"; bytes: Uint8Array } {
  return { kind: "text", bytes: UTF8.encode(value) };
}

/** A binary column holding `values`. */
export function binary(...values: number[]): { kind: "binary"; bytes: Uint8Array } {
  return { kind: "binary", bytes: new Uint8Array(values) };
}

/** A tuple with every column kind, including an empty text value. */
export const EVERY_KIND: Tuple = [
  text("42"),
  { kind: "null" },
  { kind: "unchanged" },
  binary(0, 0, 0, 42),
  text(""),
  text("héllo ✓"),
];

export const V1: DecodeContext = { protoVersion: 1, inStream: false };
export const V2: DecodeContext = { protoVersion: 2, inStream: false };
export const V2_STREAM: DecodeContext = { protoVersion: 2, inStream: true };
export const V3: DecodeContext = { protoVersion: 3, inStream: false };
export const V4: DecodeContext = { protoVersion: 4, inStream: false };
export const V4_STREAM: DecodeContext = { protoVersion: 4, inStream: true };

const MAX_LSN = 0xffff_ffff_ffff_ffffn;
const TS = 830_000_000_123_456n; // 2026-04-20 in PostgreSQL microseconds

/** Every message kind, with the variants the protocol allows. */
export const FIXTURES: Fixture[] = [
  {
    name: "Begin",
    message: { type: "begin", finalLsn: 0x16_b374_d848n, commitTime: TS, xid: 0xfffffffe },
    context: V1,
  },
  {
    name: "Commit",
    message: { type: "commit", flags: 0, commitLsn: 0x1000n, endLsn: MAX_LSN, commitTime: -1n },
    context: V1,
  },
  {
    name: "Origin",
    message: { type: "origin", originLsn: 0xabcdefn, originName: "spock_node_a" },
    context: V1,
  },
  {
    name: "Relation",
    message: {
      type: "relation",
      relationId: 16384,
      namespace: "public",
      relationName: "accounts",
      replicaIdentity: "d",
      columns: [
        { flags: 1, isKey: true, name: "id", typeOid: 23, typeMod: -1 },
        { flags: 0, isKey: false, name: "owner", typeOid: 1043, typeMod: 68 },
        { flags: 0, isKey: false, name: "", typeOid: 0xffffffff, typeMod: 0 },
      ],
    },
    context: V1,
  },
  {
    name: "Relation in pg_catalog with no columns",
    message: {
      type: "relation",
      relationId: 0xfffffff0,
      namespace: "pg_catalog",
      relationName: "t",
      replicaIdentity: "n",
      columns: [],
    },
    context: V4,
  },
  {
    name: "Type",
    message: { type: "type", typeOid: 90001, namespace: "app", typeName: "mood" },
    context: V1,
  },
  {
    name: "Insert",
    message: { type: "insert", relationId: 16384, newTuple: EVERY_KIND },
    context: V1,
  },
  {
    name: "Insert with no columns",
    message: { type: "insert", relationId: 1, newTuple: [] },
    context: V1,
  },
  {
    name: "Update with key",
    message: {
      type: "update",
      relationId: 16384,
      oldKind: "key",
      oldTuple: [text("1"), { kind: "null" }],
      newTuple: [text("2"), text("b")],
    },
    context: V1,
  },
  {
    name: "Update with old row",
    message: {
      type: "update",
      relationId: 16384,
      oldKind: "old",
      oldTuple: EVERY_KIND,
      newTuple: EVERY_KIND,
    },
    context: V1,
  },
  {
    name: "Update without old tuple",
    message: { type: "update", relationId: 7, oldKind: null, oldTuple: null, newTuple: EVERY_KIND },
    context: V1,
  },
  {
    name: "Delete with key",
    message: { type: "delete", relationId: 16384, oldKind: "key", oldTuple: [text("1")] },
    context: V1,
  },
  {
    name: "Delete with old row",
    message: { type: "delete", relationId: 16384, oldKind: "old", oldTuple: EVERY_KIND },
    context: V1,
  },
  {
    name: "Truncate",
    message: {
      type: "truncate",
      relationIds: [16384, 16390],
      cascade: true,
      restartIdentity: false,
    },
    context: V1,
  },
  {
    name: "Truncate with restart identity",
    message: { type: "truncate", relationIds: [1], cascade: false, restartIdentity: true },
    context: V1,
  },
  {
    name: "Message",
    message: {
      type: "message",
      transactional: true,
      messageLsn: 0x20n,
      prefix: "spock",
      content: new Uint8Array([1, 2, 0, 3]),
    },
    context: V1,
  },
  {
    name: "non-transactional Message",
    message: {
      type: "message",
      transactional: false,
      messageLsn: 0n,
      prefix: "",
      content: new Uint8Array(0),
    },
    context: V1,
  },
  {
    name: "Stream Start",
    message: { type: "stream_start", xid: 901, firstSegment: true },
    context: V2,
  },
  {
    name: "Stream Start of a later segment",
    message: { type: "stream_start", xid: 901, firstSegment: false },
    context: V4,
  },
  { name: "Stream Stop", message: { type: "stream_stop" }, context: V2_STREAM },
  {
    name: "Stream Commit",
    message: {
      type: "stream_commit",
      xid: 901,
      flags: 0,
      commitLsn: 0x30n,
      endLsn: 0x38n,
      commitTime: TS,
    },
    context: V2,
  },
  {
    name: "Stream Abort",
    message: { type: "stream_abort", xid: 901, subXid: 902 },
    context: V2,
  },
  {
    name: "Stream Abort on protocol 4 without abort info",
    message: { type: "stream_abort", xid: 901, subXid: 901 },
    context: V4,
  },
  {
    name: "Stream Abort with abort info",
    message: { type: "stream_abort", xid: 901, subXid: 903, abortLsn: 0x40n, abortTime: TS },
    context: V4,
  },
  {
    name: "Begin Prepare",
    message: {
      type: "begin_prepare",
      prepareLsn: 0x50n,
      endLsn: 0x58n,
      prepareTime: TS,
      xid: 77,
      gid: "pg_gid_16389_77",
    },
    context: V3,
  },
  {
    name: "Prepare",
    message: {
      type: "prepare",
      flags: 0,
      prepareLsn: 0x50n,
      endLsn: 0x58n,
      prepareTime: TS,
      xid: 77,
      gid: "tx1",
    },
    context: V3,
  },
  {
    name: "Commit Prepared",
    message: {
      type: "commit_prepared",
      flags: 0,
      commitLsn: 0x60n,
      endLsn: 0x68n,
      commitTime: TS,
      xid: 77,
      gid: "tx1",
    },
    context: V3,
  },
  {
    name: "Rollback Prepared",
    message: {
      type: "rollback_prepared",
      flags: 0,
      prepareEndLsn: 0x58n,
      rollbackEndLsn: 0x70n,
      prepareTime: TS,
      rollbackTime: TS + 1n,
      xid: 77,
      gid: "tx1",
    },
    context: V4,
  },
  {
    name: "Stream Prepare",
    message: {
      type: "stream_prepare",
      flags: 0,
      prepareLsn: 0x50n,
      endLsn: 0x58n,
      prepareTime: TS,
      xid: 901,
      gid: "tx2",
    },
    context: V3,
  },
  // Change messages inside a Stream Start/Stop block carry an xid prefix.
  {
    name: "in-stream Relation",
    message: {
      type: "relation",
      xid: 901,
      relationId: 16384,
      namespace: "public",
      relationName: "accounts",
      replicaIdentity: "f",
      columns: [{ flags: 1, isKey: true, name: "id", typeOid: 23, typeMod: -1 }],
    },
    context: V2_STREAM,
  },
  {
    name: "in-stream Type",
    message: { type: "type", xid: 901, typeOid: 90001, namespace: "app", typeName: "mood" },
    context: V4_STREAM,
  },
  {
    name: "in-stream Insert",
    message: { type: "insert", xid: 0xffffffff, relationId: 16384, newTuple: EVERY_KIND },
    context: V2_STREAM,
  },
  {
    name: "in-stream Update",
    message: {
      type: "update",
      xid: 901,
      relationId: 16384,
      oldKind: "key",
      oldTuple: [text("1")],
      newTuple: [text("2")],
    },
    context: V2_STREAM,
  },
  {
    name: "in-stream Delete",
    message: { type: "delete", xid: 901, relationId: 16384, oldKind: "old", oldTuple: EVERY_KIND },
    context: V4_STREAM,
  },
  {
    name: "in-stream Truncate",
    message: { type: "truncate", xid: 901, relationIds: [], cascade: true, restartIdentity: true },
    context: V2_STREAM,
  },
  {
    name: "in-stream Message",
    message: {
      type: "message",
      xid: 901,
      transactional: true,
      messageLsn: 0x80n,
      prefix: "p",
      content: new Uint8Array([9]),
    },
    context: V2_STREAM,
  },
];
