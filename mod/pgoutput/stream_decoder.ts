/**
 * Decoding a whole pgoutput stream rather than one message: tracks whether
 * the stream is inside a Stream Start/Stop block (which changes the wire
 * format of change messages) and feeds Relation messages to the cache.
 */
import { decodeMessage } from "./decode.ts";
import { ProtocolError } from "./errors.ts";
import type { PgoutputMessage } from "./messages.ts";
import { RelationCache } from "./relations.ts";

/** A stateful decoder for the messages of one replication stream, in order. */
export class PgoutputStreamDecoder {
  readonly protoVersion: number;
  readonly relations: RelationCache;
  #inStream = false;

  constructor(protoVersion: number, relations: RelationCache = new RelationCache()) {
    this.protoVersion = protoVersion;
    this.relations = relations;
  }

  /** Whether the last message opened a Stream Start block that is still open. */
  get inStream(): boolean {
    return this.#inStream;
  }

  /**
   * Decodes the next message of the stream.
   *
   * @throws {ProtocolError} on malformed bytes or a Stream Start/Stop out of order.
   */
  decode(bytes: Uint8Array): PgoutputMessage {
    const message = decodeMessage(bytes, {
      protoVersion: this.protoVersion,
      inStream: this.#inStream,
    });
    switch (message.type) {
      case "stream_start":
        if (this.#inStream) throw outOfOrder("stream_start", "inside another Stream Start block");
        this.#inStream = true;
        break;
      case "stream_stop":
        if (!this.#inStream) throw outOfOrder("stream_stop", "without a Stream Start");
        this.#inStream = false;
        break;
      case "relation":
        this.relations.set(message);
        break;
    }
    return message;
  }
}

function outOfOrder(type: string, where: string): ProtocolError {
  return new ProtocolError(`it arrived ${where}`, { messageType: type });
}
