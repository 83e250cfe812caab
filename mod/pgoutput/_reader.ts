/**
 * Folder-private byte cursor over one pgoutput message: big-endian integers,
 * NUL-terminated strings and zero-copy byte ranges, each bounds-checked so a
 * short or malformed message raises `ProtocolError`, never a `RangeError`.
 * What the fields mean is left to the `_read_*.ts` readers.
 */

import { ProtocolError } from "./errors.ts";

/** Decodes names and prefixes; non-fatal like the server, and a leading BOM is kept. */
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A cursor over one message, created per `decodeMessage()` call so decoding
 * shares no state between calls; the 64-bit reads create a `DataView` lazily,
 * once per message at most, and row messages never need one.
 */
export class MessageReader {
  /** The message, type byte included; offsets in errors index into it. */
  readonly bytes: Uint8Array;
  /** Offset of the next unread byte; starts just past the type byte. */
  pos = 1;
  /** Type name used in errors, e.g. `"insert"`. */
  readonly messageType: string;
  #view: DataView | undefined = undefined;

  constructor(bytes: Uint8Array, messageType: string) {
    this.bytes = bytes;
    this.messageType = messageType;
  }

  /** Rejects trailing bytes: a message must be consumed exactly. */
  finish(): void {
    const left = this.bytes.length - this.pos;
    if (left !== 0) this.fail(`unexpected ${left} trailing bytes after the message`, this.pos);
  }

  /** Bytes left after the cursor. */
  remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws a `ProtocolError` for the current message at `offset`. */
  fail(detail: string, offset: number): never {
    throw new ProtocolError(detail, { messageType: this.messageType, offset });
  }

  /** Checks that `count` bytes are left and returns the offset of the first one. */
  need(count: number): number {
    const pos = this.pos;
    const left = this.bytes.length - pos;
    if (left < count) {
      this.fail(`expected ${count} more bytes, got ${left}`, pos);
    }
    this.pos = pos + count;
    return pos;
  }

  /** Reads a Byte1 / Int8. */
  readByte(): number {
    return this.bytes[this.need(1)];
  }

  /** Reads an unsigned Int16 (column counts). */
  readUint16(): number {
    const p = this.need(2);
    const b = this.bytes;
    return (b[p] << 8) | b[p + 1];
  }

  /** Reads a signed Int32 (lengths, typmods). */
  readInt32(): number {
    const p = this.need(4);
    const b = this.bytes;
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  }

  /** Reads an unsigned Int32 (OIDs, xids). */
  readUint32(): number {
    const p = this.need(4);
    const b = this.bytes;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  /** Reads an unsigned Int64 (LSNs). */
  readUint64(): bigint {
    const p = this.need(8);
    return this.#dataView().getBigUint64(p);
  }

  /** Reads a signed Int64 (timestamps). */
  readInt64(): bigint {
    const p = this.need(8);
    return this.#dataView().getBigInt64(p);
  }

  /** Reads a NUL-terminated UTF-8 string. */
  readString(): string {
    const start = this.pos;
    const bytes = this.bytes;
    const nul = bytes.indexOf(0, start);
    if (nul === -1) this.fail("string is missing its NUL terminator", start);
    this.pos = nul + 1;
    return nul === start ? "" : UTF8.decode(bytes.subarray(start, nul));
  }

  /** Returns the next `length` bytes as a subarray; `lengthOffset` locates the length field. */
  readBytes(length: number, lengthOffset: number): Uint8Array {
    const start = this.pos;
    const left = this.bytes.length - start;
    if (length < 0) this.fail(`negative length ${length}`, lengthOffset);
    if (length > left) this.fail(`length ${length} exceeds the ${left} bytes left`, lengthOffset);
    this.pos = start + length;
    return this.bytes.subarray(start, start + length);
  }

  #dataView(): DataView {
    const bytes = this.bytes;
    return this.#view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
