/**
 * The CopyBoth phase of START_REPLICATION: received messages are parsed and
 * handed to the consumer in batches; standby status updates go back on a
 * timer and whenever the server asks, carrying only the positions the consumer
 * reported. Batches hold at most `maxBatchBytes`; a consumer slower than the
 * server pauses the socket once `maxBufferedBytes` are waiting, and resumes
 * it when half of that is left, so memory stays bounded.
 *
 * Timeline of a clean stop: stop() → final status (flushed LSN) → CopyDone →
 * server's CopyDone → the iterator ends. Messages arriving meanwhile are dropped
 * unconfirmed, so the server sends them again next time.
 */
import type { Duplex } from "node:stream";
import { type Lsn, pgTimestampNow } from "../pg/mod.ts";
import { type CopyBothMessage, encodeStandbyStatus, parseCopyBothMessage } from "./copy_both.ts";
import { TransportError } from "./errors.ts";

/** Tuning of a replication stream. */
export interface ReplicationStreamOptions {
  /** Interval between unrequested status updates; default 10 s. */
  statusIntervalMs?: number;
  /** Received bytes waiting for the consumer before the socket is paused; default 1 MiB. */
  maxBufferedBytes?: number;
  /** Bytes of one batch handed to the consumer at most (one message may exceed it); default 128 KiB. */
  maxBatchBytes?: number;
  /**
   * When set, a status update asking for a reply goes out once nothing has
   * arrived for this long, and again at this pace while that lasts: the
   * server answers with a keepalive carrying its WAL position, so an idle
   * consumer learns soon that it is caught up.
   */
  idleReplyMs?: number;
  /**
   * When set, a stream on which nothing at all has arrived for this long,
   * while the socket was not paused by the consumer, fails with a
   * TransportError: a connection that went silent without being closed (a
   * stalled network) is taken for dead. Use with `idleReplyMs`, so that a
   * live but idle server answers well within it.
   */
  receiveTimeoutMs?: number;
}

const DEFAULT_STATUS_INTERVAL_MS = 10_000;
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const DEFAULT_MAX_BATCH_BYTES = 128 * 1024;
const STOP_TIMEOUT_MS = 10_000;

/** Positions as last reported to the server. */
export interface StreamPositions {
  received: Lsn;
  flushed: Lsn;
  applied: Lsn;
}

/**
 * A running logical replication stream. Iterate it for batches of messages;
 * call {@link reportProgress} as changes become durable; end with {@link stop}.
 */
export class ReplicationStream implements AsyncIterable<CopyBothMessage[]> {
  #duplex: Duplex;
  /** Batches not yet taken, oldest first; the last one is still filling. */
  #batches: { messages: CopyBothMessage[]; bytes: number }[] = [];
  #queuedBytes = 0;
  #maxBufferedBytes: number;
  #maxBatchBytes: number;
  #paused = false;
  #wake: (() => void) | undefined;
  #error: unknown;
  #ended = false;
  #stopping = false;
  #received: Lsn = 0n;
  #flushed: Lsn = 0n;
  #applied: Lsn = 0n;
  #timer: ReturnType<typeof setInterval>;
  #endedPromise: Promise<void>;
  #statusMessagesSent = 0;
  /** When the last status update went out, and when data last arrived (performance.now). */
  #statusAt = performance.now();
  #dataAt = performance.now();
  /** When anything (data or keepalive) last arrived, or the socket was last resumed. */
  #receivedAt = performance.now();

  constructor(duplex: Duplex, options: ReplicationStreamOptions = {}) {
    this.#duplex = duplex;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.#endedPromise = new Promise((resolve) => {
      duplex.on("data", (chunk: Uint8Array) => this.#onData(chunk));
      duplex.on("error", (error: unknown) => {
        this.#error ??= error;
        this.#finish();
        resolve();
      });
      duplex.on("end", () => {
        this.#finish();
        resolve();
      });
      duplex.on("close", () => {
        this.#finish();
        resolve();
      });
    });
    const statusInterval = options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
    const idleReply = options.idleReplyMs;
    const receiveTimeout = options.receiveTimeoutMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      if (receiveTimeout && !this.#paused && now - this.#receivedAt >= receiveTimeout) {
        const error = new TransportError(
          `Nothing arrived from the server for ${
            (receiveTimeout / 1000).toFixed(1)
          } s: the connection is taken for dead (apply_idle_timeout)`,
        );
        this.#error ??= error;
        this.#duplex.destroy(error);
        this.#finish();
        return;
      }
      if (
        idleReply !== undefined && now - this.#dataAt >= idleReply &&
        now - this.#statusAt >= idleReply
      ) {
        this.sendStatus(true);
      } else if (now - this.#statusAt >= statusInterval) {
        this.sendStatus(false);
      }
    }, Math.min(statusInterval, idleReply ?? statusInterval) / 2);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#stopping) return;
    this.#receivedAt = performance.now();
    let message: CopyBothMessage;
    try {
      message = parseCopyBothMessage(chunk);
    } catch (error) {
      this.#error ??= error;
      this.#duplex.destroy(error as Error);
      return;
    }
    if (message.type === "xlogdata") {
      this.#dataAt = performance.now();
      if (message.walEnd > this.#received) this.#received = message.walEnd;
      if (message.walStart > this.#received) this.#received = message.walStart;
    } else {
      if (message.walEnd > this.#received) this.#received = message.walEnd;
      if (message.replyRequested) this.sendStatus(false);
    }
    let open = this.#batches.at(-1);
    if (open === undefined || open.bytes >= this.#maxBatchBytes) {
      open = { messages: [], bytes: 0 };
      this.#batches.push(open);
    }
    open.messages.push(message);
    open.bytes += chunk.length;
    this.#queuedBytes += chunk.length;
    if (!this.#paused && this.#queuedBytes >= this.#maxBufferedBytes) {
      this.#paused = true;
      this.#duplex.pause();
    }
    this.#wakeConsumer();
  }

  #finish(): void {
    this.#ended = true;
    clearInterval(this.#timer);
    this.#wakeConsumer();
  }

  #wakeConsumer(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Bytes received and not yet taken by the consumer. */
  get bufferedBytes(): number {
    return this.#queuedBytes;
  }

  /** Whether the socket is paused because the consumer is behind. */
  get paused(): boolean {
    return this.#paused;
  }

  /** How many standby status updates have been sent. */
  get statusMessagesSent(): number {
    return this.#statusMessagesSent;
  }

  /** The positions that the next status update will carry. */
  get positions(): StreamPositions {
    return { received: this.#received, flushed: this.#flushed, applied: this.#applied };
  }

  /**
   * Records that everything up to `flushed` is durable on the consumer's side
   * (and applied up to `applied`, by default the same). Positions never move back.
   */
  reportProgress(flushed: Lsn, applied: Lsn = flushed): void {
    if (flushed > this.#flushed) this.#flushed = flushed;
    if (applied > this.#applied) this.#applied = applied;
  }

  /** Sends a standby status update now. */
  sendStatus(replyRequested: boolean): void {
    if (this.#ended || this.#duplex.writableEnded) return;
    this.#duplex.write(encodeStandbyStatus({
      written: this.#received > this.#flushed ? this.#received : this.#flushed,
      flushed: this.#flushed,
      applied: this.#applied,
      sendTime: pgTimestampNow(),
      replyRequested,
    }));
    this.#statusMessagesSent++;
    this.#statusAt = performance.now();
  }

  /** Resolves the next batch; `undefined` when the stream has ended. Throws its error. */
  async nextBatch(): Promise<CopyBothMessage[] | undefined> {
    while (this.#batches.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended || this.#stopping) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const batch = this.#batches.shift()!;
    this.#queuedBytes -= batch.bytes;
    if (this.#paused && this.#queuedBytes <= this.#maxBufferedBytes / 2) {
      this.#paused = false;
      this.#receivedAt = performance.now();
      this.#duplex.resume();
    }
    return batch.messages;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<CopyBothMessage[]> {
    while (true) {
      const batch = await this.nextBatch();
      if (batch === undefined) return;
      yield batch;
    }
  }

  /**
   * Ends streaming cleanly: a final status update with the reported positions,
   * then CopyDone, then waits for the server to finish.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return this.#endedPromise;
    this.#stopping = true;
    clearInterval(this.#timer);
    this.sendStatus(false);
    this.#batches = [];
    this.#queuedBytes = 0;
    this.#wakeConsumer();
    if (!this.#ended) {
      this.#duplex.resume();
      this.#duplex.end();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.#duplex.destroy(new TransportError("The server did not end the stream in time"));
          resolve();
        }, STOP_TIMEOUT_MS);
      });
      await Promise.race([this.#endedPromise, timedOut]);
      clearTimeout(timer);
    }
  }
}
