/**
 * What one node's catalog says about its replication, read for `spock status`
 * and for the daemon's metrics and health endpoints: its subscriptions with
 * status, lag and last error (spock.sub_show_status, spock.lag_tracker), the
 * apply counters per subscription and table (spock.channel_table_stats), the
 * exceptions logged per subscription and the WAL its providers' slots retain.
 * Reads only; the catalog views own what the numbers mean.
 */
import type { CatalogSql } from "../catalog/mod.ts";
import { CONFLICT_TYPES } from "../apply/mod.ts";

/** One row of a status query, as postgres.js returns it. */
export type StatusRow = Record<string, unknown>;

/** A node's subscriptions and apply counters (`spock status --json`). */
export interface NodeStatus {
  node: string | null;
  subscriptions: StatusRow[];
  tables: StatusRow[];
}

/** The exceptions logged per subscription and the slots subscribers stream from. */
export interface NodeCounts {
  exceptions: Array<{ subscription: string; exceptions: number }>;
  slots: Array<{ slot: string; active: boolean; retainedBytes: number }>;
}

const NODE_QUERY = `
  SELECT n.node_name::text AS node FROM spock.local_node l JOIN spock.node n USING (node_id)`;

/**
 * lag_tracker has one row per (provider, receiver) node pair. A subscription
 * is stopped by an error when its worker recorded one it does not retry
 * (spock._sub_error.retry_at NULL): an operator must act.
 */
const SUBSCRIPTIONS_QUERY = `
  SELECT s.subscription_name AS subscription, s.status, s.provider_node AS provider,
    extract(epoch FROM l.replication_lag)::float8 AS lag_seconds,
    l.replication_lag_bytes::float8 AS lag_bytes, s.last_error, s.last_error_at,
    s.last_error_lsn::text, s.next_retry_at,
    coalesce(e.sub_id IS NOT NULL AND e.retry_at IS NULL, false) AS stopped_by_error
  FROM spock.sub_show_status() s
  JOIN spock.subscription sub ON sub.sub_name = s.subscription_name
  LEFT JOIN spock._sub_error e ON e.sub_id = sub.sub_id
  LEFT JOIN spock.lag_tracker l ON l.origin_name = s.provider_node
    AND l.receiver_name = (SELECT n.node_name FROM spock.local_node ln
                           JOIN spock.node n ON n.node_id = ln.node_id)
  ORDER BY s.subscription_name`;

const TABLES_QUERY = `
  SELECT sub_name::text AS subscription, table_name AS table, n_tup_ins::float8 AS inserts,
    n_tup_upd::float8 AS updates, n_tup_del::float8 AS deletes, n_dca::float8 AS delta_applied,
    n_discarded::float8 AS discarded, n_conflict::float8 AS conflicts,
    ${CONFLICT_TYPES.map((type) => `confl_${type}::float8 AS ${type}`).join(", ")}
  FROM spock.channel_table_stats
  ORDER BY sub_name, table_name`;

/** spock.exception_log names the provider node; each subscription has one. */
const EXCEPTIONS_QUERY = `
  SELECT s.sub_name::text AS subscription, count(e.remote_origin)::float8 AS exceptions
  FROM spock.subscription s LEFT JOIN spock.exception_log e ON e.remote_origin = s.sub_origin
  GROUP BY s.sub_name ORDER BY 1`;

/** The slots of this database that spock's subscribers stream from (`spk_…`). */
const SLOTS_QUERY = `
  SELECT slot_name::text AS slot, active,
    coalesce(pg_catalog.pg_current_wal_lsn() - restart_lsn, 0)::float8 AS retained_bytes
  FROM pg_catalog.pg_replication_slots
  WHERE database = current_database() AND slot_type = 'logical' AND slot_name LIKE 'spk\\_%'
  ORDER BY 1`;

/** Reads a node's subscriptions and apply counters (conflicts by type in `conflicts_by_type`). */
export async function readNodeStatus(sql: CatalogSql): Promise<NodeStatus> {
  const [node] = await sql.unsafe(NODE_QUERY);
  const subscriptions = [...await sql.unsafe(SUBSCRIPTIONS_QUERY)] as StatusRow[];
  const tables = ([...await sql.unsafe(TABLES_QUERY)] as StatusRow[]).map((row) => {
    const conflictsByType = Object.fromEntries(CONFLICT_TYPES.map((type) => [type, row[type]]));
    const rest = Object.fromEntries(
      Object.entries(row).filter(([key]) => !(CONFLICT_TYPES as readonly string[]).includes(key)),
    );
    return { ...rest, conflicts_by_type: conflictsByType };
  });
  return { node: node?.node ?? null, subscriptions, tables };
}

/** Reads the exceptions logged per subscription and the WAL each `spk_…` slot retains. */
export async function readNodeCounts(sql: CatalogSql): Promise<NodeCounts> {
  const exceptions = (await sql.unsafe(EXCEPTIONS_QUERY)).map((row) => ({
    subscription: row.subscription as string,
    exceptions: row.exceptions as number,
  }));
  const slots = (await sql.unsafe(SLOTS_QUERY)).map((row) => ({
    slot: row.slot as string,
    active: row.active as boolean,
    retainedBytes: row.retained_bytes as number,
  }));
  return { exceptions, slots };
}
