/**
 * The supervisor's LISTEN on `spock_catalog`: one connection of its own that
 * reports notifications and, once, that it was lost. Reconnecting is the
 * supervisor's decision, at its own pace: postgres.js's `listen()` re-listens
 * the moment its connection closes, and against a server that is down that is
 * a loop of hundreds of connections a second.
 */
import postgres from "postgres";
import type { PgConnectOptions } from "../pg/mod.ts";

/** A LISTEN session; check {@link lost} and open a new one when it is. */
export class CatalogListener {
  #sql: postgres.Sql;
  #state: { open: boolean; lost: boolean };

  private constructor(sql: postgres.Sql, state: { open: boolean; lost: boolean }) {
    this.#sql = sql;
    this.#state = state;
  }

  /**
   * Connects and LISTENs on `channel`; `onEvent` is called for every
   * notification and when the connection is lost.
   */
  static async open(
    options: PgConnectOptions,
    channel: string,
    onEvent: () => void,
  ): Promise<CatalogListener> {
    const state = { open: false, lost: false };
    const sql = postgres({
      ...(options as unknown as postgres.Options<Record<string, never>>),
      max: 1,
      idle_timeout: undefined,
      max_lifetime: null,
      fetch_types: false,
      onnotice: () => {},
      onclose: () => {
        if (!state.open || state.lost) return;
        state.lost = true;
        onEvent();
      },
      // Not in postgres.js's types: the option its own listen() uses.
      ...{ onnotify: (name: string) => name === channel && onEvent() },
    });
    try {
      await sql.unsafe(`listen "${channel.replaceAll('"', '""')}"`);
    } catch (error) {
      await sql.end({ timeout: 0 }).catch(() => {});
      throw error;
    }
    state.open = true;
    return new CatalogListener(sql, state);
  }

  /** True once the connection has closed: notifications may have been missed since. */
  get lost(): boolean {
    return this.#state.lost;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#state.lost = true;
    await this.#sql.end({ timeout: 1 }).catch(() => {});
  }
}
