/**
 * Ordinary (non-replication) connections for catalog work, from resolved
 * libpq settings: one session, notices kept out of stdout.
 */
import type { Readable, Writable } from "node:stream";
import postgres from "postgres";
import type { PgConnectOptions } from "../pg/mod.ts";

/** A postgres.js client for catalog work. */
export type CatalogSql = postgres.Sql;

/** Opens a client with `max` sessions (default 1); close it with `end()`. */
export function connectDatabase(
  options: PgConnectOptions,
  settings: {
    max?: number;
    onnotice?: (notice: postgres.Notice) => void;
    /** Called whenever one of the sessions' connections closes (an end() included). */
    onclose?: () => void;
  } = {},
): CatalogSql {
  // postgres.js accepts host and port lists at run time; its types only show one.
  return postgres({
    ...(options as unknown as postgres.Options<Record<string, never>>),
    max: settings.max ?? 1,
    onnotice: settings.onnotice ?? (() => {}),
    idle_timeout: 30,
    ...(settings.onclose ? { onclose: settings.onclose } : {}),
  });
}

/**
 * One server session for work that must stay on it: a transaction's
 * snapshot, a temporary slot. postgres.js sends a query on a reserved session
 * whose connection has closed into the void and never settles it; here no
 * query is sent once the connection has closed, and a pending one rejects
 * when it closes, with "the connection to `peer` was lost".
 */
export class PinnedSession {
  /** Aborted once the session's connection has closed (its `reason` names the peer). */
  readonly lost: AbortSignal;
  #client: postgres.Sql;
  #session: postgres.ReservedSql;

  private constructor(client: postgres.Sql, session: postgres.ReservedSql, lost: AbortSignal) {
    this.#client = client;
    this.#session = session;
    this.lost = lost;
  }

  /** Connects one session; `peer` names the server in errors ("the provider"). */
  static async open(options: PgConnectOptions, peer: string): Promise<PinnedSession> {
    const lost = new AbortController();
    const client = connectDatabase(options, {
      onclose: () => lost.abort(new Error(`the connection to ${peer} was lost`)),
    });
    try {
      return new PinnedSession(
        client,
        await unlessLost(client.reserve(), lost.signal),
        lost.signal,
      );
    } catch (error) {
      await client.end({ timeout: 0 });
      throw error;
    }
  }

  /** Runs `query` with `params` on the session. */
  unsafe(query: string, params: postgres.ParameterOrJSON<never>[] = []): Promise<postgres.Row[]> {
    return this.#run(() => this.#session.unsafe(query, params));
  }

  /** Runs a `COPY … TO STDOUT` on the session and resolves with its data stream. */
  copyOut(query: string): Promise<Readable> {
    return this.#run(() => this.#session.unsafe(query).readable());
  }

  /**
   * Runs a `COPY … FROM STDIN` on the session and resolves with the stream for
   * its data. An error the server sends after the data's end (a bad last row,
   * a duplicate key) destroys the stream: postgres.js settled the query when
   * the server asked for data and would hand the error only to it, so the
   * stream would never finish.
   */
  copyIn(query: string): Promise<Writable> {
    return this.#run(async () => {
      const pending = this.#session.unsafe(query);
      const writable = await pending.writable();
      const settled = pending as unknown as { reject: (error: unknown) => void };
      const reject = settled.reject;
      settled.reject = (error) => {
        writable.destroy(error instanceof Error ? error : new Error(String(error)));
        reject(error);
      };
      return writable;
    });
  }

  /** Ends the session (at once when its connection was lost, else after at most `timeout` s). */
  async end(timeout = 5): Promise<void> {
    this.#session.release();
    await this.#client.end({ timeout: this.lost.aborted ? 0 : timeout });
  }

  #run<T>(send: () => Promise<T>): Promise<T> {
    if (this.lost.aborted) return Promise.reject(this.lost.reason);
    return unlessLost(send(), this.lost);
  }
}

/** Settles as `promise` does, or rejects with `lost.reason` once `lost` aborts first. */
function unlessLost<T>(promise: Promise<T>, lost: AbortSignal): Promise<T> {
  promise.catch(() => {});
  if (lost.aborted) return Promise.reject(lost.reason);
  return new Promise<T>((resolve, reject) => {
    const onLost = () => reject(lost.reason);
    lost.addEventListener("abort", onLost, { once: true });
    promise.then(resolve, reject).finally(() => lost.removeEventListener("abort", onLost));
  });
}
