/**
 * A worker's seat for one subscription on the subscriber: a session holding
 * the subscription's advisory lock (so two daemons never apply the same
 * subscription) and writing its heartbeat to `spock._apply_worker`, which
 * `sub_show_status()` reads. The lock lives as long as the session.
 */
import { getLogger } from "@logtape/logtape";
import { PinnedSession, workerLockKey } from "../catalog/mod.ts";
import type { PgConnectOptions } from "../pg/mod.ts";
import { sleep } from "./backoff.ts";

const log = getLogger(["spock", "daemon"]);

/** What a worker reports about itself. */
export type WorkerState = "starting" | "syncing" | "replicating" | "stopped" | "failed";

const HEARTBEAT_MS = 5_000;
/** A session that cannot write its heartbeat in this time counts as lost. */
const HEARTBEAT_TIMEOUT_MS = 3_000;
const LOCK_RETRY_MS = 1_000;

/** The lock and heartbeat session of one subscription's worker. */
export class WorkerSeat {
  #session: PinnedSession;
  #subscriptionId: number;
  #subscriptionName: string;
  #daemon: string;
  #state: WorkerState = "starting";
  #timer: ReturnType<typeof setInterval> | undefined;
  #onLost: ((error: unknown) => void) | undefined;

  private constructor(
    session: PinnedSession,
    subscription: { subscriptionId: number; subscriptionName: string },
    daemon: string,
    onLost: (error: unknown) => void,
  ) {
    this.#session = session;
    this.#subscriptionId = subscription.subscriptionId;
    this.#subscriptionName = subscription.subscriptionName;
    this.#daemon = daemon;
    this.#onLost = onLost;
  }

  /**
   * Opens a session to the local database (`localOptions`) and takes the
   * subscription's lock, waiting (and saying so once) while another daemon
   * holds it. Resolves `undefined` if `signal` aborts first. `onLost` is
   * called once, when the session's connection closes or a heartbeat cannot
   * be written in time: the session (and with it the lock) is gone, and so,
   * most likely, is the local server.
   */
  static async acquire(
    localOptions: PgConnectOptions,
    options: {
      subscriptionId: number;
      subscriptionName: string;
      daemon: string;
      signal: AbortSignal;
      onLost: (error: unknown) => void;
    },
  ): Promise<WorkerSeat | undefined> {
    const session = await PinnedSession.open(localOptions, "the local database");
    try {
      const key = workerLockKey(options.subscriptionId);
      let warned = false;
      while (!options.signal.aborted) {
        const [row] = await session.unsafe("select pg_try_advisory_lock($1::int8) as locked", [
          key,
        ]);
        if (row.locked) {
          if (warned) log.info("Lock of subscription {subscriptionName} acquired", options);
          const seat = new WorkerSeat(
            session,
            options,
            options.daemon,
            options.onLost,
          );
          await seat.setState("starting");
          seat.#timer = setInterval(() => seat.#beat(), HEARTBEAT_MS);
          session.lost.addEventListener("abort", () => seat.#lose(session.lost.reason), {
            once: true,
          });
          return seat;
        }
        if (!warned) {
          log.warning(
            "Subscription {subscriptionName} is served by another daemon; waiting for its lock",
            options,
          );
          warned = true;
        }
        await sleep(LOCK_RETRY_MS, options.signal);
      }
    } catch (error) {
      await session.end(0);
      throw error;
    }
    await session.end(0);
    return undefined;
  }

  /** Records the worker's state (and refreshes the heartbeat). */
  async setState(state: WorkerState): Promise<void> {
    this.#state = state;
    await this.#session.unsafe(
      `insert into spock._apply_worker (sub_id, daemon, pid, state, started_at, heartbeat_at)
       values ($1::int8::oid, $2, $3, $4, now(), now())
       on conflict (sub_id) do update set daemon = excluded.daemon, pid = excluded.pid,
         state = excluded.state, heartbeat_at = excluded.heartbeat_at,
         started_at = case when spock._apply_worker.state = excluded.state
           then spock._apply_worker.started_at else excluded.started_at end`,
      [this.#subscriptionId, this.#daemon, Deno.pid, state],
    );
  }

  #beat(): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${HEARTBEAT_TIMEOUT_MS} ms`)),
        HEARTBEAT_TIMEOUT_MS,
      );
    });
    Promise.race([this.setState(this.#state), timedOut]).finally(() => clearTimeout(timer)).catch(
      (error) => this.#lose(error),
    );
  }

  /** Reports the session lost, once (not after release). */
  #lose(error: unknown): void {
    const onLost = this.#onLost;
    if (onLost === undefined) return;
    this.#onLost = undefined;
    clearInterval(this.#timer);
    log.warning("Lost the seat of subscription {subscription}: {error}", {
      subscription: this.#subscriptionName,
      error: error instanceof Error ? error.message : String(error),
    });
    onLost(error);
  }

  /** Writes the final state, unlocks and ends the session. */
  async release(finalState: WorkerState): Promise<void> {
    this.#onLost = undefined;
    clearInterval(this.#timer);
    try {
      await this.setState(finalState);
      await this.#session.unsafe("select pg_advisory_unlock_all()");
    } catch {
      // A dead session has dropped the lock with it.
    } finally {
      await this.#session.end(1);
    }
  }
}
