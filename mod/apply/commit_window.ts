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
 *
 * After a failure the window starts again from one transaction and doubles
 * as COMMITs are acknowledged (as TCP's slow start), so that a workload full
 * of conflicts does not send hundreds of transactions again for each one.
 */
import type { Begin, Commit } from "../pgoutput/mod.ts";
import type { ApplyMode } from "./apply_mode.ts";
import type { ApplyCounters } from "./conflicts/report.ts";
import type { ReplayQueue } from "./replay_queue.ts";
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
  transactions: 500,
  bytes: 8 * 1024 * 1024,
});

/** One remote transaction in the window. */
export interface WindowEntry {
  begin: Begin;
  /** Set once its COMMIT was sent. */
  commit: Commit | undefined;
  /** Its messages, for sending it again. */
  replay: ReplayQueue;
  /** How it is applied (`fast`: pipelined, no conflict handling). */
  mode: ApplyMode;
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
  /** Bytes kept by the entries whose COMMIT was sent. */
  #bytes = 0;
  /** Transactions allowed in flight now (grows back to the limit after a failure). */
  #allowed: number;
  #acknowledgedSinceGrowth = 0;

  constructor(limits: Partial<CommitWindowLimits> = {}) {
    this.#limits = { ...DEFAULT_WINDOW_LIMITS, ...limits };
    this.#allowed = this.#limits.transactions;
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
  open(begin: Begin, replay: ReplayQueue, mode: ApplyMode): WindowEntry {
    const entry: WindowEntry = {
      begin,
      commit: undefined,
      replay,
      mode,
      settled: Promise.resolve(),
    };
    this.#entries.push(entry);
    return entry;
  }

  /** Records a failure of `entry` (only the first one counts). */
  noteFailure(failure: WindowFailure): void {
    this.#failure ??= failure;
  }

  /** Counts the bytes of an entry whose COMMIT was just sent. */
  committed(entry: WindowEntry): void {
    this.#bytes += entry.replay.bytes;
  }

  /** Removes an acknowledged entry (normally the oldest). */
  acknowledge(entry: WindowEntry): void {
    const index = entry === this.#entries[0] ? 0 : this.#entries.indexOf(entry);
    if (index < 0) return;
    this.#entries.splice(index, 1);
    if (entry.commit === undefined) return;
    this.#bytes -= entry.replay.bytes;
    if (this.#allowed < this.#limits.transactions) {
      this.#acknowledgedSinceGrowth++;
      if (this.#acknowledgedSinceGrowth >= this.#allowed) {
        this.#allowed = Math.min(this.#limits.transactions, this.#allowed * 2);
        this.#acknowledgedSinceGrowth = 0;
      }
    }
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

  /**
   * Takes every entry and clears the failure: the applier sends them again,
   * one at a time at first.
   */
  takeAll(): WindowEntry[] {
    const entries = this.#entries;
    this.#entries = [];
    this.#failure = undefined;
    this.#bytes = 0;
    this.#allowed = 1;
    this.#acknowledgedSinceGrowth = 0;
    return entries;
  }

  #overLimits(): boolean {
    if (this.#entries.length === 0) return false;
    if (this.#entries.length > this.#allowed) return true;
    // The open transaction (last) grows as it streams; the others are fixed once committed.
    const open = this.#entries[this.#entries.length - 1];
    return this.#bytes + (open.commit === undefined ? open.replay.bytes : 0) > this.#limits.bytes;
  }
}
