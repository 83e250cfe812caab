/**
 * The pgoutput decoder's one domain error, `ProtocolError`: raised for any
 * message the decoder or the Relation cache cannot accept. Deciding what to do
 * about it (restart, stop, report) is left to the caller.
 */

import type { Lsn } from "../pg/mod.ts";
import { formatByte } from "./_format.ts";

/** Options for {@linkcode ProtocolError}. */
export interface ProtocolErrorOptions {
  /**
   * The message being decoded: its type name (`"update"`) when the type byte
   * is known, otherwise the type byte as a one-character string (`""` for an
   * empty message).
   */
  messageType: string;
  /** Byte offset in the message where decoding failed; omit when no byte is at fault. */
  offset?: number;
  /** WAL position of the XLogData message, when the caller knows it. */
  lsn?: Lsn;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A pgoutput message that does not follow the protocol: truncated, carrying
 * an unknown type byte, marker, column kind or flag, or trailing bytes, or a
 * row message for a relation that was never described.
 *
 * Callers branch on `code`, never on the message text.
 *
 * @example Handling a malformed message
 * ```ts
 * import { decodeMessage, ProtocolError } from "./mod.ts";
 *
 * try {
 *   decodeMessage(new Uint8Array([0x55]), { protoVersion: 1, inStream: false });
 * } catch (error) {
 *   if (error instanceof ProtocolError) console.assert(error.offset === 1);
 * }
 * ```
 */
export class ProtocolError extends Error {
  /** Stable code for this error class. */
  readonly code = "ERR_PGOUTPUT_PROTOCOL" as const;
  /** Type name (`"insert"`) or, for an unknown byte, the byte as a character. */
  readonly messageType: string;
  /** Byte offset in the message where decoding failed, or `undefined` when none applies. */
  readonly offset: number | undefined;
  /** WAL position of the message, when the caller supplied it. */
  readonly lsn: Lsn | undefined;

  /**
   * Builds `Cannot decode <type> at offset <n>: <detail>`; without an offset
   * the message reads `Cannot decode <type>: <detail>`. An unknown type byte
   * reads `Cannot decode message "X" at offset 0: …`.
   */
  constructor(detail: string, options: ProtocolErrorOptions) {
    const where = options.offset === undefined ? "" : ` at offset ${options.offset}`;
    super(
      `Cannot decode ${describeMessageType(options.messageType)}${where}: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ProtocolError";
    this.messageType = options.messageType;
    this.offset = options.offset;
    this.lsn = options.lsn;
  }
}

/** Type names are used as they are; a lone type byte is quoted as a byte. */
function describeMessageType(messageType: string): string {
  if (messageType.length === 0) return "message";
  if (messageType.length === 1) return `message ${formatByte(messageType.charCodeAt(0))}`;
  return messageType;
}
