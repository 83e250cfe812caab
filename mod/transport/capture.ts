/**
 * Capture files: a replication stream saved byte for byte (`spock stream
 * --capture`) so it can be decoded again offline (`--replay`), attached to a
 * bug report, or benchmarked. Layout: the magic `SPOCKCAP`, a u32 length and a
 * JSON header (protocol version, server version, options), then one frame per
 * received XLogData: a u32 length and the CopyData payload ('w' message).
 */
import type { XLogData } from "./copy_both.ts";
import { TransportError } from "./errors.ts";

/** What a decoder needs to know about a captured stream. */
export interface CaptureHeader {
  format: "spock-capture";
  version: 1;
  protoVersion: number;
  serverVersionNum: number;
  options: Array<[string, string]>;
}

const MAGIC = new TextEncoder().encode("SPOCKCAP");
const MAX_HEADER_BYTES = 1 << 20;
const MAX_FRAME_BYTES = 1 << 30;

/** Encodes the start of a capture file. */
export function encodeCaptureHeader(header: CaptureHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const bytes = new Uint8Array(MAGIC.length + 4 + json.length);
  bytes.set(MAGIC, 0);
  new DataView(bytes.buffer).setUint32(MAGIC.length, json.length);
  bytes.set(json, MAGIC.length + 4);
  return bytes;
}

/** Encodes one received XLogData message as a frame (its CopyData payload, length first). */
export function encodeCaptureFrame(message: XLogData): Uint8Array {
  const bytes = new Uint8Array(4 + 25 + message.data.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 25 + message.data.length);
  bytes[4] = 0x77; // w
  view.setBigUint64(5, message.walStart);
  view.setBigUint64(13, message.walEnd);
  view.setBigInt64(21, message.sendTime);
  bytes.set(message.data, 29);
  return bytes;
}

/**
 * Reassembles a capture file from chunks of any size: {@link push} returns
 * the payloads each chunk completes. Buffers are never reused, so callers may
 * keep the payloads.
 */
export class CaptureReader {
  #pending: Uint8Array = new Uint8Array(0);
  #header: CaptureHeader | undefined;
  #offset = 0;

  /** The header, once its bytes have arrived. */
  get header(): CaptureHeader | undefined {
    return this.#header;
  }

  /** Feeds the next chunk; returns the frames it completes, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buffer: Uint8Array;
    if (this.#pending.length === 0) {
      buffer = chunk;
    } else {
      buffer = new Uint8Array(this.#pending.length + chunk.length);
      buffer.set(this.#pending, 0);
      buffer.set(chunk, this.#pending.length);
    }
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const frames: Uint8Array[] = [];
    let at = 0;
    if (this.#header === undefined) {
      if (buffer.length < MAGIC.length + 4) {
        this.#checkMagic(buffer);
        this.#pending = buffer.slice();
        return frames;
      }
      this.#checkMagic(buffer);
      const length = view.getUint32(MAGIC.length);
      if (length > MAX_HEADER_BYTES) {
        throw new TransportError(`Cannot read capture: header length ${length} is too large`);
      }
      if (buffer.length < MAGIC.length + 4 + length) {
        this.#pending = buffer.slice();
        return frames;
      }
      this.#header = parseHeader(buffer.subarray(MAGIC.length + 4, MAGIC.length + 4 + length));
      at = MAGIC.length + 4 + length;
    }
    while (buffer.length - at >= 4) {
      const length = view.getUint32(at);
      if (length > MAX_FRAME_BYTES) {
        throw new TransportError(
          `Cannot read capture at byte ${this.#offset + at}: frame length ${length} is too large`,
        );
      }
      if (buffer.length - at - 4 < length) break;
      frames.push(buffer.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    this.#offset += at;
    this.#pending = at === buffer.length ? new Uint8Array(0) : buffer.slice(at);
    return frames;
  }

  /** Throws when the input ended inside a frame. */
  finish(): void {
    if (this.#header === undefined) throw new TransportError("Cannot read capture: no header");
    if (this.#pending.length > 0) {
      throw new TransportError(
        `Cannot read capture: it ends inside a frame at byte ${this.#offset}`,
      );
    }
  }

  #checkMagic(buffer: Uint8Array): void {
    const n = Math.min(buffer.length, MAGIC.length);
    for (let i = 0; i < n; i++) {
      if (buffer[i] !== MAGIC[i]) {
        throw new TransportError("Cannot read capture: the file does not start with SPOCKCAP");
      }
    }
  }
}

function parseHeader(bytes: Uint8Array): CaptureHeader {
  let header: CaptureHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new TransportError("Cannot read capture: the header is not JSON", { cause: error });
  }
  if (
    header?.format !== "spock-capture" || header.version !== 1 ||
    !Number.isInteger(header.protoVersion) || header.protoVersion < 1 || header.protoVersion > 4
  ) {
    throw new TransportError("Cannot read capture: unsupported header");
  }
  return header;
}
