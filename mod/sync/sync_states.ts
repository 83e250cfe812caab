/**
 * The sync state machine of a subscription and of each table synchronized on
 * its own, kept in `spock.local_sync_status` (one row per subscription, with
 * nspname and relname NULL, and one per table). States have names here and
 * become Spock's letters only in the SQL below, where the catalog is read or
 * written.
 *
 * A subscription goes init → structure → data → constraints → catchup →
 * ready: the initial sync (subscription_sync.ts) walks it to catchup, and the
 * stream marks it ready once it has passed the slot's start (stream_gate.ts).
 * A table copied on its own goes init → data → synchronized (at the LSN of
 * its copy's snapshot) → ready once the stream passes that LSN.
 */
import type postgres from "postgres";
import { formatLsn, type Lsn, parseLsn } from "../pg/mod.ts";

/** A state of the sync state machine. */
export type SyncState =
  | "init"
  | "structure"
  | "data"
  | "constraints"
  | "waiting"
  | "catchup"
  | "synchronized"
  | "ready";

/** Spock's letter for each state (`local_sync_status.sync_status`). */
const LETTERS: Record<SyncState, string> = {
  init: "i",
  structure: "s",
  data: "d",
  constraints: "c",
  waiting: "w",
  catchup: "u",
  synchronized: "y",
  ready: "r",
};

const STATES = new Map(Object.entries(LETTERS).map(([state, letter]) => [letter, state]));

/** The state a catalog letter stands for; an unknown letter is an error naming it. */
export function syncStateOfLetter(letter: string): SyncState {
  const state = STATES.get(letter);
  if (state === undefined) {
    throw new Error(`Unknown sync status "${letter}" in spock.local_sync_status`);
  }
  return state as SyncState;
}

/** Whether a subscription in `state` still needs its initial sync before it streams. */
export function needsInitialSync(state: SyncState): boolean {
  return state !== "catchup" && state !== "ready";
}

/** Whether a table in `state` still has to be copied (a copy was asked or interrupted). */
export function needsCopy(state: SyncState): boolean {
  return state !== "synchronized" && state !== "ready";
}

/** The sync state of one table of a subscription. */
export interface TableSyncState {
  nspname: string;
  relname: string;
  state: SyncState;
  /** For `synchronized`: the provider LSN from which the stream carries this table's changes. */
  stateLsn: Lsn;
}

type Sql = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

/** Moves the subscription's own sync row to `state` (at `lsn`). */
export async function setSubscriptionSyncState(
  sql: Sql,
  subscriptionId: number,
  options: { state: SyncState; lsn?: Lsn },
): Promise<void> {
  await sql.unsafe(
    `update spock.local_sync_status set sync_status = $2, sync_statuslsn = $3::text::pg_lsn
     where sync_subid = $1::int8::oid and sync_nspname is null and sync_relname is null`,
    [subscriptionId, LETTERS[options.state], formatLsn(options.lsn ?? 0n)],
  );
}

/** The per-table sync rows of a subscription. */
export async function readTableSyncStates(
  sql: Sql,
  subscriptionId: number,
): Promise<TableSyncState[]> {
  const rows = await sql.unsafe(
    `select sync_nspname::text as nspname, sync_relname::text as relname,
       sync_status::text as status, sync_statuslsn::text as lsn
     from spock.local_sync_status
     where sync_subid = $1::int8::oid and sync_relname is not null
     order by 1, 2`,
    [subscriptionId],
  );
  return rows.map((row) => ({
    nspname: row.nspname,
    relname: row.relname,
    state: syncStateOfLetter(row.status),
    stateLsn: parseLsn(row.lsn),
  }));
}

/** Creates or moves the sync row of one table. */
export async function setTableSyncState(
  sql: Sql,
  subscriptionId: number,
  table: { nspname: string; relname: string; state: SyncState; lsn?: Lsn },
): Promise<void> {
  await sql.unsafe(
    `insert into spock.local_sync_status
       (sync_kind, sync_subid, sync_nspname, sync_relname, sync_status, sync_statuslsn)
     values ('d', $1::int8::oid, $2, $3, $4, $5::text::pg_lsn)
     on conflict (sync_subid, sync_nspname, sync_relname) do update
       set sync_status = excluded.sync_status, sync_statuslsn = excluded.sync_statuslsn`,
    [
      subscriptionId,
      table.nspname,
      table.relname,
      LETTERS[table.state],
      formatLsn(table.lsn ?? 0n),
    ],
  );
}
