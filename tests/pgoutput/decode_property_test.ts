/**
 * fast-check properties for `decodeMessage()`: generated valid messages
 * round-trip through the test encoder, and corrupted or random bytes only
 * ever raise `ProtocolError`. Example-based cases live in `decode_test.ts`.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type DecodeContext,
  decodeMessage,
  type PgoutputMessage,
  ProtocolError,
  type RelationColumn,
  type TupleColumn,
} from "../../mod/pgoutput/mod.ts";
import { encodeMessage } from "../_harness/pgoutput_encode.ts";

interface Sample {
  message: PgoutputMessage;
  context: DecodeContext;
}

/** Plain objects, as the decoder returns; fast-check may otherwise drop the prototype. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const lsn = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
const timestamp = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const uint32 = fc.integer({ min: 0, max: 0xffff_ffff });
const int32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const bytes = fc.uint8Array({ maxLength: 24 });
/** Any Unicode text without NUL, which the protocol's C strings cannot carry. */
const cString = fc.string({ unit: "binary", maxLength: 12 }).map((s) => s.replaceAll("\0", ""));
/** The wire's "" means pg_catalog, so a decoded namespace is never empty. */
const namespace = cString.map((s) => s === "" ? "pg_catalog" : s);

const column: fc.Arbitrary<TupleColumn> = fc.oneof(
  fc.constant({ kind: "null" } as const),
  fc.constant({ kind: "unchanged" } as const),
  bytes.map((value) => ({ kind: "text", bytes: value }) as const),
  bytes.map((value) => ({ kind: "binary", bytes: value }) as const),
);
const tuple = fc.array(column, { maxLength: 8 });
const relationColumn: fc.Arbitrary<RelationColumn> = record({
  flags: fc.integer({ min: 0, max: 255 }),
  name: cString,
  typeOid: uint32,
  typeMod: int32,
})
  .map((c) => ({ ...c, isKey: (c.flags & 1) === 1 }));

/** Contexts in which a message of `minProtoVersion` may arrive. */
function contextFor(minProtoVersion: number): fc.Arbitrary<DecodeContext> {
  return fc.integer({ min: minProtoVersion, max: 4 }).chain((protoVersion) =>
    record({
      protoVersion: fc.constant(protoVersion),
      inStream: protoVersion >= 2 ? fc.boolean() : fc.constant(false),
    })
  );
}

/** A message that needs no stream xid. */
function plain(
  message: fc.Arbitrary<PgoutputMessage>,
  minProtoVersion: number,
): fc.Arbitrary<Sample> {
  return record({ message, context: contextFor(minProtoVersion) });
}

/** A change message: with an xid prefix inside a stream, without one outside. */
function change(message: fc.Arbitrary<PgoutputMessage>): fc.Arbitrary<Sample> {
  return fc.oneof(
    record({ message, context: fc.constant({ protoVersion: 1, inStream: false }) }),
    record({ message, xid: uint32, protoVersion: fc.integer({ min: 2, max: 4 }) }).map((s) => ({
      message: { ...s.message, xid: s.xid } as PgoutputMessage,
      context: { protoVersion: s.protoVersion, inStream: true },
    })),
  );
}

const gidFields = {
  prepareLsn: lsn,
  endLsn: lsn,
  prepareTime: timestamp,
  xid: uint32,
  gid: cString,
};

/** Every kind of valid message with a context it can be decoded in. */
const sample: fc.Arbitrary<Sample> = fc.oneof(
  plain(
    record({ type: fc.constant("begin"), finalLsn: lsn, commitTime: timestamp, xid: uint32 }),
    1,
  ),
  plain(
    record({
      type: fc.constant("commit"),
      flags: fc.constant(0),
      commitLsn: lsn,
      endLsn: lsn,
      commitTime: timestamp,
    }),
    1,
  ),
  plain(record({ type: fc.constant("origin"), originLsn: lsn, originName: cString }), 1),
  change(record({
    type: fc.constant("relation"),
    relationId: uint32,
    namespace,
    relationName: cString,
    replicaIdentity: fc.constantFrom("d", "n", "f", "i"),
    columns: fc.array(relationColumn, { maxLength: 5 }),
  })),
  change(record({ type: fc.constant("type"), typeOid: uint32, namespace, typeName: cString })),
  change(record({ type: fc.constant("insert"), relationId: uint32, newTuple: tuple })),
  change(fc.oneof(
    record({
      type: fc.constant("update"),
      relationId: uint32,
      oldKind: fc.constantFrom("key", "old"),
      oldTuple: tuple,
      newTuple: tuple,
    }),
    record({
      type: fc.constant("update"),
      relationId: uint32,
      oldKind: fc.constant(null),
      oldTuple: fc.constant(null),
      newTuple: tuple,
    }),
  )),
  change(record({
    type: fc.constant("delete"),
    relationId: uint32,
    oldKind: fc.constantFrom("key", "old"),
    oldTuple: tuple,
  })),
  change(record({
    type: fc.constant("truncate"),
    relationIds: fc.array(uint32, { maxLength: 6 }),
    cascade: fc.boolean(),
    restartIdentity: fc.boolean(),
  })),
  change(record({
    type: fc.constant("message"),
    transactional: fc.boolean(),
    messageLsn: lsn,
    prefix: cString,
    content: bytes,
  })),
  plain(
    record({ type: fc.constant("stream_start"), xid: uint32, firstSegment: fc.boolean() }),
    2,
  ),
  plain(record({ type: fc.constant("stream_stop") }), 2),
  plain(
    record({
      type: fc.constant("stream_commit"),
      xid: uint32,
      flags: fc.constant(0),
      commitLsn: lsn,
      endLsn: lsn,
      commitTime: timestamp,
    }),
    2,
  ),
  plain(record({ type: fc.constant("stream_abort"), xid: uint32, subXid: uint32 }), 2),
  record({
    message: record({
      type: fc.constant("stream_abort"),
      xid: uint32,
      subXid: uint32,
      abortLsn: lsn,
      abortTime: timestamp,
    }),
    context: record({ protoVersion: fc.constant(4), inStream: fc.boolean() }),
  }),
  plain(record({ type: fc.constant("begin_prepare"), ...gidFields }), 3),
  plain(record({ type: fc.constant("prepare"), flags: fc.constant(0), ...gidFields }), 3),
  plain(record({ type: fc.constant("stream_prepare"), flags: fc.constant(0), ...gidFields }), 3),
  plain(
    record({
      type: fc.constant("commit_prepared"),
      flags: fc.constant(0),
      commitLsn: lsn,
      endLsn: lsn,
      commitTime: timestamp,
      xid: uint32,
      gid: cString,
    }),
    3,
  ),
  plain(
    record({
      type: fc.constant("rollback_prepared"),
      flags: fc.constant(0),
      prepareEndLsn: lsn,
      rollbackEndLsn: lsn,
      prepareTime: timestamp,
      rollbackTime: timestamp,
      xid: uint32,
      gid: cString,
    }),
    3,
  ),
);

/** One way of damaging a message: positions are scaled to its length. */
const corruption = fc.oneof(
  record({ kind: fc.constant("flip"), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  record({ kind: fc.constant("insert"), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  record({ kind: fc.constant("delete"), at: fc.nat(), value: fc.constant(0) }),
  record({ kind: fc.constant("truncate"), at: fc.nat(), value: fc.constant(0) }),
);

function corrupt(
  message: Uint8Array,
  damage: { kind: string; at: number; value: number },
): Uint8Array {
  const copy = Array.from(message);
  const at = damage.at % (copy.length + 1);
  switch (damage.kind) {
    case "flip":
      copy[Math.min(at, copy.length - 1)] ^= damage.value || 0xff;
      break;
    case "insert":
      copy.splice(at, 0, damage.value);
      break;
    case "delete":
      copy.splice(Math.min(at, copy.length - 1), 1);
      break;
    default:
      copy.length = at;
  }
  return new Uint8Array(copy);
}

/** Decodes, accepting success or ProtocolError and failing on anything else. */
function decodeOrProtocolError(bytes: Uint8Array, context: DecodeContext): void {
  try {
    decodeMessage(bytes, context);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    assert.ok(error.offset !== undefined && error.offset >= 0 && error.offset <= bytes.length);
  }
}

Deno.test("decodeMessage() round-trips every generated valid message", () => {
  fc.assert(
    fc.property(sample, ({ message, context }) => {
      assert.deepStrictEqual(decodeMessage(encodeMessage(message), context), message);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("decodeMessage() meets corrupted messages with ProtocolError or a decode", () => {
  fc.assert(
    fc.property(sample, fc.array(corruption, { minLength: 1, maxLength: 3 }), (s, damages) => {
      let bytes = encodeMessage(s.message);
      for (const damage of damages) bytes = corrupt(bytes, damage);
      decodeOrProtocolError(bytes, s.context);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("decodeMessage() meets random bytes with ProtocolError only", () => {
  const typeBytes = [..."BCORYIUDTMSEcAbPKrp"].map((c) => c.charCodeAt(0));
  const randomMessage = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.tuple(fc.constantFrom(...typeBytes), fc.uint8Array({ maxLength: 64 }))
      .map(([type, rest]) => Uint8Array.of(type, ...rest)),
  );
  fc.assert(
    fc.property(randomMessage, contextFor(1), decodeOrProtocolError),
    { numRuns: 3000 },
  );
});
