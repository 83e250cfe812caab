/**
 * Row statements that detect and resolve conflicts on the server, in the
 * statement that applies the change: no extra round trip per row, and a
 * plain statement when there is no conflict. An UPDATE or DELETE changes the
 * row only where the resolution lets the remote side win, decided on the row
 * version it changes (`pg_xact_commit_timestamp_origin(xmin)`; a concurrent
 * local change is re-read first). Only when it changed nothing does it call
 * `spock._row_not_changed()`, which finds out why (missing row, local row
 * kept), applies `update_missing`, records the conflict and returns it:
 *
 *   with u as (update … where key = $k and <remote wins over t.xmin> returning 1)
 *   select r.* from (select) as one cross join lateral spock._row_not_changed(…) as r
 *   where not exists (select from u)            -- a one-time filter: skipped when u changed the row
 *
 * An INSERT is an upsert on the key whose conflicting rows alone are looked
 * up and reported. Deletes leave tombstones (`spock._tombstone`) so that an
 * older change arriving later does not bring a deleted row back. Parameters
 * $1–$3 are the remote commit timestamp, xid and commit LSN; row values follow
 * from $4, as text cast to the local column types. Every statement returns
 * one row per conflict, none in the common case.
 *
 * Each statement also comes in a fast form, for transactions applied
 * optimistically: no conflict handling at all, only the resolution's
 * decision. A fast UPDATE or DELETE that changed no row fails (SQLSTATE
 * SP003, from `spock._check_applied()`); a fast INSERT fails on an existing
 * key. Either way the transaction is rolled back and applied again with the
 * full statements, so a conflict costs a second attempt and no conflict
 * costs nothing.
 */
import { quoteIdent, quoteLiteral } from "../../pg/mod.ts";
import type { LocalRelation, MappedColumn } from "../relation_map.ts";
import type { ConflictContext, ConflictType } from "./settings.ts";

/** Parameters before the row values: remote commit ts, xid, commit LSN. */
const META_PARAMS = 3;

const REMOTE_TS = "$1::text::timestamptz";
/**
 * Opens every statement's WITH list: names the meta parameters so their type
 * is known even where a statement does not use them.
 */
const META = "with spock_meta (commit_ts, xid, commit_lsn) as " +
  "(select $1::text, $2::text, $3::text), ";

/** {@link META} alone, before a statement that is not a WITH query. */
const META_ONLY = META.slice(0, -2);

/**
 * Ends a fast statement whose change is the CTE `name`: fails (SP003) when it
 * changed no row, which is a conflict to handle the careful way.
 */
function failUnchanged(name: string): string {
  return `select spock._check_applied(1) where not exists (select from ${name})`;
}

/** Whether a relation's changes may be applied by fast statements. */
export function fastApplicable(relation: LocalRelation): boolean {
  return relation.rowFilter === undefined && relation.deltaColumns.length === 0;
}

/** The columns a statement writes: those the provider sends, but the ones it sends only for a filter. */
function writtenColumns(relation: LocalRelation): MappedColumn[] {
  return relation.columns.filter((column) => column.written);
}

/** `$n::text::type`: a text parameter run through the local type's input function. */
function param(index: number, column: MappedColumn): string {
  return `$${index}::text::${column.localType}`;
}

/**
 * The row filter as a condition on the row the provider sent: `sent` columns
 * are the statement's parameters from `offset + 1` on; every other column is
 * `unsent(column)` (an UPDATE's unchanged TOAST value is the local row's) or
 * else NULL (so a filter on a column the provider did not send is not true,
 * as in Spock, which sees only the key of a deleted row). Empty without a
 * filter.
 */
function passesFilter(
  relation: LocalRelation,
  sent: MappedColumn[],
  offset: number,
  unsent?: (column: MappedColumn) => string,
): string {
  if (relation.rowFilter === undefined) return "";
  const row = relation.columns.map((column) => {
    const index = sent.indexOf(column);
    const value = index >= 0
      ? param(offset + index + 1, column)
      : unsent?.(column) ?? `null::${column.localType}`;
    return `${value} as ${quoteIdent(column.name)}`;
  });
  return ` and ${filterOver(relation, `select ${row.join(", ")}`)}`;
}

/**
 * The row filter over the row `select` builds: with the local table's
 * generated columns computed from it (the provider's filter sees them, and
 * pgoutput does not send them).
 */
function filterOver(relation: LocalRelation, select: string): string {
  if (relation.generated.length === 0) {
    return `exists (select from (${select}) as v where ${relation.rowFilter})`;
  }
  const generated = relation.generated.map(({ name, expression, localType }) =>
    `(${expression})::${localType} as ${quoteIdent(name)}`
  );
  return `exists (select from (select v.*, ${generated.join(", ")} from (${select}) as v) as v ` +
    `where ${relation.rowFilter})`;
}

/**
 * The row filter on the rows of a `values` list aliased `v` (INSERTs): the
 * condition as it stands, or over `v` with generated columns added.
 */
function insertFilter(relation: LocalRelation): string | undefined {
  if (relation.rowFilter === undefined) return undefined;
  if (relation.generated.length === 0) return relation.rowFilter;
  return filterOver(relation, "select v.*");
}

function conditions(relation: LocalRelation, where: MappedColumn[], offset: number): string {
  const operator = relation.locateByAllColumns ? "is not distinct from" : "=";
  return where.map((column, i) =>
    `t.${quoteIdent(column.name)} ${operator} ${param(offset + i + 1, column)}`
  ).join(" and ");
}

const COMMIT_TS_JOIN = "left join lateral pg_catalog.pg_xact_commit_timestamp_origin(t.xmin) " +
  "as c on true";

/**
 * Whether the remote change wins over a local row with commit time `ts` and
 * origin `origin`, as a SQL expression: the conflict rule, written only here
 * and inlined in every statement (the INSERT's upsert hands its verdict to
 * `spock._insert_exists()`). Not a conflict (the remote wins): no commit
 * timestamp (frozen row, written earlier in this transaction,
 * track_commit_timestamp off) or the same origin (stream order decides).
 * Otherwise the mode; equal timestamps go to the tiebreaker of the node that
 * wrote the local row against the remote node's (Spock 5.0's
 * `conflict_resolve_by_timestamp`). Under last-update-wins a newer remote
 * change wins whoever wrote the row, so the origin is read only when it is
 * not newer: one origin's changes to one row commit in time order.
 */
function remoteWinsSql(
  relation: LocalRelation,
  context: ConflictContext,
  local: { ts: string; origin: string },
  type: ConflictType,
): string {
  const same = `${local.origin} = ${context.sessionOrigin} or ${local.ts} is null`;
  const tiebreak = `spock._tiebreak_remote_wins(${local.origin}, ${context.remoteNodeId})`;
  switch (context.settings.resolution) {
    case "apply_remote":
      return "true";
    case "keep_local":
      return `(${same})`;
    case "error":
      return `(case when ${same} then true else spock._apply_conflict_error(${
        quoteLiteral(type)
      }, ${quoteLiteral(relation.remoteName)}) end)`;
    case "last_update_wins":
      return `(case when ${local.ts} is null or ${REMOTE_TS} > ${local.ts} then true ` +
        `when ${local.origin} = ${context.sessionOrigin} then true ` +
        `when ${REMOTE_TS} < ${local.ts} then false else ${tiebreak} end)`;
    case "first_update_wins":
      return `(case when ${same} then true when ${REMOTE_TS} < ${local.ts} then true ` +
        `when ${REMOTE_TS} > ${local.ts} then false else ${tiebreak} end)`;
  }
}

const LOCAL = { ts: "l.spock_ts", origin: "l.spock_origin" };
const SAME_ROW = "t.tableoid = l.spock_toid and t.ctid = l.spock_tid";

/**
 * {@link remoteWinsSql} on the row version `t` a statement changes: decided
 * on that version (a concurrent local change is re-read before the row is
 * changed), not on an earlier lookup. Under last-update-wins the commit time
 * and the origin are looked up each where the rule needs it (mostly the time
 * alone); under the other modes with one lookup of both.
 */
function targetWins(relation: LocalRelation, context: ConflictContext, type: ConflictType): string {
  if (context.settings.resolution === "last_update_wins") {
    return remoteWinsSql(relation, context, {
      ts: "pg_catalog.pg_xact_commit_timestamp(t.xmin)",
      origin: "(pg_catalog.pg_xact_commit_timestamp_origin(t.xmin)).roident",
    }, type);
  }
  const wins = remoteWinsSql(relation, context, { ts: "c.timestamp", origin: "c.roident" }, type);
  if (wins === "true") return wins;
  return `(select ${wins} from pg_catalog.pg_xact_commit_timestamp_origin(t.xmin) as c)`;
}

/**
 * The WHERE clause locating one row. Located by every column (REPLICA
 * IDENTITY FULL without a key) several local rows may match; like PG's
 * worker, change only the first one found.
 */
function locate(relation: LocalRelation, where: MappedColumn[], offset: number): string {
  const match = conditions(relation, where, offset);
  if (!relation.locateByAllColumns) return match;
  return `(t.tableoid, t.ctid) = (select t.tableoid, t.ctid from ${relation.qualifiedName} as t ` +
    `where ${match} limit 1)`;
}

/**
 * The tail of a statement whose conflict is the CTE `e`: returns it, and
 * records it with `spock._record_resolution()` when resolutions are saved
 * (the local row as it was, since the statement's own change is not visible
 * to it).
 */
function reportTail(relation: LocalRelation, context: ConflictContext, remoteJson: string): string {
  const [nspname, relname] = relation.remoteNameParts;
  const saved = !context.settings.saveResolutions ? "" : `, case when e.spock_recorded then ` +
    `spock._record_resolution(${quoteLiteral(context.localNodeName)}, ${quoteLiteral(nspname)}, ${
      quoteLiteral(relname)
    }, e.spock_index, e.spock_type, e.spock_resolution, ` +
    `e.spock_origin, (select row_to_json(x.*)::text from ${relation.qualifiedName} as x ` +
    `where x.tableoid = e.spock_toid and x.ctid = e.spock_tid), e.spock_xid, e.spock_ts, ` +
    `${context.remoteNodeId}, ${remoteJson}, $2::text::xid, ${REMOTE_TS}, $3::text::pg_lsn) ` +
    `end as saved`;
  return "select e.spock_type as conflict_type, e.spock_resolution as resolution, " +
    "e.spock_index as index_name, e.spock_recorded as recorded, " +
    "e.spock_xid::text as local_xid, e.spock_ts::text as local_ts, " +
    `spock._origin_node(e.spock_origin)::int8 as local_node${saved} from e`;
}

/** The tombstone key of a row: its key columns as JSON, as the delete trigger writes it. */
function tombstoneKey(columns: MappedColumn[], value: (column: MappedColumn) => string): string {
  return `jsonb_build_object(${
    columns.map((column) => `${quoteLiteral(column.name)}, ${value(column)}`).join(", ")
  })`;
}

/** `spock._remember_remote_deletes()` of the relation's `keys` (a `jsonb[]`) at the remote commit. */
function rememberDeletes(relation: LocalRelation, keys: string): string {
  const [nspname, relname] = relation.remoteNameParts;
  return `spock._remember_remote_deletes(${quoteLiteral(nspname)}, ${
    quoteLiteral(relname)
  }, ${keys}, ${REMOTE_TS})`;
}

function tombstoneTable(relation: LocalRelation): string {
  const [nspname, relname] = relation.remoteNameParts;
  return `s.nspname = ${quoteLiteral(nspname)} and s.relname = ${quoteLiteral(relname)}`;
}

/**
 * What the SQL functions of a row's conflict need, as JSON built per row from
 * `source` (`excluded` or `v`): evaluated only when they are called.
 */
function insertChange(relation: LocalRelation, context: ConflictContext, source: string): string {
  const written = writtenColumns(relation);
  const names = written.map((column) => quoteLiteral(column.name)).join(", ");
  const values = written.map((column) => `${source}.${quoteIdent(column.name)}::text`).join(", ");
  const fields = [
    ["relation", quoteLiteral(relation.remoteName)],
    ["index", quoteLiteral(relation.keyIndex!.name)],
    ["remote_node", String(context.remoteNodeId)],
    ["remote_ts", "$1::text"],
    ["remote_xid", "$2::text"],
    ["remote_lsn", "$3::text"],
    ["save", String(context.settings.saveResolutions)],
    ["node_name", quoteLiteral(context.localNodeName)],
    // Arrays, not jsonb_build_array(): a function takes at most 100 arguments.
    ["new_names", `to_jsonb(array[${names}]::text[])`],
    ["new_values", `to_jsonb(array[${values}]::text[])`],
  ];
  return `jsonb_build_object(${fields.map(([key, value]) => `'${key}', ${value}`).join(", ")})`;
}

/**
 * A multi-row INSERT of `rows` rows. With a usable key index it is an upsert:
 * a row whose key exists is `insert_exists`, decided and reported by
 * `spock._insert_exists()` (called for that row only) and turned into an
 * update of the existing row where the remote side wins (delta columns always
 * add their value); a row whose key was deleted after the remote commit is
 * skipped (the tombstone lookup runs only when the table has tombstones).
 * Conflicts come back as NOTICEs (SQLSTATE SP100). Without a key, a plain
 * INSERT (Spock never turns key-less inserts into upserts).
 */
export function insertStatement(
  relation: LocalRelation,
  context: ConflictContext,
  rows: number,
  fast = false,
): string {
  const names = relation.columns.map((column) => quoteIdent(column.name)).join(", ");
  const writtenNames = writtenColumns(relation).map((column) => quoteIdent(column.name));
  const written = writtenNames.join(", ");
  const picked = writtenNames.map((name) => `v.${name}`).join(", ");
  const tuples = Array.from({ length: rows }, (_, row) => {
    const base = META_PARAMS + row * relation.columns.length;
    return `(${relation.columns.map((column, i) => param(base + i + 1, column)).join(", ")})`;
  });
  const values = `values ${tuples.join(", ")}`;
  const filter = insertFilter(relation) ?? "true";
  const key = relation.keyIndex;
  if (key === undefined) {
    return `${META_ONLY} insert into ${relation.qualifiedName} (${written}) ` +
      `select ${picked} from (${values}) as v (${names}) where ${filter}`;
  }
  const regclass = `${quoteLiteral(relation.qualifiedName)}::regclass`;
  const keyNames = key.columns.map((column) => quoteIdent(column.name));
  const delta = relation.deltaColumns.length > 0;
  const decide = `spock._insert_exists(${regclass}, t.xmin, row_to_json(t.*)::text, ` +
    `${insertChange(relation, context, "excluded")}, ${
      targetWins(relation, context, "insert_exists")
    })`;
  const assignments = writtenColumns(relation).map((column) => {
    const name = quoteIdent(column.name);
    if (relation.deltaColumns.includes(column)) return `${name} = t.${name} + excluded.${name}`;
    if (delta) {
      return `${name} = case when ${
        targetWins(relation, context, "insert_exists")
      } then excluded.${name} else t.${name} end`;
    }
    return `${name} = excluded.${name}`;
  });
  const table = tombstoneTable(relation);
  const gone = `case when exists (select from spock._tombstone s where ${table}) then ` +
    `spock._insert_deleted_later(${regclass}, ${
      tombstoneKey(key.columns, (c) => `v.${quoteIdent(c.name)}`)
    }, ${insertChange(relation, context, "v")}) else false end`;
  const insert = `insert into ${relation.qualifiedName} as t (${written}) ` +
    `select ${picked} from (${values}) as v (${names}) where ${filter} and not (${gone})`;
  if (fast) return insert;
  return `${insert} ` +
    `on conflict (${keyNames.join(", ")}) do update set ${assignments.join(", ")} ` +
    // With delta columns the row always changes; the call still decides and reports.
    `where ${decide}${delta ? " or true" : ""}`;
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
  const condition = insertFilter(relation);
  const filter = condition === undefined ? "" : ` where ${condition}`;
  const indexes = [relation.keyIndex!, ...relation.uniqueIndexes];
  const probes = indexes.map((index, order) => {
    const join = index.columns.map((column) =>
      `t.${quoteIdent(column.name)} = v.${quoteIdent(column.name)}`
    ).join(" and ");
    return `(select ${order} as ord, ${quoteLiteral(index.name)} as spock_index, ` +
      `t.tableoid as spock_toid, t.ctid as spock_tid, t.xmin as spock_xid ` +
      `from vf as v join ${relation.qualifiedName} as t on ${join} limit 1)`;
  });
  const written = writtenColumns(relation).map((column) => quoteIdent(column.name));
  const assignments = writtenColumns(relation).map((column) => {
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
    `l where ${SAME_ROW} and ${
      remoteWinsSql(relation, context, LOCAL, "insert_exists")
    } returning 1), ` +
    `i as (insert into ${relation.qualifiedName} (${written.join(", ")}) ` +
    `select ${written.map((name) => `vf.${name}`).join(", ")} from vf ` +
    `where not exists (select from hit) returning 1), ` +
    `e as (select l.*, 'insert_exists'::text as spock_type, ` +
    `case when exists (select from u) then 'apply_remote' else 'keep_local' end ` +
    `as spock_resolution, true as spock_recorded from l)` +
    reportTail(relation, context, "e.spock_remote_row");
}

/**
 * What `spock._row_not_changed()` needs to find out why a row statement
 * changed nothing: the key and new values (as text), the remote commit and
 * the settings. Evaluated only on that slow path.
 */
function unchangedRow(
  relation: LocalRelation,
  context: ConflictContext,
  change: { kind: "update" | "delete"; key: MappedColumn[]; keyOffset: number; passes: string },
  sent: MappedColumn[],
): string {
  const written = sent.filter((column) => column.written);
  const settings = JSON.stringify({
    kind: change.kind,
    key_names: change.key.map((column) => column.name),
    new_names: written.map((column) => column.name),
    remote_node: context.remoteNodeId,
    session_origin: context.sessionOrigin,
    update_missing: context.settings.updateMissing,
    save: context.settings.saveResolutions,
    node_name: context.localNodeName,
    index: relation.keyIndex?.name ?? null,
  });
  // The parameters of `columns` among those of `all` (which start after `offset`).
  const values = (columns: MappedColumn[], all: MappedColumn[], offset: number) =>
    `array[${
      columns.map((column) => `$${offset + all.indexOf(column) + 1}::text`).join(", ")
    }]::text[]`;
  return `spock._row_not_changed(${quoteLiteral(relation.qualifiedName)}::regclass, ` +
    `${quoteLiteral(settings)}::jsonb, ${values(change.key, change.key, change.keyOffset)}, ` +
    `${values(written, sent, META_PARAMS)}, ${REMOTE_TS}, $2::text, $3::text, ${change.passes})`;
}

/** A row filter's verdict on the sent row, as a boolean expression (`true` without one). */
function filterVerdict(
  relation: LocalRelation,
  sent: MappedColumn[],
  offset: number,
  unsent?: (column: MappedColumn) => string,
): string {
  const filter = passesFilter(relation, sent, offset, unsent);
  return filter === "" ? "true" : filter.replace(/^ and /, "");
}

/**
 * An UPDATE setting the `set` columns (parameters after the meta ones), the
 * row located by `where` (parameters after those), delta columns' old values
 * last. The row is changed where the remote side wins; delta columns always
 * get local + (new − old). Only when no row changed does the statement call
 * `spock._row_not_changed()`: `update_origin_differs` (the local row kept,
 * recorded) or `update_missing` (skipped when the key was deleted after the
 * change, else an error for exception handling or, with `update_missing:
 * insert`, an insert of the sent columns).
 */
export function updateStatement(
  relation: LocalRelation,
  context: ConflictContext,
  set: MappedColumn[],
  where: MappedColumn[],
  fast = false,
): string {
  const keyOffset = META_PARAMS + set.length;
  const deltaOffset = keyOffset + where.length;
  const deltas = relation.deltaColumns.filter((column) => set.includes(column));
  // A column the UPDATE leaves unchanged (TOAST) has the local row's value.
  const filter = passesFilter(relation, set, META_PARAMS, (c) => `t.${quoteIdent(c.name)}`);
  const wins = targetWins(relation, context, "update_origin_differs");
  const assignments = set.flatMap((column, i) => {
    if (!column.written) return [];
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
  const update = `update ${relation.qualifiedName} as t set ${assignments.join(", ")} ` +
    `where ${locate(relation, where, keyOffset)}${deltas.length > 0 ? "" : ` and ${wins}`}` +
    filter;
  if (fast) return `${META}u as (${update} returning 1) ${failUnchanged("u")}`;
  const localValue = (column: MappedColumn) =>
    `(select t.${quoteIdent(column.name)} from ${relation.qualifiedName} as t where ${
      conditions(relation, where, keyOffset)
    } limit 1)`;
  const slow = unchangedRow(relation, context, {
    kind: "update",
    key: where,
    keyOffset,
    passes: filterVerdict(relation, set, META_PARAMS, localValue),
  }, set);
  return `with u as (${update} returning 1) ` +
    `select r.* from ${slow} as r where not exists (select from u)`;
}

/**
 * A run of fast INSERTs as `COPY … FROM STDIN` of the written columns (in
 * the order of `columns`), and the statement to run before it in the
 * same transaction when the table has a key: it fails while the table has
 * tombstones, which only the upsert's per-row check can honour, so the
 * transaction is applied again with conflict handling.
 */
export function copyStatements(
  relation: LocalRelation,
): { copy: string; columns: MappedColumn[]; guard?: string } {
  const columns = writtenColumns(relation);
  const copy = `copy ${relation.qualifiedName} (${
    columns.map((column) => quoteIdent(column.name)).join(", ")
  }) from stdin`;
  if (relation.keyIndex === undefined) return { copy, columns };
  // The message depends on the row found, so it is not evaluated (and raised) at planning.
  const refusal = "('spock: ' || s.nspname || '.' || s.relname || ' has tombstones, so its " +
    "rows are not copied: applying the transaction again with conflict handling')::int";
  return {
    copy,
    columns,
    guard: `select ${refusal} from spock._tombstone as s where ${tombstoneTable(relation)} limit 1`,
  };
}

/** Parameters of a batched fast statement before its column arrays: meta, then the row count. */
const BATCH_PARAMS = META_PARAMS + 1;

/**
 * `v`, the rows of a batched fast statement: one `text[]` parameter per
 * column of `columns` (from $5), unnested side by side into `c1`, `c2`, …
 */
function batchRows(columns: MappedColumn[]): string {
  const arrays = columns.map((_, i) => `$${BATCH_PARAMS + i + 1}::text[]`);
  const names = columns.map((_, i) => `c${i + 1}`);
  return `v as (select * from unnest(${arrays.join(", ")}) as v (${names.join(", ")}))`;
}

/** Ends a batched fast statement whose change is the CTE `name`: fails (SP003) unless it changed $4 rows. */
function failShort(name: string): string {
  return `select spock._check_applied($4::int) where (select count(*) from ${name}) <> $4::int`;
}

/**
 * A run of fast UPDATEs of one shape (the same `set` and `where` columns,
 * each row located by its key, no key changed) as one statement: the rows
 * are column arrays ({@link batchRows}: `set` columns, then `where`), and it
 * fails unless every row changed. Only for keyed tables.
 */
export function fastUpdateBatchStatement(
  relation: LocalRelation,
  context: ConflictContext,
  set: MappedColumn[],
  where: MappedColumn[],
): string {
  const value = (index: number, column: MappedColumn) => `v.c${index + 1}::${column.localType}`;
  const assignments = set.flatMap((column, i) =>
    column.written ? [`${quoteIdent(column.name)} = ${value(i, column)}`] : []
  );
  const match = where.map((column, i) =>
    `t.${quoteIdent(column.name)} = ${value(set.length + i, column)}`
  ).join(" and ");
  const wins = targetWins(relation, context, "update_origin_differs");
  return `${META}${batchRows([...set, ...where])}, u as (update ${relation.qualifiedName} as t ` +
    `set ${assignments.join(", ")} from v where ${match} and ${wins} returning 1) ${
      failShort("u")
    }`;
}

/**
 * A run of fast DELETEs as one statement, the keys as column arrays
 * ({@link batchRows}), leaving a tombstone per deleted row; it fails unless
 * every row was deleted. Only for keyed tables.
 */
export function fastDeleteBatchStatement(
  relation: LocalRelation,
  context: ConflictContext,
  where: MappedColumn[],
): string {
  const match = where.map((column, i) =>
    `t.${quoteIdent(column.name)} = v.c${i + 1}::${column.localType}`
  ).join(" and ");
  const wins = targetWins(relation, context, "delete_origin_differs");
  const key = tombstoneKey(where, (c) => `d.${quoteIdent(c.name)}`);
  const returned = where.map((c) => `t.${quoteIdent(c.name)}`).join(", ");
  // `tomb` is read for the row count, so its tombstones are always written.
  return `${META}${batchRows(where)}, d as (delete from ${relation.qualifiedName} as t using v ` +
    `where ${match} and ${wins} returning ${returned}), tomb as (select count(*) as deleted, ` +
    `${rememberDeletes(relation, `array_agg(${key})`)} as remembered from d) ` +
    `select spock._check_applied($4::int) from tomb where tomb.deleted <> $4::int`;
}

/**
 * A DELETE locating the row by `where` (parameters after the meta ones). The
 * row is deleted where the remote side wins, and its key gets a tombstone;
 * otherwise `spock._row_not_changed()` reports `delete_exists` (the local row
 * kept) or `delete_missing` (skipped, a tombstone left), both recorded.
 */
export function deleteStatement(
  relation: LocalRelation,
  context: ConflictContext,
  where: MappedColumn[],
  fast = false,
): string {
  const filter = passesFilter(relation, where, META_PARAMS);
  const wins = targetWins(relation, context, "delete_origin_differs");
  const key = tombstoneKey(where, (c) => param(META_PARAMS + where.indexOf(c) + 1, c));
  // RETURNING runs for the deleted row whether or not the query reads it.
  const returning = relation.locateByAllColumns ? "1" : rememberDeletes(relation, `array[${key}]`);
  const remove = `delete from ${relation.qualifiedName} as t where ${
    locate(relation, where, META_PARAMS)
  } and ${wins}${filter} returning ${returning}`;
  if (fast) return `${META}d as (${remove}) ${failUnchanged("d")}`;
  const slow = unchangedRow(relation, context, {
    kind: "delete",
    key: where,
    keyOffset: META_PARAMS,
    passes: filterVerdict(relation, where, META_PARAMS),
  }, []);
  return `with d as (${remove}) select r.* from ${slow} as r where not exists (select from d)`;
}

/**
 * The local row located by `where` (parameters after `offset`): its JSON image,
 * commit timestamp and writing node, for `spock.exception_log`.
 */
export function localRowStatement(
  relation: LocalRelation,
  where: MappedColumn[],
  offset: number,
): string {
  return `select row_to_json(t.*)::text as tup, c.timestamp::text as ts, ` +
    `spock._origin_node(c.roident)::int8::text as origin from ${relation.qualifiedName} as t ` +
    `${COMMIT_TS_JOIN} where ${conditions(relation, where, offset)} limit 1`;
}
