/**
 * Example-based tests for `decodeMessage()`: every message kind and column
 * kind round-trips, hand-written wire bytes decode as documented, and values
 * come back as subarrays of the input. Malformed input is covered by
 * `decode_malformed_test.ts`.
 */

import assert from "node:assert/strict";
import {
  decodeMessage,
  type Insert,
  NULL_COLUMN,
  ProtocolError,
  UNCHANGED_COLUMN,
} from "../../mod/pgoutput/mod.ts";
import { assertProtocolError } from "./_assert.ts";
import { ByteWriter, encodeMessage } from "../_harness/pgoutput_encode.ts";
import {
  EVERY_KIND,
  FIXTURES,
  text,
  V1,
  V2,
  V2_STREAM,
  V3,
  V4,
} from "../_harness/pgoutput_fixtures.ts";

function w(): ByteWriter {
  return new ByteWriter();
}

for (const { name, message, context } of FIXTURES) {
  Deno.test(`decodeMessage() round-trips ${name}`, () => {
    assert.deepStrictEqual(decodeMessage(encodeMessage(message), context), message);
  });
}

Deno.test("decodeMessage() decodes a hand-written Begin", () => {
  const bytes = new Uint8Array([
    0x42, // 'B'
    ...[0, 0, 0, 0x16, 0xb3, 0x74, 0xd8, 0x48], // final LSN 16/B374D848
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], // commit time -2
    ...[0x80, 0, 0, 1], // xid 2147483649
  ]);
  assert.deepStrictEqual(decodeMessage(bytes, V1), {
    type: "begin",
    finalLsn: 0x16_b374_d848n,
    commitTime: -2n,
    xid: 2147483649,
  });
});

Deno.test("decodeMessage() decodes a hand-written Relation with an empty namespace", () => {
  const bytes = new Uint8Array([
    0x52, // 'R'
    ...[0, 0, 0x40, 0], // relation 16384
    0, // namespace "" means pg_catalog
    0x74,
    0, // "t"
    0x69, // replica identity 'i'
    0,
    1, // one column
    1,
    0x61,
    0,
    0,
    0,
    0,
    23,
    0xff,
    0xff,
    0xff,
    0xff, // key column "a" int4, typmod -1
  ]);
  assert.deepStrictEqual(decodeMessage(bytes, V1), {
    type: "relation",
    relationId: 16384,
    namespace: "pg_catalog",
    relationName: "t",
    replicaIdentity: "i",
    columns: [{ flags: 1, isKey: true, name: "a", typeOid: 23, typeMod: -1 }],
  });
});

Deno.test("decodeMessage() decodes a hand-written in-stream Insert", () => {
  const bytes = new Uint8Array([
    0x49, // 'I'
    ...[0, 0, 3, 0x85], // xid 901
    ...[0, 0, 0x40, 0], // relation 16384
    0x4e, // 'N'
    0,
    3, // three columns
    0x74,
    0,
    0,
    0,
    2,
    0x34,
    0x32, // text "42"
    0x6e, // null
    0x75, // unchanged
  ]);
  assert.deepStrictEqual(decodeMessage(bytes, V2_STREAM), {
    type: "insert",
    xid: 901,
    relationId: 16384,
    newTuple: [text("42"), { kind: "null" }, { kind: "unchanged" }],
  });
});

Deno.test("decodeMessage() reads the xid prefix only inside a stream", () => {
  const message: Insert = { type: "insert", relationId: 5, newTuple: [text("x")] };
  assert.deepStrictEqual(decodeMessage(encodeMessage(message), V2), message);
  const streamed: Insert = { ...message, xid: 901 };
  assert.deepStrictEqual(decodeMessage(encodeMessage(streamed), V2_STREAM), streamed);
  // The same bytes out of stream leave the relation id's bytes unread.
  assertProtocolError(encodeMessage(streamed), V2, {
    messageType: "insert",
    offset: 5,
    message: 'Cannot decode insert at offset 5: expected tuple marker "N", got 0x00',
  });
});

Deno.test("decodeMessage() returns the shared frozen null and unchanged columns", () => {
  const decoded = decodeMessage(
    encodeMessage({ type: "insert", relationId: 1, newTuple: EVERY_KIND }),
    V1,
  );
  assert.equal(decoded.type, "insert");
  if (decoded.type !== "insert") return;
  assert.equal(decoded.newTuple[1], NULL_COLUMN);
  assert.equal(decoded.newTuple[2], UNCHANGED_COLUMN);
  assert.ok(Object.isFrozen(NULL_COLUMN) && Object.isFrozen(UNCHANGED_COLUMN));
});

Deno.test("decodeMessage() returns tuple bytes and Message content as subarrays of the input", () => {
  const bytes = encodeMessage({ type: "insert", relationId: 1, newTuple: [text("abc")] });
  const decoded = decodeMessage(bytes, V1);
  if (decoded.type !== "insert") throw new Error("expected an insert");
  const column = decoded.newTuple[0];
  if (column.kind !== "text") throw new Error("expected a text column");
  assert.equal(column.bytes.buffer, bytes.buffer);
  assert.equal(column.bytes.byteOffset, bytes.length - 3);
  bytes[bytes.length - 1] = 0x7a; // 'z'
  assert.deepStrictEqual(column.bytes, new TextEncoder().encode("abz"));

  const content = new Uint8Array([1, 2, 3]);
  const message = encodeMessage({
    type: "message",
    transactional: false,
    messageLsn: 1n,
    prefix: "p",
    content,
  });
  const decodedMessage = decodeMessage(message, V1);
  if (decodedMessage.type !== "message") throw new Error("expected a message");
  assert.equal(decodedMessage.content.buffer, message.buffer);
});

Deno.test("decodeMessage() decodes a message that is a subarray at an odd offset", () => {
  const begin = { type: "begin", finalLsn: 0x1_0000_0001n, commitTime: 5n, xid: 9 } as const;
  const encoded = encodeMessage(begin);
  const framed = new Uint8Array(encoded.length + 8);
  framed.set(encoded, 3);
  const message = framed.subarray(3, 3 + encoded.length);
  assert.deepStrictEqual(decodeMessage(message, V1), begin);
});

Deno.test("decodeMessage() rejects an invalid context with RangeError", () => {
  const stop = new Uint8Array([0x45]);
  for (const protoVersion of [0, 5, 2.5, Number.NaN]) {
    assert.throws(() => decodeMessage(stop, { protoVersion, inStream: false }), RangeError);
  }
  assert.throws(() => decodeMessage(stop, { protoVersion: 1, inStream: true }), RangeError);
});

Deno.test("decodeMessage() reads Stream Abort info only when 16 bytes follow on protocol 4", () => {
  const withInfo = w().byte("A").uint32(1).uint32(2).uint64(3n).int64(4n).end();
  assert.deepStrictEqual(decodeMessage(withInfo, V4), {
    type: "stream_abort",
    xid: 1,
    subXid: 2,
    abortLsn: 3n,
    abortTime: 4n,
  });
  assertProtocolError(withInfo, V3, {
    messageType: "stream_abort",
    offset: 9,
    message:
      "Cannot decode stream_abort at offset 9: unexpected 16 trailing bytes after the message",
  });
  const halfInfo = w().byte("A").uint32(1).uint32(2).uint64(3n).end();
  assertProtocolError(halfInfo, V4, {
    messageType: "stream_abort",
    offset: 9,
    message:
      "Cannot decode stream_abort at offset 9: expected 0 or 16 bytes of abort information, got 8",
  });
});

Deno.test("decodeMessage() decodes Stream Start's segment byte as proto.c does", () => {
  const other = w().byte("S").uint32(7).byte(2).end();
  assert.deepStrictEqual(decodeMessage(other, V2), {
    type: "stream_start",
    xid: 7,
    firstSegment: false,
  });
});

Deno.test("decodeMessage() keeps decoding after a ProtocolError", () => {
  assert.throws(() => decodeMessage(new Uint8Array([0x49, 1]), V1), ProtocolError);
  const insert: Insert = { type: "insert", relationId: 3, newTuple: [text("ok")] };
  assert.deepStrictEqual(decodeMessage(encodeMessage(insert), V1), insert);
});
