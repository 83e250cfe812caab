/**
 * Tests for `ProtocolError`: its stable code, fields and std-style message,
 * with and without an offset. Which inputs raise it is covered by the
 * decoder tests.
 */

import assert from "node:assert/strict";
import { ProtocolError } from "../../mod/pgoutput/mod.ts";

Deno.test("ProtocolError names the message type and offset", () => {
  const error = new ProtocolError('expected tuple marker "N", got "X"', {
    messageType: "update",
    offset: 41,
  });
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ProtocolError");
  assert.equal(error.code, "ERR_PGOUTPUT_PROTOCOL");
  assert.equal(error.messageType, "update");
  assert.equal(error.offset, 41);
  assert.equal(error.lsn, undefined);
  assert.equal(
    error.message,
    'Cannot decode update at offset 41: expected tuple marker "N", got "X"',
  );
});

Deno.test("ProtocolError leaves the offset out when no byte is at fault", () => {
  const error = new ProtocolError("relation 1 was not described by a Relation message", {
    messageType: "delete",
  });
  assert.equal(error.offset, undefined);
  assert.equal(
    error.message,
    "Cannot decode delete: relation 1 was not described by a Relation message",
  );
});

Deno.test("ProtocolError quotes an unknown type byte", () => {
  assert.equal(
    new ProtocolError("unknown message type byte", { messageType: "\x01", offset: 0 }).message,
    "Cannot decode message 0x01 at offset 0: unknown message type byte",
  );
  assert.equal(
    new ProtocolError("the message is empty", { messageType: "", offset: 0 }).message,
    "Cannot decode message at offset 0: the message is empty",
  );
});

Deno.test("ProtocolError carries the caller's LSN and cause", () => {
  const cause = new Error("inner");
  const error = new ProtocolError("bad", { messageType: "begin", offset: 1, lsn: 0x16n, cause });
  assert.equal(error.lsn, 0x16n);
  assert.equal(error.cause, cause);
});
