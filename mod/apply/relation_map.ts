/**
 * Remote → local relation mapping, in the manner of PG's `relation.c`
 * `logicalrep_rel_open`: by schema, table and column name, one catalog query
 * per Relation message (never per row). All missing columns are reported at
 * once; a missing replica identity is reported only when an update or delete
 * needs it. Building SQL is `sql_writer.ts`'s job.
 */
import type postgres from "postgres";
import type { Relation } from "../pgoutput/mod.ts";
import { quoteIdent } from "../pg/mod.ts";
import { ApplyError } from "./errors.ts";

/** A remote column and where it lands locally. */
export interface MappedColumn {
  /** Column name (same on both sides). */
  name: string;
  /** Index of the column in the remote tuple. */
  remoteIndex: number;
  /** Local type as `format_type()` prints it, used for casts. */
  localType: string;
}

/** A remote relation mapped onto a local table. */
export interface LocalRelation {
  relationId: number;
  /** `schema.table` as the provider names it (for messages). */
  remoteName: string;
  /** Quoted, schema-qualified local name for SQL. */
  qualifiedName: string;
  /** Every remote column, in remote order. */
  columns: MappedColumn[];
  /**
   * Columns locating a row: the local primary key or replica identity index,
   * every column under REPLICA IDENTITY FULL, or `undefined` when the local
   * table has no usable identity (an error once an update or delete needs one).
   */
  identity: MappedColumn[] | undefined;
  /** True when rows are located by every column (IS NOT DISTINCT FROM). */
  identityFull: boolean;
  /** Why `identity` is undefined. */
  identityProblem: string | undefined;
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
  (select array_agg(a.attname::text order by a.attnum)
     from pg_index i join pg_attribute a
       on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
     where i.indrelid = c.oid
       and case c.relreplident when 'i' then i.indisreplident else i.indisprimary end)
    as key_columns
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`;

/**
 * Looks up the local table for a Relation message and maps its columns.
 * Throws `ApplyError` naming the table when it is missing, or naming every
 * remote column the local table lacks (local extra columns get defaults).
 */
export async function mapRelation(
  sql: postgres.Sql | postgres.ReservedSql,
  relation: Relation,
): Promise<LocalRelation> {
  const remoteName = `${relation.namespace}.${relation.relationName}`;
  const rows = await sql.unsafe(LOCAL_RELATION_SQL, [relation.namespace, relation.relationName], {
    prepare: true,
  });
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
  }));
  const byName = new Map(columns.map((column) => [column.name, column]));
  let identity: MappedColumn[] | undefined;
  let identityProblem: string | undefined;
  const identityFull = row.replident === "f";
  const keyColumns = row.key_columns as string[] | null;
  if (identityFull) {
    identity = columns;
  } else if (keyColumns === null || row.replident === "n") {
    identityProblem = `local table "${remoteName}" has no primary key or replica identity index`;
  } else {
    const absent = keyColumns.filter((name) => !byName.has(name));
    if (absent.length > 0) {
      identityProblem = `local identity columns ${
        absent.map((name) => `"${name}"`).join(", ")
      } of "${remoteName}" are not sent by the provider`;
    } else {
      identity = keyColumns.map((name) => byName.get(name)!);
    }
  }
  return {
    relationId: relation.relationId,
    remoteName,
    qualifiedName: `${quoteIdent(relation.namespace)}.${quoteIdent(relation.relationName)}`,
    columns,
    identity,
    identityFull,
    identityProblem,
  };
}
