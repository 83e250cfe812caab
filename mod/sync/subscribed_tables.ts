/**
 * Which tables a subscription's replication sets hold on the provider, with
 * the sets' column lists (unioned) and row filters (to be ANDed), read from
 * the provider's catalog — inside the slot's snapshot for the initial copy.
 */
import type postgres from "postgres";
import type { RowFilterDocument } from "../apply/mod.ts";

/** One table of the subscribed replication sets, as the provider's catalog describes it. */
export interface TableToCopy {
  nspname: string;
  relname: string;
  /** Columns to copy (the sets' column lists, unioned as Spock does) or null for all columns. */
  columns: string[] | null;
  /** Row filter expressions of the sets that have one (text, already validated by the provider's catalog). */
  rowFilters: string[];
  /** The table's size on the provider (a partitioned table's: its partitions'), to copy the largest first. */
  sizeBytes?: number;
}

/** A provider session able to run catalog queries: a client, a reserved session or a transaction. */
export type ProviderSql = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

/**
 * Members of the sets, one row per table. Partitions are copied through their
 * partitioned parent: a partition is skipped when one of its ancestors is in
 * the sets too (a partition's own row filter is then ignored by the copy).
 */
const SUBSCRIBED_TABLES_SQL = `
WITH members AS (
  SELECT r.set_reloid::oid AS reloid, r.set_att_list, r.set_row_filter, s.set_name
  FROM spock.replication_set_table r
  JOIN spock.replication_set s ON s.set_id = r.set_id
  JOIN spock.local_node l ON l.node_id = s.set_nodeid
  WHERE s.set_name::text = ANY ($1::text[])
)
SELECT n.nspname::text AS nspname, c.relname::text AS relname,
  CASE WHEN bool_and(m.set_att_list IS NULL) THEN NULL ELSE
    (SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
     FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname::text IN (SELECT unnest(m2.set_att_list) FROM members m2
                               WHERE m2.reloid = c.oid))
  END AS columns,
  coalesce(array_agg(m.set_row_filter ORDER BY m.set_name)
    FILTER (WHERE m.set_row_filter IS NOT NULL), '{}') AS row_filters,
  CASE WHEN c.relkind = 'p' THEN
    (SELECT coalesce(sum(pg_catalog.pg_relation_size(t.relid)), 0)
     FROM pg_catalog.pg_partition_tree(c.oid) t)
  ELSE pg_catalog.pg_relation_size(c.oid) END::int8 AS size_bytes
FROM members m
JOIN pg_catalog.pg_class c ON c.oid = m.reloid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT (c.relispartition AND EXISTS (
    SELECT 1 FROM pg_catalog.pg_partition_ancestors(c.oid) p
    JOIN members pm ON pm.reloid = p.relid
    WHERE p.relid <> c.oid))
GROUP BY c.oid, n.nspname, c.relname
ORDER BY n.nspname, c.relname`;

/**
 * Reads from the provider's catalog which tables the replication sets
 * `setNames` of its local node hold, with Spock's column list for several
 * sets (the union of their lists: a set without one does not widen it; null
 * when no set has one) and every set's row filter.
 * Ordinary tables and partitioned parents only; partitions come through their
 * parent. Unknown set names contribute nothing. Run it inside the transaction
 * that imported the slot's snapshot to see the sets as of the slot.
 */
export async function listSubscribedTables(
  provider: ProviderSql,
  setNames: string[],
): Promise<TableToCopy[]> {
  const rows = await provider.unsafe(SUBSCRIBED_TABLES_SQL, [setNames]);
  return rows.map((row) => ({
    nspname: String(row.nspname),
    relname: String(row.relname),
    columns: row.columns === null ? null : [...(row.columns as string[])],
    rowFilters: [...(row.row_filters as string[])],
    sizeBytes: Number(row.size_bytes),
  }));
}

const ROW_FILTERS_SQL = `
SELECT n.nspname::text AS nspname, c.relname::text AS relname, s.set_name::text AS set_name,
  r.set_row_filter AS row_filter, r.set_att_list AS columns
FROM spock.replication_set_table r
JOIN spock.replication_set s ON s.set_id = r.set_id
JOIN spock.local_node l ON l.node_id = s.set_nodeid
JOIN pg_catalog.pg_class c ON c.oid = r.set_reloid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE EXISTS (SELECT 1 FROM spock.replication_set_table f
              WHERE f.set_reloid = r.set_reloid AND f.set_row_filter IS NOT NULL)
ORDER BY 1, 2, 3`;

/**
 * The memberships of the provider's tables that have a row filter in some
 * set, in every set of its node (partitions too, as they are streamed under
 * their own names): the state a subscription's stream starts from. Run it in
 * the slot's snapshot.
 */
export async function listRowFilters(provider: ProviderSql): Promise<RowFilterDocument> {
  const document: RowFilterDocument = {};
  for (const row of await provider.unsafe(ROW_FILTERS_SQL)) {
    const tables = document[row.nspname] ??= {};
    (tables[row.relname] ??= {})[row.set_name] = {
      row_filter: row.row_filter ?? null,
      columns: row.columns === null ? null : [...row.columns],
    };
  }
  return document;
}
