/**
 * Reads the bench's capture file into memory: the header, and one pgoutput
 * payload (XLogData.data) per frame, all subarrays of the one file buffer.
 * Making the file is `_capture.ts`'s job; decoding it `_decoders.ts`'s.
 */
import {
  type CaptureHeader,
  CaptureReader,
  choosePgoutputOptions,
  parseCopyBothMessage,
} from "../mod/transport/mod.ts";
import { PUBLICATION } from "./_workload.ts";

/** A capture file in memory. */
export interface LoadedCapture {
  header: CaptureHeader;
  /** The pgoutput messages, in stream order. */
  payloads: Uint8Array[];
  /** Sum of the payloads' lengths: what MB/s is computed from. */
  payloadBytes: number;
  fileBytes: number;
}

/** Reads only the header, or `undefined` when the file is missing or not a capture. */
export async function readCaptureHeader(path: string): Promise<CaptureHeader | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    const reader = new CaptureReader();
    const chunk = new Uint8Array(64 * 1024);
    while (reader.header === undefined) {
      const read = await file.read(chunk);
      if (read === null) return undefined;
      reader.push(chunk.slice(0, read));
    }
    return reader.header;
  } catch {
    return undefined;
  } finally {
    file.close();
  }
}

/**
 * Whether `header` describes a capture of the current workload: its
 * publication, no streaming of in-progress transactions (the other decoder
 * cannot read Stream Start/Stop), and the options the transport would choose
 * for that server today. With `SPOCK_TEST_PG` set, the server's major must be
 * one of those listed.
 */
export function isCurrentCapture(header: CaptureHeader): boolean {
  const expected = choosePgoutputOptions(header.serverVersionNum, {
    publications: [PUBLICATION],
  });
  if (header.protoVersion !== expected.protoVersion) return false;
  if (JSON.stringify(header.options) !== JSON.stringify(expected.options)) return false;
  const wanted = Deno.env.get("SPOCK_TEST_PG");
  if (wanted) {
    const major = Math.floor(header.serverVersionNum / 10000);
    if (!wanted.split(",").some((value) => Number(value.trim()) === major)) return false;
  }
  return true;
}

/** Loads the whole capture; every frame must be an XLogData. */
export async function loadCapture(path: string): Promise<LoadedCapture> {
  const bytes = await Deno.readFile(path);
  const reader = new CaptureReader();
  const frames = reader.push(bytes);
  reader.finish();
  const payloads: Uint8Array[] = new Array(frames.length);
  let payloadBytes = 0;
  for (let i = 0; i < frames.length; i++) {
    const message = parseCopyBothMessage(frames[i]);
    if (message.type !== "xlogdata") {
      throw new Error(`Cannot load ${path}: frame ${i} is a ${message.type}, not XLogData`);
    }
    payloads[i] = message.data;
    payloadBytes += message.data.length;
  }
  return { header: reader.header!, payloads, payloadBytes, fileBytes: bytes.length };
}
