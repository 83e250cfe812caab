/**
 * The sync states that move with the stream's position: a subscription in
 * catchup becomes ready once the stream has applied everything up to an
 * idle keepalive, and a table synchronized at an LSN becomes ready once the
 * stream passes that LSN. Until then the gate tells the stream which of a
 * table's changes its copy already holds.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import type { Lsn } from "../pg/mod.ts";
import {
  readTableSyncStates,
  setSubscriptionSyncState,
  setTableSyncState,
  type SyncState,
  type TableSyncState,
} from "./sync_states.ts";

const log = getLogger(["spock", "sync"]);

/** The stream's view of a subscription's sync: which changes apply, and when states move on. */
export class StreamSyncGate {
  #local: postgres.Sql;
  #subscription: { id: number; name: string };
  #caughtUp: boolean;
  #waiting = new Map<string, TableSyncState>();

  private constructor(
    local: postgres.Sql,
    subscription: { id: number; name: string },
    state: SyncState,
    tables: TableSyncState[],
  ) {
    this.#local = local;
    this.#subscription = subscription;
    this.#caughtUp = state !== "catchup";
    for (const table of tables) {
      if (table.state !== "ready") this.#waiting.set(`${table.nspname}.${table.relname}`, table);
    }
  }

  /** The gate of a subscription in `state`, with its tables' states read from the catalog. */
  static async open(
    local: postgres.Sql,
    subscription: { id: number; name: string; state: SyncState },
  ): Promise<StreamSyncGate> {
    const tables = await readTableSyncStates(local, subscription.id);
    return new StreamSyncGate(local, subscription, subscription.state, tables);
  }

  /** False while the subscription is in catchup. */
  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  /** Whether some table is still waiting for the stream to pass its copy. */
  get tablesPending(): boolean {
    return this.#waiting.size > 0;
  }

  /** Whether a change of the table committed at `finalLsn` is applied (its copy lacks it). */
  applies(nspname: string, relname: string, finalLsn: Lsn): boolean {
    const table = this.#waiting.get(`${nspname}.${relname}`);
    if (table === undefined) return true;
    return table.state === "synchronized" && finalLsn >= table.stateLsn;
  }

  /**
   * The stream is idle and has applied everything before `lsn` (a
   * keepalive's position): the subscription leaves catchup, and the tables
   * move on as in {@link passedCommit}.
   */
  async passedIdle(lsn: Lsn): Promise<void> {
    if (!this.#caughtUp) {
      await setSubscriptionSyncState(this.#local, this.#subscription.id, { state: "ready" });
      this.#caughtUp = true;
      log.info("Subscription {subscription} caught up: ready", {
        subscription: this.#subscription.name,
      });
    }
    await this.passedCommit(lsn);
  }

  /**
   * The stream has applied (and committed) everything before `lsn`: every
   * table synchronized at or before `lsn` becomes ready.
   */
  async passedCommit(lsn: Lsn): Promise<void> {
    for (const [key, table] of this.#waiting) {
      if (table.state !== "synchronized" || lsn < table.stateLsn) continue;
      await setTableSyncState(this.#local, this.#subscription.id, {
        nspname: table.nspname,
        relname: table.relname,
        state: "ready",
        lsn: table.stateLsn,
      });
      this.#waiting.delete(key);
      log.info("Table {table} synchronized: ready", { table: key });
    }
  }
}
