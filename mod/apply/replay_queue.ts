/**
 * The replay queue: the messages of the remote transaction being applied,
 * kept so that a transaction that fails (in the commit window, or with
 * conflict handling) can be applied again from memory rather than by a
 * restart of the stream.
 */
import type { PgoutputMessage } from "../pgoutput/mod.ts";

/** What a decoded message costs in memory beyond its bytes on the wire (objects, arrays, views). */
const MESSAGE_OVERHEAD_BYTES = 256;

/**
 * The messages of the current remote transaction, kept for a replay up to
 * `limit` bytes (Spock's exception_replay_queue_size, counted as wire bytes
 * plus an estimate of each decoded message's overhead); past that, none.
 */
export class ReplayQueue {
  #limit: number;
  #messages: PgoutputMessage[] | undefined;
  #bytes = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The transaction's messages so far, or undefined when over the limit. */
  get messages(): PgoutputMessage[] | undefined {
    return this.#messages;
  }

  /** What the kept messages cost, in the units of the limit. */
  get bytes(): number {
    return this.#messages === undefined ? 0 : this.#bytes;
  }

  /** Keeps one message (a Begin starts a new transaction). */
  note(message: PgoutputMessage, size: number): void {
    if (message.type === "begin") {
      this.#messages = [];
      this.#bytes = 0;
    }
    if (this.#messages === undefined) return;
    // A decoded message takes far more memory than its bytes on the wire.
    this.#bytes += size + MESSAGE_OVERHEAD_BYTES;
    if (this.#bytes > this.#limit) {
      this.#messages = undefined;
      return;
    }
    this.#messages.push(message);
  }

  /** Drops what is kept. */
  clear(): void {
    this.#messages = undefined;
  }
}
