/**
 * Test-only assertion for pgoutput errors: checks that decoding throws a
 * `ProtocolError` with the expected type, offset and message text.
 */

import assert from "node:assert/strict";
import { type DecodeContext, decodeMessage, ProtocolError } from "../../mod/pgoutput/mod.ts";

/** Asserts that decoding throws a ProtocolError with these fields. */
export function assertProtocolError(
  bytes: Uint8Array,
  context: DecodeContext,
  expected: { messageType: string; offset: number; message?: string | RegExp },
): void {
  assert.throws(() => decodeMessage(bytes, context), (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected ProtocolError, got ${error}`);
    assert.equal(error.code, "ERR_PGOUTPUT_PROTOCOL");
    assert.equal(error.name, "ProtocolError");
    assert.equal(error.messageType, expected.messageType);
    assert.equal(error.offset, expected.offset);
    if (typeof expected.message === "string") assert.equal(error.message, expected.message);
    if (expected.message instanceof RegExp) assert.match(error.message, expected.message);
    return true;
  });
}
