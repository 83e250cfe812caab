/**
 * One subscription's worker: takes the subscription's seat (advisory lock and
 * heartbeat), runs its initial sync and any pending table syncs, then streams
 * and applies; after a failure it starts over with capped exponential
 * backoff, from the replication origin's position, so nothing is lost or
 * applied twice. The node supervisor starts and stops workers.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { ApplyError, CommitsInDoubt, type ConflictSettings } from "../apply/mod.ts";
import { connectDatabase } from "../catalog/mod.ts";
import type { EngineSettings } from "../config/mod.ts";
import {
  formatLsn,
  type Lsn,
  maskDsn,
  type PgConnectOptions,
  resolveConnectOptions,
} from "../pg/mod.ts";
import {
  initializeSubscription,
  needsCopy,
  needsInitialSync,
  readTableSyncStates,
  type SubscriptionSyncOptions,
  synchronizeTables,
} from "../sync/mod.ts";
import { restartDelay, settleWithin, sleep } from "./backoff.ts";
import {
  failureMessage,
  operatorMustAct,
  recordWorkerFailure,
  stopsWorker,
} from "./worker_failure.ts";
import { readSubscriptions, type SubscriptionRecord } from "./subscription_record.ts";
import { ChannelSwitch, streamAndApply, type StreamCounters } from "./stream_apply.ts";
import { WorkerSeat } from "./worker_seat.ts";

const log = getLogger(["spock", "daemon"]);

/** What a worker needs besides its subscription. */
export interface SubscriptionWorkerOptions {
  /** Connection settings of the served (subscriber) database. */
  localOptions: PgConnectOptions;
  engine: EngineSettings;
  /** Names this daemon in `spock._apply_worker` (host and pid). */
  daemon: string;
  /** Environment for libpq defaults of the provider DSN (PGPASSWORD, PGSSLMODE…). */
  env: Record<string, string | undefined>;
  /** The supervisor's client of the served database: failures are recorded through it. */
  catalog: postgres.Sql;
}

const BACKOFF_BASE_MS = 500;
/** An attempt that streamed this long resets the backoff when it fails. */
const HEALTHY_MS = 30_000;

/** Runs one subscription until stopped. */
export class SubscriptionWorker {
  readonly subscriptionId: number;
  readonly counters: StreamCounters = { transactions: 0, skipped: 0, lastRemoteCommitLsn: 0n };
  #record: SubscriptionRecord;
  #options: SubscriptionWorkerOptions;
  #controller = new AbortController();
  #done: Promise<void>;
  #failures = 0;
  #streaming = false;
  /** When the current attempt started streaming (a healthy period resets the backoff). */
  #streamingSince: number | undefined;
  /** A remote transaction to apply in exception mode on the next attempt. */
  #exceptionModeAt: Lsn | undefined;
  /** A transaction to apply with conflict handling from its start (see ERR_APPLY_CAREFUL_RESTART). */
  #carefulAt: Lsn | undefined;
  /** Commits an apply session sent and lost before their outcome came back. */
  #commitsInDoubt = new CommitsInDoubt();

  constructor(record: SubscriptionRecord, options: SubscriptionWorkerOptions) {
    this.subscriptionId = record.id;
    this.#record = record;
    this.#options = options;
    this.#done = this.#run();
  }

  /** The subscription as this worker last read it. */
  get record(): SubscriptionRecord {
    return this.#record;
  }

  /** Consecutive failed attempts (0 while healthy). */
  get failures(): number {
    return this.#failures;
  }

  /** True while the worker streams (its syncs are done). */
  get streaming(): boolean {
    return this.#streaming;
  }

  /** Stops the worker cleanly and waits for it. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }

  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    const wlog = log.with({ subscription: this.#record.name });
    while (!signal.aborted) {
      try {
        const finished = await this.#attempt(signal);
        if (finished) return;
      } catch (error) {
        // A stop makes the attempt fail; but a subscription disabled by exception
        // handling is stopped for that very reason, which must be recorded.
        if (signal.aborted && !stopsWorker(error)) break;
        if (error instanceof ApplyError && error.code === "ERR_APPLY_REPLAY_RESTART") {
          this.#exceptionModeAt = error.remoteCommitLsn;
          wlog.warning("{error}", { error: error.summary });
          continue;
        }
        if (error instanceof ChannelSwitch) {
          wlog.info("Subscription {subscription} now streams its channel", {
            subscription: this.#record.name,
          });
          continue;
        }
        if (error instanceof ApplyError && error.code === "ERR_APPLY_CAREFUL_RESTART") {
          this.#carefulAt = error.remoteCommitLsn;
          wlog.info("{error}", { error: error.summary });
          continue;
        }
        await this.#failed(error);
        if (stopsWorker(error)) return;
        continue;
      }
    }
    wlog.info("Worker of subscription {subscription} stopped", {
      subscription: this.#record.name,
    });
  }

  /**
   * After a failed attempt: counts it (the count starts over once an attempt
   * has streamed for a healthy period), logs and records it, and waits the
   * backoff delay, which doubles while failures repeat.
   */
  async #failed(error: unknown): Promise<void> {
    const healthy = this.#streamingSince !== undefined &&
      performance.now() - this.#streamingSince >= HEALTHY_MS;
    this.#streamingSince = undefined;
    if (healthy) this.#failures = 0;
    this.#failures++;
    const stops = stopsWorker(error);
    const delay = stops ? undefined : restartDelay(this.#failures, {
      baseMs: BACKOFF_BASE_MS,
      capMs: Math.max(BACKOFF_BASE_MS, this.#options.engine.restart_delay_default),
    });
    const properties = {
      subscription: this.#record.name,
      error: failureMessage(error),
      attempt: this.#failures,
      delay,
    };
    if (stops) {
      log.error("Worker of subscription {subscription} stopped: {error}", properties);
    } else {
      log[operatorMustAct(error) ? "error" : "warning"](
        "Worker of subscription {subscription} failed (attempt {attempt}): {error}; restarting in {delay} ms",
        properties,
      );
    }
    await recordWorkerFailure(this.#options.catalog, {
      subscriptionId: this.subscriptionId,
      error,
      attempt: this.#failures,
      retryInMs: delay,
    });
    if (delay !== undefined) await sleep(delay, this.#controller.signal);
  }

  /**
   * One run from the origin's position; true when the subscription is gone
   * or disabled, or the worker was stopped. Throws when the run failed.
   */
  async #attempt(stop: AbortSignal): Promise<boolean> {
    // Aborted by a stop, or by losing the local database (then the stream
    // must end at once: a local server shutting down waits for its walsenders).
    const attempt = new AbortController();
    const onStop = () => attempt.abort();
    stop.addEventListener("abort", onStop, { once: true });
    try {
      const finished = await this.#runAttempt(stop, attempt);
      if (!stop.aborted && attempt.signal.aborted) throw attempt.signal.reason;
      return finished;
    } finally {
      stop.removeEventListener("abort", onStop);
    }
  }

  /** The attempt's body: seat, sync, stream; `attempt` aborts it from inside. */
  async #runAttempt(stop: AbortSignal, attempt: AbortController): Promise<boolean> {
    const signal = attempt.signal;
    const engine = this.#options.engine;
    // Catalog work (the seat, the data copy and the apply open sessions of their own).
    const local = connectDatabase(this.#options.localOptions, { max: 2 });
    let seat: WorkerSeat | undefined;
    let finalState: "stopped" | "failed" = "failed";
    try {
      seat = await WorkerSeat.acquire(this.#options.localOptions, {
        subscriptionId: this.subscriptionId,
        subscriptionName: this.#record.name,
        daemon: this.#options.daemon,
        signal,
        onLost: (error) =>
          attempt.abort(new Error("Lost the connection to the local database", { cause: error })),
      });
      if (seat === undefined) return true;
      const record = (await readSubscriptions(local)).find((s) => s.id === this.subscriptionId);
      if (record === undefined || !record.enabled) {
        finalState = "stopped";
        return true;
      }
      this.#record = record;
      const providerOptions = resolveConnectOptions(record.providerDsn, {
        env: this.#options.env,
        applicationName: record.name,
      });
      log.info("Worker of subscription {subscription} starting: provider {provider} at {dsn}", {
        subscription: record.name,
        provider: record.providerNodeName,
        dsn: maskDsn(record.providerDsn),
      });
      const provider = connectDatabase(providerOptions, { max: 1 });
      try {
        const sync: SubscriptionSyncOptions = {
          subscriptionId: record.id,
          subscriptionName: record.name,
          slotName: record.slotName,
          replicationSets: record.replicationSets,
          syncKind: record.syncKind,
          syncState: record.syncState,
          skipSchemas: record.skipSchemas,
          local,
          localOptions: this.#options.localOptions,
          providerOptions,
          providerDsn: record.providerDsn,
          connections: engine.sync_connections,
          signal,
        };
        if (needsInitialSync(record.syncState)) {
          await seat.setState("syncing");
          const lsn = await initializeSubscription(sync);
          record.syncState = "catchup";
          log.info("Subscription {subscription} synchronized at {lsn}; catching up", {
            subscription: record.name,
            lsn: formatLsn(lsn),
          });
        }
        const pending = (await readTableSyncStates(local, record.id))
          .filter((table) => needsCopy(table.state));
        if (pending.length > 0) {
          await seat.setState("syncing");
          await synchronizeTables(sync, pending);
        }
        if (signal.aborted) return true;
        await streamAndApply({
          subscription: record,
          local,
          localOptions: this.#options.localOptions,
          provider,
          providerOptions,
          statusIntervalMs: Math.min(engine.status_interval, 1_000),
          receiveTimeoutMs: engine.apply_idle_timeout * 1_000,
          synchronousCommit: engine.synchronous_commit,
          conflicts: conflictSettings(engine, record),
          window: {
            transactions: engine.apply_window_transactions,
            bytes: engine.apply_window_bytes,
          },
          batchInserts: engine.batch_inserts,
          exceptions: {
            behaviour: engine.exception_behaviour,
            logging: engine.exception_logging,
            replayQueueSize: engine.exception_replay_queue_size,
          },
          exceptionModeAt: this.#exceptionModeAt,
          carefulAt: this.#carefulAt,
          commitsInDoubt: this.#commitsInDoubt,
          signal,
          onStreaming: async () => {
            await seat!.setState("replicating");
            this.#streaming = true;
            this.#streamingSince = performance.now();
          },
        }, this.counters);
        finalState = "stopped";
        return true;
      } finally {
        await settleWithin(provider.end({ timeout: 2 }), 3_000);
      }
    } finally {
      this.#streaming = false;
      if (seat !== undefined) {
        await settleWithin(seat.release(stop.aborted ? "stopped" : finalState), 2_000);
      }
      await settleWithin(local.end({ timeout: 2 }), 3_000);
    }
  }
}

/** The node's conflict settings with the subscription's overrides (`sub_alter_options`). */
function conflictSettings(engine: EngineSettings, record: SubscriptionRecord): ConflictSettings {
  return {
    resolution: record.options.conflict_resolution ?? engine.conflict_resolution,
    updateMissing: record.options.update_missing ?? engine.update_missing,
    saveResolutions: engine.save_resolutions,
    checkAllUcIndexes: engine.check_all_uc_indexes,
    logLevel: engine.conflict_log_level,
  };
}
