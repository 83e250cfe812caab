/**
 * Remote → local relation mapping, in the manner of PG's `relation.c`
 * `logicalrep_rel_open`: by schema, table and column name, one catalog query
 * per Relation message (never per row). All missing columns are reported at
 * once; a missing replica identity is reported only when an update or delete
 * needs it. Building SQL is `sql_writer.ts`'s job.
 */
import type { Relation } from "../pgoutput/mod.ts";
import { quoteIdent, type WireSession } from "../pg/mod.ts";
import { ApplyError } from "./errors.ts";

/** A remote column and where it lands locally. */
export interface MappedColumn {
  /** Column name (same on both sides). */
  name: string;
  /** Index of the column in the remote tuple. */
  remoteIndex: number;
  /** Local type as `format_type()` prints it, used for casts. */
  localType: string;
  /**
   * False for a column the provider sends only for a row filter (it is
   * outside the subscription's column lists): the filter sees it, nothing
   * writes it.
   */
  written: boolean;
}

/** A local unique index whose every key column is a plain column sent by the provider. */
export interface UniqueIndex {
  name: string;
  columns: MappedColumn[];
}

/** A remote relation mapped onto a local table. */
export interface LocalRelation {
  relationId: number;
  /** `schema.table` as the provider names it (for messages). */
  remoteName: string;
  /** The provider's schema and table names, apart. */
  remoteNameParts: [string, string];
  /** Quoted, schema-qualified local name for SQL. */
  qualifiedName: string;
  /** Every remote column, in remote order. */
  columns: MappedColumn[];
  /**
   * Columns locating a row: the local primary key or replica identity index,
   * every column under REPLICA IDENTITY FULL without a key, or `undefined`
   * when the local table has no usable identity (an error once an update or
   * delete needs one).
   */
  identity: MappedColumn[] | undefined;
  /** True when the local table is REPLICA IDENTITY FULL: the provider must send old rows. */
  identityFull: boolean;
  /** True when rows are located by every column (IS NOT DISTINCT FROM): FULL without a key. */
  locateByAllColumns: boolean;
  /** Why `identity` is undefined. */
  identityProblem: string | undefined;
  /**
   * The unique index behind `identity` (primary key or replica identity
   * index): conflicts are detected on it. Undefined without one, or when it is
   * deferrable (ON CONFLICT cannot use it).
   */
  keyIndex: UniqueIndex | undefined;
  /** The other immediate unique indexes, in OID order (`check_all_uc_indexes`). */
  uniqueIndexes: UniqueIndex[];
  /** Columns registered with `spock.delta_apply()`: remote updates add their delta. */
  deltaColumns: MappedColumn[];
  /**
   * Statement-level INSERT/UPDATE/DELETE triggers that would fire in the
   * apply session (`ENABLE ALWAYS` 'A' or `ENABLE REPLICA` 'R'). PostgreSQL's
   * and Spock's apply fire row triggers only, so they are disabled for the
   * span of each apply transaction that writes the table.
   */
  statementTriggers: Array<{ name: string; enabled: "A" | "R" }>;
  /**
   * The local table's stored generated columns, with their expressions (by
   * column name): pgoutput does not send them, and a row filter may use them.
   */
  generated: Array<{ name: string; expression: string; localType: string }>;
  /**
   * The replication sets' row filters, ANDed, each in parentheses (Spock's
   * semantics; publications would OR them): rows that fail are not applied.
   */
  rowFilter?: string;
}

const LOCAL_RELATION_SQL = `
select c.oid::int8 as oid, c.relreplident::text as replident,
  coalesce((select array_agg(a.attname::text order by a.attnum)
     from pg_attribute a
     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       and a.attgenerated = ''), '{}') as columns,
  coalesce((select array_agg(format_type(a.atttypid, a.atttypmod) order by a.attnum)
     from pg_attribute a
     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       and a.attgenerated = ''), '{}') as types,
  coalesce((select json_agg(json_build_object(
       'name', x.relname::text,
       'key', case c.relreplident when 'i' then i.indisreplident else i.indisprimary end,
       'immediate', i.indimmediate,
       'columns', (select array_agg(a.attname::text order by k.ord)
          from unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
          join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum))
       order by i.indexrelid)
     from pg_index i join pg_class x on x.oid = i.indexrelid
     where i.indrelid = c.oid and i.indisunique and i.indisvalid and i.indpred is null
       and i.indexprs is null and 0 <> all (i.indkey::int2[])), '[]') as indexes,
  coalesce((select array_agg(d.attname::text) from spock._delta_apply d
     where d.nspname = n.nspname and d.relname = c.relname), '{}') as delta_columns,
  coalesce((select json_agg(json_build_object('name', g.tgname::text,
       'enabled', g.tgenabled::text) order by g.tgname)
     from pg_trigger g
     where g.tgrelid = c.oid and not g.tgisinternal and g.tgenabled in ('A', 'R')
       and g.tgtype & 1 = 0 and g.tgtype & (4 | 8 | 16) <> 0), '[]') as statement_triggers,
  coalesce((select json_agg(json_build_object('name', a.attname::text,
       'expression', pg_get_expr(d.adbin, d.adrelid),
       'localType', format_type(a.atttypid, a.atttypmod)) order by a.attnum)
     from pg_attribute a join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
     where a.attrelid = c.oid and a.attgenerated = 's' and not a.attisdropped), '[]') as generated
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`;

interface IndexRow {
  name: string;
  key: boolean;
  immediate: boolean;
  columns: string[];
}

/**
 * Looks up the local table for a Relation message and maps its columns.
 * Throws `ApplyError` naming the table when it is missing, or naming every
 * remote column the local table lacks (local extra columns get defaults).
 */
export async function mapRelation(
  session: WireSession,
  relation: Relation,
  options: { written?: ReadonlySet<string> } = {},
): Promise<LocalRelation> {
  const remoteName = `${relation.namespace}.${relation.relationName}`;
  const { rows } = await session.query(
    LOCAL_RELATION_SQL,
    [relation.namespace, relation.relationName],
    { prepare: true, sync: true },
  );
  if (rows.length === 0) {
    throw new ApplyError(
      `Cannot map remote relation "${remoteName}": no local table "${remoteName}"; create it on the subscriber`,
      { code: "ERR_APPLY_MISSING_RELATION", operation: "relation", relation: remoteName },
    );
  }
  const row = rows[0];
  const localTypes = new Map<string, string>();
  (row.columns as string[]).forEach((name, i) => localTypes.set(name, (row.types as string[])[i]));
  const missing = relation.columns.filter((column) => !localTypes.has(column.name));
  if (missing.length > 0) {
    const names = missing.map((column) => `"${column.name}"`).join(", ");
    throw new ApplyError(
      `Cannot map remote relation "${remoteName}": local table is missing ${
        missing.length === 1 ? "column" : "columns"
      } ${names}`,
      { code: "ERR_APPLY_MISSING_COLUMNS", operation: "relation", relation: remoteName },
    );
  }
  const columns = relation.columns.map((column, remoteIndex): MappedColumn => ({
    name: column.name,
    remoteIndex,
    localType: localTypes.get(column.name)!,
    written: options.written?.has(column.name) ?? true,
  }));
  const byName = new Map(columns.map((column) => [column.name, column]));
  const sent = (names: string[]) => names.every((name) => byName.get(name)?.written);
  const indexes = row.indexes as IndexRow[];
  const key = indexes.find((index) => index.key);
  let identity: MappedColumn[] | undefined;
  let identityProblem: string | undefined;
  const identityFull = row.replident === "f";
  let locateByAllColumns = false;
  if (key !== undefined && row.replident !== "n" && sent(key.columns)) {
    identity = key.columns.map((name) => byName.get(name)!);
  } else if (identityFull) {
    identity = columns.filter((column) => column.written);
    locateByAllColumns = true;
  } else if (key === undefined || row.replident === "n") {
    identityProblem = `local table "${remoteName}" has no primary key or replica identity index`;
  } else {
    const absent = key.columns.filter((name) => !byName.get(name)?.written);
    identityProblem = `local identity columns ${
      absent.map((name) => `"${name}"`).join(", ")
    } of "${remoteName}" are not sent by the provider`;
  }
  const mapIndex = (index: IndexRow): UniqueIndex => ({
    name: index.name,
    columns: index.columns.map((name) => byName.get(name)!),
  });
  const keyIndex = identity !== undefined && !locateByAllColumns && key!.immediate
    ? mapIndex(key!)
    : undefined;
  return {
    relationId: relation.relationId,
    remoteName,
    remoteNameParts: [relation.namespace, relation.relationName],
    qualifiedName: `${quoteIdent(relation.namespace)}.${quoteIdent(relation.relationName)}`,
    columns,
    identity,
    identityFull,
    locateByAllColumns,
    identityProblem,
    keyIndex,
    uniqueIndexes: indexes
      .filter((index) => index !== key && index.immediate && sent(index.columns))
      .map(mapIndex),
    deltaColumns: (row.delta_columns as string[])
      .filter((name) => byName.get(name)?.written)
      .map((name) => byName.get(name)!),
    statementTriggers: row.statement_triggers as LocalRelation["statementTriggers"],
    generated: row.generated as LocalRelation["generated"],
  };
}
