/**
 * Spock's sync states in `spock.local_sync_status`: one row per subscription
 * (nspname and relname NULL) and one per table synchronized on its own. The
 * letters are Spock's: i init, s structure, d data, c constraints, u catchup,
 * y synchronized (at `sync_statuslsn`), r ready. Reading them for the
 * daemon and moving them is all this file does.
 */
import type postgres from "postgres";
import { formatLsn, type Lsn, parseLsn } from "../pg/mod.ts";

/** A sync status letter. */
export type SyncStatusLetter = "i" | "s" | "d" | "c" | "w" | "u" | "y" | "r";

/** The sync state of one table of a subscription. */
export interface TableSyncState {
  nspname: string;
  relname: string;
  status: SyncStatusLetter;
  /** For `y`: the provider LSN from which the stream carries this table's changes. */
  statusLsn: Lsn;
}

type Sql = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

/** Moves the subscription's own sync row to `status` (at `lsn`). */
export async function setSubscriptionSyncStatus(
  sql: Sql,
  subscriptionId: number,
  options: { status: SyncStatusLetter; lsn?: Lsn },
): Promise<void> {
  await sql.unsafe(
    `update spock.local_sync_status set sync_status = $2, sync_statuslsn = $3::text::pg_lsn
     where sync_subid = $1::int8::oid and sync_nspname is null and sync_relname is null`,
    [subscriptionId, options.status, formatLsn(options.lsn ?? 0n)],
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
    status: row.status as SyncStatusLetter,
    statusLsn: parseLsn(row.lsn),
  }));
}

/** Creates or moves the sync row of one table. */
export async function setTableSyncStatus(
  sql: Sql,
  subscriptionId: number,
  table: { nspname: string; relname: string; status: SyncStatusLetter; lsn?: Lsn },
): Promise<void> {
  await sql.unsafe(
    `insert into spock.local_sync_status
       (sync_kind, sync_subid, sync_nspname, sync_relname, sync_status, sync_statuslsn)
     values ('d', $1::int8::oid, $2, $3, $4, $5::text::pg_lsn)
     on conflict (sync_subid, sync_nspname, sync_relname) do update
       set sync_status = excluded.sync_status, sync_statuslsn = excluded.sync_statuslsn`,
    [subscriptionId, table.nspname, table.relname, table.status, formatLsn(table.lsn ?? 0n)],
  );
}
