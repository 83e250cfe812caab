import assert from "node:assert/strict";
import fc from "fast-check";
import {
  byteaHex,
  columnText,
  decodeMessage,
  type TupleColumn,
  tupleText,
  UNCHANGED_TOAST,
} from "../../mod/pgoutput/mod.ts";
import { encodeMessage } from "../_harness/pgoutput_encode.ts";

function decodedInsert(columns: TupleColumn[]) {
  const bytes = encodeMessage({ type: "insert", relationId: 1, newTuple: columns });
  const message = decodeMessage(bytes, { protoVersion: 1, inStream: false });
  if (message.type !== "insert") throw new Error("expected an insert");
  return message.newTuple;
}

const column: fc.Arbitrary<TupleColumn> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: "text" as const, bytes })),
  fc.string({ unit: "binary", maxLength: 40 }).map((s) => ({
    kind: "text" as const,
    bytes: new TextEncoder().encode(s),
  })),
  fc.string({ unit: fc.constantFrom("a", "Z", "0", " ", "é", "\uFEFF", "😀"), maxLength: 20 })
    .map((s) => ({ kind: "text" as const, bytes: new TextEncoder().encode(s) })),
  fc.uint8Array({ maxLength: 8 }).map((bytes) => ({ kind: "binary" as const, bytes })),
  fc.constant({ kind: "null" as const }),
  fc.constant({ kind: "unchanged" as const }),
);

Deno.test("tupleText() equals columnText() on every column for any tuple (property)", () => {
  fc.assert(
    fc.property(fc.array(column, { maxLength: 12 }), (columns) => {
      const tuple = decodedInsert(columns);
      assert.deepEqual(tupleText(tuple), tuple.map(columnText));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("tupleText() maps NULL, unchanged TOAST, text and binary columns", () => {
  const tuple = decodedInsert([
    { kind: "text", bytes: new TextEncoder().encode("42") },
    { kind: "null" },
    { kind: "unchanged" },
    { kind: "binary", bytes: new Uint8Array([0, 255]) },
    { kind: "text", bytes: new TextEncoder().encode("héllo") },
  ]);
  assert.deepEqual(tupleText(tuple), ["42", null, UNCHANGED_TOAST, "\\x00ff", "héllo"]);
});

Deno.test("columnText() keeps a leading byte order mark, which is data", () => {
  const bytes = new TextEncoder().encode("\uFEFFx");
  assert.equal(columnText({ kind: "text", bytes }), "\uFEFFx");
});

Deno.test("byteaHex() prints bytea's hex form", () => {
  assert.equal(byteaHex(new Uint8Array([0x00, 0x0f, 0xa0])), "\\x000fa0");
  assert.equal(byteaHex(new Uint8Array()), "\\x");
});
