/**
 * Row statements that detect and resolve conflicts on the server, in the
 * statement that applies the change: no extra round trip per row. Each one
 * looks up the local row in the statement's snapshot (its commit timestamp
 * and origin), applies the change only where `spock._remote_wins()` says the
 * remote side wins (evaluated on the row version actually changed), records
 * the conflict in `spock.resolutions` when asked, and returns one row per
 * conflict — none in the common case. Parameters $1–$3 are the remote commit
 * timestamp, xid and commit LSN; row values follow from $4, as text cast to
 * the local column types.
 *
 *   with l as (local row: tableoid, ctid, xmin, commit ts, origin)
 *        u as (update … where key and spock._remote_wins(t.xmin, …) returning 1)
 *        e as (the conflict seen from l and u: type, resolution, recorded)
 *        r as (insert into spock.resolutions … from e where recorded)
 *   select … from e
 */
import { quoteIdent, quoteLiteral } from "../../pg/mod.ts";
import type { LocalRelation, MappedColumn, UniqueIndex } from "../relation_map.ts";
import type { ConflictContext, ConflictType } from "./settings.ts";

/** Parameters before the row values: remote commit ts, xid, commit LSN. */
export const META_PARAMS = 3;

const REMOTE_TS = "$1::text::timestamptz";
/**
 * Opens every statement's WITH list: names the meta parameters so their type
 * is known even where a statement does not use them.
 */
const META =
  "with spock_meta (commit_ts, xid, commit_lsn) as (select $1::text, $2::text, $3::text), ";

/** `$n::text::type`: a text parameter run through the local type's input function. */
export function param(index: number, column: MappedColumn): string {
  return `$${index}::text::${column.localType}`;
}

/**
 * The row filter as a condition on the row the provider sent: `sent` columns
 * are the statement's parameters from `offset + 1` on, every other column is
 * NULL (so a filter on a column the provider did not send is not true, as in
 * Spock, which sees only the key of a deleted row). Empty without a filter.
 */
export function passesFilter(
  relation: LocalRelation,
  sent: MappedColumn[],
  offset: number,
): string {
  if (relation.rowFilter === undefined) return "";
  const row = relation.columns.map((column) => {
    const index = sent.indexOf(column);
    const value = index < 0 ? `null::${column.localType}` : param(offset + index + 1, column);
    return `${value} as ${quoteIdent(column.name)}`;
  });
  return ` and exists (select from (select ${row.join(", ")}) as v where ${relation.rowFilter})`;
}

function conditions(
  relation: LocalRelation,
  where: MappedColumn[],
  offset: number,
  alias: string,
): string {
  const operator = relation.locateByAllColumns ? "is not distinct from" : "=";
  return where.map((column, i) =>
    `${alias}.${quoteIdent(column.name)} ${operator} ${param(offset + i + 1, column)}`
  ).join(" and ");
}

/**
 * The WHERE clause locating one row. Located by every column (REPLICA
 * IDENTITY FULL without a key) several local rows may match; like PG's
 * worker, change only the first one found.
 */
function locate(relation: LocalRelation, where: MappedColumn[], offset: number): string {
  const match = conditions(relation, where, offset, "t");
  if (!relation.locateByAllColumns) return match;
  return `(t.tableoid, t.ctid) = (select t.tableoid, t.ctid from ${relation.qualifiedName} as t ` +
    `where ${match} limit 1)`;
}

function remoteWins(
  relation: LocalRelation,
  context: ConflictContext,
  xid: string,
  type: ConflictType,
): string {
  return `spock._remote_wins(${xid}, ${REMOTE_TS}, ${context.sessionOrigin}, ` +
    `${context.remoteNodeId}, ${quoteLiteral(context.settings.resolution)}, ${
      quoteLiteral(type)
    }, ` +
    `${quoteLiteral(relation.remoteName)})`;
}

const LOCAL_ROW_COLUMNS = "t.tableoid as spock_toid, t.ctid as spock_tid, t.xmin as spock_xid, " +
  "c.timestamp as spock_ts, c.roident as spock_origin";
const COMMIT_TS_JOIN = "left join lateral pg_catalog.pg_xact_commit_timestamp_origin(t.xmin) " +
  "as c on true";

/** Whether the local row is a conflict at all: it has a commit timestamp and another origin. */
function otherOrigin(context: ConflictContext): string {
  return `(l.spock_ts is not null and l.spock_origin <> ${context.sessionOrigin})`;
}

/** The tail shared by every statement: record what `e` says, return it. */
function reportTail(relation: LocalRelation, context: ConflictContext, remoteJson: string): string {
  const report = "select e.spock_type as conflict_type, e.spock_resolution as resolution, " +
    "e.spock_index as index_name, e.spock_recorded as recorded, " +
    "e.spock_xid::text as local_xid, e.spock_ts::text as local_ts, " +
    "spock._origin_node(e.spock_origin)::int8 as local_node from e";
  if (!context.settings.saveResolutions) return report;
  return `, r as (insert into spock.resolutions (node_name, log_time, relname, idxname, ` +
    `conflict_type, conflict_resolution, local_origin, local_tuple, local_xid, local_timestamp, ` +
    `remote_origin, remote_tuple, remote_xid, remote_timestamp, remote_lsn) ` +
    `select ${quoteLiteral(context.localNodeName)}, now(), ${
      quoteLiteral(relation.qualifiedName)
    }, ` +
    `e.spock_index, e.spock_type, e.spock_resolution, spock._origin_node(e.spock_origin)::int8::int, ` +
    `(select row_to_json(x.*)::text from ${relation.qualifiedName} as x ` +
    `where x.tableoid = e.spock_toid and x.ctid = e.spock_tid), e.spock_xid, e.spock_ts, ` +
    `${context.remoteNodeId}, ${remoteJson}, $2::text::xid, ${REMOTE_TS}, $3::text::pg_lsn ` +
    `from e where e.spock_recorded) ${report}`;
}

function rowJson(columns: MappedColumn[], offset: number): string {
  if (columns.length === 0) return "null::text";
  const fields = columns.map((column, i) =>
    `${param(offset + i + 1, column)} as ${quoteIdent(column.name)}`
  );
  return `(select row_to_json(v.*)::text from (select ${fields.join(", ")}) as v)`;
}

function indexLiteral(index: UniqueIndex | undefined): string {
  return index === undefined ? "null::text" : quoteLiteral(index.name);
}

/**
 * A multi-row INSERT of `rows` rows. With a usable key index, a row whose key
 * exists is `insert_exists`: it becomes an update of the existing row where
 * the remote side wins (delta columns always add their value). Without one,
 * a plain INSERT (Spock never turns key-less inserts into upserts).
 */
export function insertStatement(
  relation: LocalRelation,
  context: ConflictContext,
  rows: number,
): string {
  const names = relation.columns.map((column) => quoteIdent(column.name)).join(", ");
  const tuples = Array.from({ length: rows }, (_, row) => {
    const base = META_PARAMS + row * relation.columns.length;
    return `(${relation.columns.map((column, i) => param(base + i + 1, column)).join(", ")})`;
  });
  const values = `values ${tuples.join(", ")}`;
  const filter = relation.rowFilter === undefined ? "" : ` where ${relation.rowFilter}`;
  const key = relation.keyIndex;
  if (key === undefined) {
    return `${
      META.slice(0, -2)
    } insert into ${relation.qualifiedName} (${names}) select * from (${values}) ` +
      `as v (${names})${filter}`;
  }
  const keyNames = key.columns.map((column) => quoteIdent(column.name));
  const join = key.columns.map((column) =>
    `t.${quoteIdent(column.name)} = v.${quoteIdent(column.name)}`
  ).join(" and ");
  const delta = relation.deltaColumns.length > 0;
  const assignments = relation.columns.map((column) => {
    const name = quoteIdent(column.name);
    if (relation.deltaColumns.includes(column)) return `${name} = t.${name} + excluded.${name}`;
    if (delta) {
      return `${name} = case when ${
        remoteWins(relation, context, "t.xmin", "insert_exists")
      } then excluded.${name} else t.${name} end`;
    }
    return `${name} = excluded.${name}`;
  });
  const upsert = `on conflict (${keyNames.join(", ")}) do update set ${assignments.join(", ")}` +
    (delta ? "" : ` where ${remoteWins(relation, context, "t.xmin", "insert_exists")}`);
  const applied = delta
    ? remoteWins(relation, context, "l.spock_xid", "insert_exists")
    : `exists (select from i where (${keyNames.map((name) => `i.${name}`).join(", ")}) = (${
      keyNames.map((name) => `l.${name}`).join(", ")
    }))`;
  return `${META}v (${names}) as (${values}), ` +
    `vf as (select * from v${filter}), ` +
    // LATERAL: one index probe per row; a join could become a scan of the table per batch.
    `l as (select x.*, ${keyNames.map((name) => `v.${name}`).join(", ")}, ` +
    `row_to_json(v.*)::text as spock_remote_row from vf as v cross join lateral ` +
    `(select ${LOCAL_ROW_COLUMNS} from ${relation.qualifiedName} as t ${COMMIT_TS_JOIN} ` +
    `where ${join} limit 1) as x), ` +
    `i as (insert into ${relation.qualifiedName} as t (${names}) select * from vf ${upsert} ` +
    `returning ${keyNames.map((name) => `t.${name}`).join(", ")}), ` +
    `e as (select l.*, 'insert_exists'::text as spock_type, ` +
    `case when ${applied} then 'apply_remote' else 'keep_local' end as spock_resolution, ` +
    `${indexLiteral(key)} as spock_index, true as spock_recorded from l)` +
    reportTail(relation, context, "e.spock_remote_row");
}

/**
 * A one-row INSERT under `check_all_uc_indexes`: the first local row matching
 * the key, then each other unique index in OID order, is `insert_exists` on
 * that index and is updated (its key may change) where the remote side wins;
 * without a match the row is inserted.
 */
export function insertAnyUniqueStatement(
  relation: LocalRelation,
  context: ConflictContext,
): string {
  const names = relation.columns.map((column) => quoteIdent(column.name)).join(", ");
  const values = relation.columns.map((column, i) => param(META_PARAMS + i + 1, column));
  const filter = relation.rowFilter === undefined ? "" : ` where ${relation.rowFilter}`;
  const indexes = [relation.keyIndex!, ...relation.uniqueIndexes];
  const probes = indexes.map((index, order) => {
    const join = index.columns.map((column) =>
      `t.${quoteIdent(column.name)} = v.${quoteIdent(column.name)}`
    ).join(" and ");
    return `(select ${order} as ord, ${
      quoteLiteral(index.name)
    } as spock_index, t.tableoid as spock_toid, ` +
      `t.ctid as spock_tid, t.xmin as spock_xid from vf as v join ${relation.qualifiedName} as t ` +
      `on ${join} limit 1)`;
  });
  const assignments = relation.columns.map((column) => {
    const name = quoteIdent(column.name);
    if (relation.deltaColumns.includes(column)) return `${name} = t.${name} + v.${name}`;
    return `${name} = v.${name}`;
  });
  return `${META}v (${names}) as (values (${values.join(", ")})), ` +
    `vf as (select * from v${filter}), ` +
    `hit as (select * from (${probes.join(" union all ")}) as h order by h.ord limit 1), ` +
    `l as (select h.spock_toid, h.spock_tid, h.spock_xid, c.timestamp as spock_ts, ` +
    `c.roident as spock_origin, h.spock_index, (select row_to_json(v.*)::text from vf as v) ` +
    `as spock_remote_row from hit as h left join lateral ` +
    `pg_catalog.pg_xact_commit_timestamp_origin(h.spock_xid) as c on true), ` +
    `u as (update ${relation.qualifiedName} as t set ${assignments.join(", ")} from vf as v, ` +
    `hit as h where t.tableoid = h.spock_toid and t.ctid = h.spock_tid and ${
      remoteWins(relation, context, "t.xmin", "insert_exists")
    } returning 1), ` +
    `i as (insert into ${relation.qualifiedName} (${names}) select * from vf ` +
    `where not exists (select from hit) returning 1), ` +
    `e as (select l.spock_toid, l.spock_tid, l.spock_xid, l.spock_ts, l.spock_origin, l.spock_remote_row, ` +
    `'insert_exists'::text as spock_type, ` +
    `case when exists (select from u) then 'apply_remote' else 'keep_local' end as spock_resolution, ` +
    `l.spock_index, true as spock_recorded from l)` +
    reportTail(relation, context, "e.spock_remote_row");
}

/**
 * An UPDATE setting the `set` columns (parameters after the meta ones), the
 * row located by `where` (parameters after those), delta columns' old values
 * last. The row is changed where the remote side wins (`update_origin_differs`
 * otherwise keeps it, recorded); delta columns always get local + (new − old).
 * A missing row is `update_missing`: an error (exception handling) or, with
 * `update_missing: insert`, an insert of the sent columns.
 */
export function updateStatement(
  relation: LocalRelation,
  context: ConflictContext,
  set: MappedColumn[],
  where: MappedColumn[],
): string {
  const keyOffset = META_PARAMS + set.length;
  const deltaOffset = keyOffset + where.length;
  const deltas = relation.deltaColumns.filter((column) => set.includes(column));
  const filter = passesFilter(relation, set, META_PARAMS);
  const wins = remoteWins(relation, context, "t.xmin", "update_origin_differs");
  const assignments = set.map((column, i) => {
    const name = quoteIdent(column.name);
    const value = param(META_PARAMS + i + 1, column);
    const delta = deltas.indexOf(column);
    if (delta >= 0) {
      const old = param(deltaOffset + delta + 1, column);
      return `${name} = coalesce(t.${name} + (${value} - ${old}), ${value})`;
    }
    if (deltas.length > 0) return `${name} = case when ${wins} then ${value} else t.${name} end`;
    return `${name} = ${value}`;
  });
  const located = locate(relation, where, keyOffset);
  const insertMissing = context.settings.updateMissing === "insert";
  const missing = insertMissing
    ? "'apply_remote'"
    : `case when spock._apply_conflict_error('update_missing', ${
      quoteLiteral(relation.remoteName)
    }) then 'error' end`;
  const applied = deltas.length > 0
    ? remoteWins(relation, context, "l.spock_xid", "update_origin_differs")
    : "exists (select from u)";
  const sentNames = set.map((column) => quoteIdent(column.name)).join(", ");
  const sentValues = set.map((column, i) => param(META_PARAMS + i + 1, column)).join(", ");
  return `${META}l as (select ${LOCAL_ROW_COLUMNS} from ${relation.qualifiedName} as t ` +
    `${COMMIT_TS_JOIN} where ${located} limit 1), ` +
    (insertMissing
      ? `i as (insert into ${relation.qualifiedName} (${sentNames}) select ${sentValues} ` +
        `where not exists (select from l)${filter} returning 1), `
      : "") +
    `u as (update ${relation.qualifiedName} as t set ${assignments.join(", ")} where ${located}` +
    `${deltas.length > 0 ? "" : ` and ${wins}`}${filter} returning 1), ` +
    `e as (select l.*, case when l.spock_tid is null then 'update_missing' ` +
    `else 'update_origin_differs' end::text as spock_type, ` +
    `case when l.spock_tid is null then ${missing} when ${applied} then 'apply_remote' ` +
    `else 'keep_local' end as spock_resolution, ${
      indexLiteral(relation.keyIndex)
    } as spock_index, ` +
    `(l.spock_tid is null or not ${applied}) as spock_recorded ` +
    `from (select) as one left join l on true where (l.spock_tid is null or ${
      otherOrigin(context)
    })` +
    `${filter})` +
    reportTail(relation, context, rowJson(set, META_PARAMS));
}

/**
 * A DELETE locating the row by `where` (parameters after the meta ones). The
 * row is deleted where the remote side wins (`delete_origin_differs`), else
 * kept (`delete_exists`, recorded); a missing row is `delete_missing`
 * (skipped, recorded).
 */
export function deleteStatement(
  relation: LocalRelation,
  context: ConflictContext,
  where: MappedColumn[],
): string {
  const filter = passesFilter(relation, where, META_PARAMS);
  const located = locate(relation, where, META_PARAMS);
  return `${META}l as (select ${LOCAL_ROW_COLUMNS} from ${relation.qualifiedName} as t ` +
    `${COMMIT_TS_JOIN} where ${located} limit 1), ` +
    `d as (delete from ${relation.qualifiedName} as t where ${located} and ${
      remoteWins(relation, context, "t.xmin", "delete_origin_differs")
    }${filter} returning 1), ` +
    `e as (select l.*, case when l.spock_tid is null then 'delete_missing' ` +
    `when exists (select from d) then 'delete_origin_differs' else 'delete_exists' end::text ` +
    `as spock_type, case when l.spock_tid is null or not exists (select from d) then 'skip' ` +
    `else 'apply_remote' end as spock_resolution, ${
      indexLiteral(relation.keyIndex)
    } as spock_index, ` +
    `(l.spock_tid is null or not exists (select from d)) as spock_recorded ` +
    `from (select) as one left join l on true where (l.spock_tid is null or ${
      otherOrigin(context)
    })` +
    `${filter})` +
    reportTail(relation, context, rowJson(where, META_PARAMS));
}

/**
 * The local row located by `where` (parameters from $1): its JSON image,
 * commit timestamp and writing node, for `spock.exception_log`.
 */
export function localRowStatement(relation: LocalRelation, where: MappedColumn[]): string {
  return `select row_to_json(t.*)::text as tup, c.timestamp::text as ts, ` +
    `spock._origin_node(c.roident)::int8::text as origin from ${relation.qualifiedName} as t ` +
    `${COMMIT_TS_JOIN} where ${locate(relation, where, 0)} limit 1`;
}
