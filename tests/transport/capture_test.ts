/**
 * Capture files: any split of a captured byte stream into chunks reassembles
 * into the same frames and decodes to the same messages; corrupted captures
 * fail with the transport's or the decoder's typed error, nothing else.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CaptureReader,
  encodeCaptureFrame,
  encodeCaptureHeader,
  parseCopyBothMessage,
  TransportError,
  type XLogData,
} from "../../mod/transport/mod.ts";
import {
  type PgoutputMessage,
  PgoutputStreamDecoder,
  ProtocolError,
} from "../../mod/pgoutput/mod.ts";
import { encodeMessage } from "../_harness/pgoutput_encode.ts";
import { text } from "../_harness/pgoutput_fixtures.ts";

const RELATION: PgoutputMessage = {
  type: "relation",
  relationId: 16384,
  namespace: "public",
  relationName: "t",
  replicaIdentity: "d",
  columns: [
    { flags: 1, isKey: true, name: "id", typeOid: 23, typeMod: -1 },
    { flags: 0, isKey: false, name: "v", typeOid: 25, typeMod: -1 },
  ],
};

/** A plausible stream: an ordinary transaction, then a streamed one. */
function sampleStream(rows: number): PgoutputMessage[] {
  const messages: PgoutputMessage[] = [
    { type: "begin", finalLsn: 0x1000n, commitTime: 1n, xid: 700 },
    RELATION,
  ];
  for (let i = 0; i < rows; i++) {
    messages.push({
      type: "insert",
      relationId: 16384,
      newTuple: [text(String(i)), text(`v${i}`)],
    });
  }
  messages.push(
    {
      type: "update",
      relationId: 16384,
      oldKind: null,
      oldTuple: null,
      newTuple: [text("0"), { kind: "unchanged" }],
    },
    { type: "delete", relationId: 16384, oldKind: "key", oldTuple: [text("1"), { kind: "null" }] },
    { type: "commit", flags: 0, commitLsn: 0x1000n, endLsn: 0x1040n, commitTime: 1n },
    { type: "stream_start", xid: 701, firstSegment: true },
    { ...RELATION, xid: 701 } as PgoutputMessage,
    { type: "insert", xid: 701, relationId: 16384, newTuple: [text("9"), { kind: "null" }] },
    { type: "stream_stop" },
    {
      type: "stream_commit",
      xid: 701,
      flags: 0,
      commitLsn: 0x2000n,
      endLsn: 0x2040n,
      commitTime: 2n,
    },
  );
  return messages;
}

function captureBytes(messages: PgoutputMessage[]): Uint8Array {
  const parts = [encodeCaptureHeader({
    format: "spock-capture",
    version: 1,
    protoVersion: 4,
    serverVersionNum: 170010,
    options: [["proto_version", "4"]],
  })];
  messages.forEach((message, i) => {
    const frame: XLogData = {
      type: "xlogdata",
      walStart: BigInt(i),
      walEnd: BigInt(i),
      sendTime: 0n,
      data: encodeMessage(message),
    };
    parts.push(encodeCaptureFrame(frame));
  });
  const total = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    total.set(part, at);
    at += part.length;
  }
  return total;
}

function decodeChunks(chunks: Uint8Array[]): PgoutputMessage[] {
  const reader = new CaptureReader();
  const decoded: PgoutputMessage[] = [];
  let decoder: PgoutputStreamDecoder | undefined;
  for (const chunk of chunks) {
    for (const frame of reader.push(chunk)) {
      decoder ??= new PgoutputStreamDecoder(reader.header!.protoVersion);
      const message = parseCopyBothMessage(frame);
      if (message.type === "xlogdata") decoded.push(decoder.decode(message.data));
    }
  }
  reader.finish();
  return decoded;
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.slice(from, point));
    from = point;
  }
  return chunks;
}

Deno.test("CaptureReader decodes a capture read in one piece", () => {
  const messages = sampleStream(3);
  assert.deepEqual(decodeChunks([captureBytes(messages)]), messages);
});

Deno.test("CaptureReader gives the same messages for any split into chunks (property)", () => {
  const messages = sampleStream(5);
  const bytes = captureBytes(messages);
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
      assert.deepEqual(decodeChunks(split(bytes, cuts)), messages);
    }),
    { numRuns: 500 },
  );
});

Deno.test("CaptureReader reads a capture fed one byte at a time", () => {
  const messages = sampleStream(2);
  const bytes = captureBytes(messages);
  assert.deepEqual(decodeChunks(Array.from(bytes, (b) => new Uint8Array([b]))), messages);
});

Deno.test("a corrupted capture fails only with TransportError or ProtocolError (property)", () => {
  const bytes = captureBytes(sampleStream(4));
  const corruption = fc.oneof(
    fc.record({ kind: fc.constant("flip"), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("truncate"), at: fc.nat(), value: fc.constant(0) }),
  );
  fc.assert(
    fc.property(
      fc.array(corruption, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (changes, cuts) => {
        let damaged = bytes.slice();
        for (const change of changes) {
          const at = change.at % damaged.length;
          if (change.kind === "flip") damaged[at] = change.value;
          else damaged = damaged.slice(0, at);
        }
        try {
          decodeChunks(split(damaged, cuts));
        } catch (error) {
          assert.ok(
            error instanceof TransportError || error instanceof ProtocolError,
            `unexpected ${(error as Error).name}: ${(error as Error).message}`,
          );
        }
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("CaptureReader rejects a file that is not a capture", () => {
  assert.throws(
    () => new CaptureReader().push(new TextEncoder().encode("hello world, not a capture")),
    TransportError,
  );
});

Deno.test("CaptureReader.finish() rejects a capture cut inside a frame", () => {
  const bytes = captureBytes(sampleStream(1));
  const reader = new CaptureReader();
  reader.push(bytes.subarray(0, bytes.length - 3));
  assert.throws(() => reader.finish(), /ends inside a frame/);
});
