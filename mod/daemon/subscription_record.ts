/**
 * What the daemon needs to know about the subscriptions of a served node, read
 * from its `spock` catalog in one query: provider DSN and node ids, slot,
 * sets, forward origins, apply delay, skip LSN and sync state. Changing any
 * of it restarts the subscription's worker (see {@link subscriptionFingerprint}).
 */
import type postgres from "postgres";
import type { ConflictResolution } from "../apply/mod.ts";
import { type Lsn, parseLsn } from "../pg/mod.ts";
import { type SyncState, syncStateOfLetter } from "../sync/mod.ts";

/** One subscription whose target is the local node. */
export interface SubscriptionRecord {
  id: number;
  name: string;
  enabled: boolean;
  slotName: string;
  /** Replication set names (Spock's default when the row holds none). */
  replicationSets: string[];
  /** `[]` forwards only the provider's own changes; `["all"]` forwards everything. */
  forwardOrigins: string[];
  applyDelayMs: number;
  /** A remote commit LSN whose transaction must be skipped, or 0. */
  skipLsn: Lsn;
  providerNodeId: number;
  providerNodeName: string;
  providerDsn: string;
  localNodeId: number;
  /** `i` (nothing), `s` (structure), `d` (data), `f` (both): what initial sync does. */
  syncKind: string;
  /** The subscription's own sync state (init until initialized, then catchup and ready). */
  syncState: SyncState;
  skipSchemas: string[];
  /** Tables waiting for a sync of their own (`sub_resync_table`, `sub_alter_sync`). */
  pendingTables: number;
  /** Engine settings overridden for this subscription (`sub_alter_options`). */
  options: SubscriptionOptions;
}

/** The per-subscription overrides `sub_alter_options` stores in `spock._sub_option`. */
export interface SubscriptionOptions {
  conflict_resolution?: ConflictResolution;
  update_missing?: "error" | "insert";
}

const DEFAULT_SETS = ["default", "default_insert_only", "ddl_sql"];

const SUBSCRIPTIONS_SQL = `
select s.sub_id::int8 as id, s.sub_name::text as name, s.sub_enabled as enabled,
  s.sub_slot_name::text as slot_name, s.sub_replication_sets as sets,
  s.sub_forward_origins as forward_origins,
  (extract(epoch from s.sub_apply_delay) * 1000)::float8 as apply_delay_ms,
  s.sub_skip_lsn::text as skip_lsn, s.sub_origin::int8 as provider_node_id,
  o.node_name::text as provider_node_name, i.if_dsn as provider_dsn,
  s.sub_target::int8 as local_node_id, coalesce(y.sync_kind::text, 'i') as sync_kind,
  coalesce(y.sync_status::text, 'i') as sync_status, s.sub_skip_schema as skip_schemas,
  (select count(*) from spock.local_sync_status t where t.sync_subid = s.sub_id
     and t.sync_relname is not null and t.sync_status = 'i')::int as pending_tables,
  coalesce((select o.options from spock._sub_option o where o.sub_id = s.sub_id), '{}')
    as options
from spock.subscription s
join spock.local_node l on l.node_id = s.sub_target
join spock.node o on o.node_id = s.sub_origin
join spock.node_interface i on i.if_id = s.sub_origin_if
left join spock.local_sync_status y
  on y.sync_subid = s.sub_id and y.sync_nspname is null and y.sync_relname is null
order by s.sub_name`;

/** Every subscription of the local node (none without a local node; throws without a catalog). */
export async function readSubscriptions(
  sql: postgres.Sql | postgres.ReservedSql,
): Promise<SubscriptionRecord[]> {
  const rows = await sql.unsafe(SUBSCRIPTIONS_SQL);
  return rows.map((row) => ({
    id: Number(row.id),
    name: row.name,
    enabled: row.enabled,
    slotName: row.slot_name,
    replicationSets: row.sets ?? DEFAULT_SETS,
    forwardOrigins: row.forward_origins ?? [],
    applyDelayMs: Math.max(0, Math.round(Number(row.apply_delay_ms))),
    skipLsn: parseLsn(row.skip_lsn),
    providerNodeId: Number(row.provider_node_id),
    providerNodeName: row.provider_node_name,
    providerDsn: row.provider_dsn,
    localNodeId: Number(row.local_node_id),
    syncKind: row.sync_kind,
    syncState: syncStateOfLetter(row.sync_status),
    skipSchemas: row.skip_schemas ?? [],
    pendingTables: row.pending_tables,
    options: row.options,
  }));
}

/**
 * The settings whose change needs a new worker: everything the stream was
 * started with. The sync states and the skip LSN are left out: the worker
 * itself moves and clears them.
 */
export function subscriptionFingerprint(record: SubscriptionRecord): string {
  return JSON.stringify([
    record.enabled,
    record.slotName,
    record.replicationSets,
    record.forwardOrigins,
    record.applyDelayMs,
    record.providerDsn,
    record.providerNodeId,
    record.localNodeId,
    record.options,
  ]);
}
