/**
 * The commit window: remote transactions sent to the apply session whose
 * COMMIT is not acknowledged yet, oldest first, bounded in transactions and
 * in bytes. Each keeps its messages (up to the replay limit) so that, when
 * one fails, it can be applied again with conflict handling and the ones
 * behind it (which the server skipped) sent again. Deciding what to do with
 * a failure is the applier's; this keeps the order, the limits and the first
 * failure.
 *
 *   sent:   T1 T2 T3 T4 T5      acknowledged: T1 T2    failed: T3 (T4, T5 skipped)
 *   after recovery: T3 again (careful, exception mode), then T4, T5 re-sent
 */
import type { Begin, Commit } from "../pgoutput/mod.ts";
import type { ApplyCounters } from "./conflicts/report.ts";
import type { ReplayQueue } from "./exception_mode.ts";
import type { LocalRelation } from "./relation_map.ts";

/** Limits of the window (`engine.apply_window_*`). */
export interface CommitWindowLimits {
  /** Transactions in flight at most. */
  transactions: number;
  /** Bytes of the kept messages in flight at most. */
  bytes: number;
}

/** Defaults that suit most users: a second of a busy provider, a few MB. */
export const DEFAULT_WINDOW_LIMITS: Readonly<CommitWindowLimits> = Object.freeze({
  transactions: 1000,
  bytes: 8 * 1024 * 1024,
});

/** One remote transaction in the window. */
export interface WindowEntry {
  begin: Begin;
  /** Set once its COMMIT was sent. */
  commit: Commit | undefined;
  /** Its messages, for sending it again. */
  replay: ReplayQueue;
  /** Applied with fast statements (pipelined, no conflict handling). */
  fast: boolean;
  /** Settles when the COMMIT is answered (never rejects). */
  settled: Promise<void>;
  /** Its apply counters, from its COMMIT on (conflicts reported later still count there). */
  counters?: ApplyCounters;
  /** The committed counters its COMMIT writes (kept again if it fails). */
  taken?: ApplyCounters;
}

/** The first failure in the window: everything from its entry on was not applied. */
export interface WindowFailure {
  entry: WindowEntry;
  cause: unknown;
  operation: string;
  relation: LocalRelation | undefined;
}

/** Transactions in flight on the apply session. */
export class CommitWindow {
  #limits: CommitWindowLimits;
  #entries: WindowEntry[] = [];
  #failure: WindowFailure | undefined;

  constructor(limits: Partial<CommitWindowLimits> = {}) {
    this.#limits = { ...DEFAULT_WINDOW_LIMITS, ...limits };
  }

  /** The first failure since the last {@link takeAll}. */
  get failure(): WindowFailure | undefined {
    return this.#failure;
  }

  /** Transactions in flight. */
  get size(): number {
    return this.#entries.length;
  }

  /** Adds the transaction that `begin` opens. */
  open(begin: Begin, replay: ReplayQueue, fast: boolean): WindowEntry {
    const entry: WindowEntry = {
      begin,
      commit: undefined,
      replay,
      fast,
      settled: Promise.resolve(),
    };
    this.#entries.push(entry);
    return entry;
  }

  /** Records a failure of `entry` (only the first one counts). */
  noteFailure(failure: WindowFailure): void {
    this.#failure ??= failure;
  }

  /** Removes an acknowledged entry (always the oldest). */
  acknowledge(entry: WindowEntry): void {
    const index = this.#entries.indexOf(entry);
    if (index >= 0) this.#entries.splice(index, 1);
  }

  /** Drops an entry never committed (rolled back before its COMMIT was sent). */
  forget(entry: WindowEntry): void {
    this.acknowledge(entry);
  }

  /** Waits while the window is over its limits (or until a failure). */
  async admit(): Promise<void> {
    while (this.#failure === undefined && this.#overLimits()) {
      await this.#entries[0].settled;
    }
  }

  /** Waits until every entry but `except` has settled, or a failure. */
  async drain(except?: WindowEntry): Promise<void> {
    for (const entry of [...this.#entries]) {
      if (this.#failure !== undefined) return;
      if (entry !== except) await entry.settled;
    }
  }

  /** Takes every entry and clears the failure: the applier sends them again. */
  takeAll(): WindowEntry[] {
    const entries = this.#entries;
    this.#entries = [];
    this.#failure = undefined;
    return entries;
  }

  #overLimits(): boolean {
    if (this.#entries.length === 0) return false;
    if (this.#entries.length > this.#limits.transactions) return true;
    let bytes = 0;
    for (const entry of this.#entries) bytes += entry.replay.bytes;
    return bytes > this.#limits.bytes;
  }
}
