/**
 * A worker's seat for one subscription on the subscriber: a session holding
 * the subscription's advisory lock (so two daemons never apply the same
 * subscription) and writing its heartbeat to `spock._apply_worker`, which
 * `sub_show_status()` reads. The lock lives as long as the session.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { workerLockKey } from "../catalog/mod.ts";
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
  #session: postgres.ReservedSql;
  #subscriptionId: number;
  #daemon: string;
  #state: WorkerState = "starting";
  #timer: ReturnType<typeof setInterval> | undefined;
  #onLost: (error: unknown) => void;

  private constructor(
    session: postgres.ReservedSql,
    subscriptionId: number,
    daemon: string,
    onLost: (error: unknown) => void,
  ) {
    this.#session = session;
    this.#subscriptionId = subscriptionId;
    this.#daemon = daemon;
    this.#onLost = onLost;
  }

  /**
   * Takes the subscription's lock, waiting (and saying so once) while another
   * daemon holds it. Resolves `undefined` if `signal` aborts first.
   * `onLost` is called when a heartbeat cannot be written: the session (and
   * with it the lock) is gone, and so, most likely, is the local server.
   */
  static async acquire(
    sql: postgres.Sql,
    options: {
      subscriptionId: number;
      subscriptionName: string;
      daemon: string;
      signal: AbortSignal;
      onLost: (error: unknown) => void;
    },
  ): Promise<WorkerSeat | undefined> {
    const session = await sql.reserve();
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
            options.subscriptionId,
            options.daemon,
            options.onLost,
          );
          await seat.setState("starting");
          seat.#timer = setInterval(() => seat.#beat(), HEARTBEAT_MS);
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
      session.release();
      throw error;
    }
    session.release();
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
      (error) => {
        log.warning("Cannot write the heartbeat of subscription {id}: {error}", {
          id: this.#subscriptionId,
          error: String(error),
        });
        clearInterval(this.#timer);
        this.#onLost(error);
      },
    );
  }

  /** Writes the final state, unlocks and gives the session back. */
  async release(finalState: WorkerState): Promise<void> {
    clearInterval(this.#timer);
    try {
      await this.setState(finalState);
      await this.#session.unsafe("select pg_advisory_unlock_all()");
    } catch {
      // A dead session has dropped the lock with it.
    } finally {
      this.#session.release();
    }
  }
}
