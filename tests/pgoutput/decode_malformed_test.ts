/**
 * Tests that `decodeMessage()` rejects malformed pgoutput messages with a
 * `ProtocolError` naming the message type and the offset of the bad byte:
 * truncation, bad markers, column kinds, lengths, strings, flags, trailing
 * bytes, unknown types and protocol versions.
 */

import assert from "node:assert/strict";
import { decodeMessage, ProtocolError } from "../../mod/pgoutput/mod.ts";
import { assertProtocolError } from "./_assert.ts";
import { ByteWriter, encodeMessage, writeTuple } from "../_harness/pgoutput_encode.ts";
import { FIXTURES, text, V1, V2, V2_STREAM, V3, V4 } from "../_harness/pgoutput_fixtures.ts";

function w(): ByteWriter {
  return new ByteWriter();
}

Deno.test("decodeMessage() rejects an empty message", () => {
  assertProtocolError(new Uint8Array(0), V1, {
    messageType: "",
    offset: 0,
    message: "Cannot decode message at offset 0: the message is empty",
  });
});

Deno.test("decodeMessage() rejects an unknown type byte", () => {
  assertProtocolError(new Uint8Array([0x58, 1, 2]), V4, {
    messageType: "X",
    offset: 0,
    message: 'Cannot decode message "X" at offset 0: unknown message type byte "X"',
  });
  assertProtocolError(new Uint8Array([0]), V4, {
    messageType: "\0",
    offset: 0,
    message: "Cannot decode message 0x00 at offset 0: unknown message type byte 0x00",
  });
});

Deno.test("decodeMessage() rejects messages newer than the protocol version", () => {
  const start = encodeMessage({ type: "stream_start", xid: 1, firstSegment: true });
  assertProtocolError(start, V1, { messageType: "stream_start", offset: 0 });
  const prepare = FIXTURES.find((f) => f.message.type === "prepare")!;
  assertProtocolError(encodeMessage(prepare.message), V2, {
    messageType: "prepare",
    offset: 0,
    message:
      "Cannot decode prepare at offset 0: the message needs protocol version 3, the stream uses 2",
  });
});

Deno.test("decodeMessage() rejects every truncation of every message kind", () => {
  for (const { name, message, context } of FIXTURES) {
    const bytes = encodeMessage(message);
    for (let length = 1; length < bytes.length; length++) {
      // Stream Abort without abort info is a valid prefix of one with it.
      if (message.type === "stream_abort" && length === 9) continue;
      assert.throws(
        () => decodeMessage(bytes.subarray(0, length), context),
        ProtocolError,
        `${name} cut to ${length} bytes`,
      );
    }
  }
});

Deno.test("decodeMessage() rejects a truncated Update", () => {
  const bytes = w().byte("U").uint32(16384).byte("N").int16(9).byte("t").int32(5).end();
  assertProtocolError(bytes, V1, {
    messageType: "update",
    offset: 6,
    message: "Cannot decode update at offset 6: tuple of 9 columns does not fit the 5 bytes left",
  });
  const short = w().byte("U").uint32(16384).byte("N").int16(1).byte("t").int32(5).end();
  assertProtocolError(short, V1, {
    messageType: "update",
    offset: 9,
    message: "Cannot decode update at offset 9: column length 5 does not fit the 0 bytes left",
  });
  assertProtocolError(w().byte("U").int16(1).end(), V1, {
    messageType: "update",
    offset: 1,
    message: "Cannot decode update at offset 1: expected 4 more bytes, got 2",
  });
});

Deno.test("decodeMessage() rejects a wrong tuple marker", () => {
  const oldKey = writeTuple(w().byte("U").uint32(1).byte("K"), [text("x".repeat(28))]);
  assertProtocolError(oldKey.byte("X").end(), V1, {
    messageType: "update",
    offset: 41,
    message: 'Cannot decode update at offset 41: expected tuple marker "N", got "X"',
  });
  assertProtocolError(w().byte("U").uint32(1).byte("n").end(), V1, {
    messageType: "update",
    offset: 5,
    message: 'Cannot decode update at offset 5: expected tuple marker "K", "O" or "N", got "n"',
  });
  assertProtocolError(writeTuple(w().byte("I").uint32(1).byte("K"), []).end(), V1, {
    messageType: "insert",
    offset: 5,
  });
  assertProtocolError(writeTuple(w().byte("D").uint32(1).byte("N"), []).end(), V1, {
    messageType: "delete",
    offset: 5,
    message: 'Cannot decode delete at offset 5: expected tuple marker "K" or "O", got "N"',
  });
});

Deno.test("decodeMessage() rejects an unknown tuple column kind", () => {
  const bytes = w().byte("I").uint32(1).byte("N").int16(2).byte("n").byte("x").end();
  assertProtocolError(bytes, V1, {
    messageType: "insert",
    offset: 9,
    message:
      'Cannot decode insert at offset 9: unknown column kind "x", expected "n", "u", "t" or "b"',
  });
});

Deno.test("decodeMessage() rejects negative and overlong column lengths", () => {
  const negative = w().byte("I").uint32(1).byte("N").int16(1).byte("b").int32(-1).end();
  assertProtocolError(negative, V1, { messageType: "insert", offset: 9, message: /length -1/ });
  const overlong = w().byte("I").uint32(1).byte("N").int16(1).byte("t").int32(3).raw(
    new Uint8Array(2),
  ).end();
  assertProtocolError(overlong, V1, { messageType: "insert", offset: 9, message: /length 3/ });
  const huge = w().byte("I").uint32(1).byte("N").int16(1).byte("t").int32(0x7fffffff).end();
  assertProtocolError(huge, V1, { messageType: "insert", offset: 9 });
});

Deno.test("decodeMessage() rejects column counts larger than the message", () => {
  const tuple = w().byte("I").uint32(1).byte("N").int16(0xffff).byte("n").end();
  assertProtocolError(tuple, V1, { messageType: "insert", offset: 6 });
  const attrs = w().byte("R").uint32(1).string("s").string("t").byte("d").int16(0xffff).end();
  assertProtocolError(attrs, V1, { messageType: "relation", offset: 10 });
  const truncate = w().byte("T").int32(0x7fffffff).byte(0).uint32(1).end();
  assertProtocolError(truncate, V1, { messageType: "truncate", offset: 1 });
  assertProtocolError(w().byte("T").int32(-1).byte(0).end(), V1, {
    messageType: "truncate",
    offset: 1,
    message: "Cannot decode truncate at offset 1: relation count -1 does not fit the 0 bytes left",
  });
});

Deno.test("decodeMessage() rejects strings without a NUL terminator", () => {
  const origin = w().byte("O").uint64(1n).raw(new TextEncoder().encode("node")).end();
  assertProtocolError(origin, V1, {
    messageType: "origin",
    offset: 9,
    message: "Cannot decode origin at offset 9: string is missing its NUL terminator",
  });
  const relation = w().byte("R").uint32(1).string("s").raw(new Uint8Array([0x74])).end();
  assertProtocolError(relation, V1, { messageType: "relation", offset: 7 });
  const gid = w().byte("b").uint64(1n).uint64(2n).int64(3n).uint32(4).byte(0x67).end();
  assertProtocolError(gid, V3, { messageType: "begin_prepare", offset: 29 });
});

Deno.test("decodeMessage() rejects an unknown replica identity", () => {
  const bytes = w().byte("R").uint32(1).string("s").string("t").byte("x").int16(0).end();
  assertProtocolError(bytes, V1, {
    messageType: "relation",
    offset: 9,
    message:
      'Cannot decode relation at offset 9: unknown replica identity "x", expected "d", "n", "f" or "i"',
  });
});

Deno.test("decodeMessage() rejects a Message with a bad content length", () => {
  const negative = w().byte("M").byte(1).uint64(1n).string("p").int32(-5).end();
  assertProtocolError(negative, V1, {
    messageType: "message",
    offset: 12,
    message: "Cannot decode message at offset 12: negative length -5",
  });
  const overlong = w().byte("M").byte(1).uint64(1n).string("p").int32(4).byte(1).end();
  assertProtocolError(overlong, V1, {
    messageType: "message",
    offset: 12,
    message: "Cannot decode message at offset 12: length 4 exceeds the 1 bytes left",
  });
});

Deno.test("decodeMessage() rejects flags that proto.c requires to be zero", () => {
  const cases = [
    { type: "commit", context: V1, offset: 1 },
    { type: "stream_commit", context: V2, offset: 5 },
    { type: "prepare", context: V3, offset: 1 },
    { type: "stream_prepare", context: V3, offset: 1 },
    { type: "commit_prepared", context: V3, offset: 1 },
    { type: "rollback_prepared", context: V3, offset: 1 },
  ];
  for (const { type, context, offset } of cases) {
    const fixture = FIXTURES.find((f) => f.message.type === type)!;
    const bytes = encodeMessage(fixture.message);
    bytes[offset] = 2;
    assertProtocolError(bytes, context, {
      messageType: type,
      offset,
      message: `Cannot decode ${type} at offset ${offset}: unrecognized flags 0x02, expected 0`,
    });
  }
});

Deno.test("decodeMessage() rejects trailing bytes after a complete message", () => {
  for (const { message, context } of FIXTURES) {
    const bytes = encodeMessage(message);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes);
    // On protocol 4, Stream Abort's length after the subtransaction id decides.
    const isAbortV4 = message.type === "stream_abort" && context.protoVersion === 4;
    assertProtocolError(padded, context, {
      messageType: message.type,
      offset: isAbortV4 ? 9 : bytes.length,
      message: /trailing bytes|abort information/,
    });
  }
});

Deno.test("decodeMessage() rejects a truncated in-stream xid prefix", () => {
  assertProtocolError(w().byte("D").int16(0).end(), V2_STREAM, {
    messageType: "delete",
    offset: 1,
    message: "Cannot decode delete at offset 1: expected 4 more bytes, got 2",
  });
});
