/**
 * What `spock node add` checks before it changes anything (ZODAN's
 * prerequisites): the new database is empty (or, when its structure is made
 * by hand, its tables are), every node runs this catalog
 * version, every subscription is enabled, and the roles the source's objects
 * belong to exist on the new node.
 */
import type { CatalogSql } from "../catalog/mod.ts";
import { quoteIdent } from "../pg/mod.ts";
import type { ClusterNode } from "./cluster_nodes.ts";

const USER_TABLES_SQL = `
select c.oid::regclass::text as name, n.nspname::text as nsp, c.relname::text as rel
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'f', 'm')
  and n.nspname not in ('pg_catalog', 'information_schema', 'spock')
  and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
order by 1`;

// Roles that own or are granted objects of this database outside spock's schema.
const NEEDED_ROLES_SQL = `
select distinct a.rolname::text as role
from pg_catalog.pg_shdepend d
join pg_catalog.pg_roles a on a.oid = d.refobjid
where d.dbid = (select oid from pg_catalog.pg_database where datname = current_database())
  and d.refclassid = 'pg_catalog.pg_authid'::regclass and d.deptype in ('o', 'a')
  and not (d.classid = 'pg_catalog.pg_class'::regclass and exists (select 1
    from pg_catalog.pg_class c where c.oid = d.objid and c.relnamespace = 'spock'::regnamespace))
  and not (d.classid = 'pg_catalog.pg_proc'::regclass and exists (select 1
    from pg_catalog.pg_proc p where p.oid = d.objid and p.pronamespace = 'spock'::regnamespace))
  and not (d.classid = 'pg_catalog.pg_type'::regclass and exists (select 1
    from pg_catalog.pg_type t where t.oid = d.objid and t.typnamespace = 'spock'::regnamespace))
  and not (d.classid = 'pg_catalog.pg_namespace'::regclass and d.objid = 'spock'::regnamespace)
order by 1`;

/**
 * The new database's user tables (`nonEmpty`: only those holding rows), at
 * most five names; empty when it has none.
 */
export async function userTables(
  sql: CatalogSql,
  options: { nonEmpty: boolean },
): Promise<string[]> {
  const found: string[] = [];
  for (const table of await sql.unsafe(USER_TABLES_SQL)) {
    if (found.length === 5) break;
    if (options.nonEmpty) {
      const [row] = await sql.unsafe(
        `select exists (select 1 from ${quoteIdent(table.nsp)}.${quoteIdent(table.rel)}) as rows`,
      );
      if (!row.rows) continue;
    }
    found.push(table.name);
  }
  return found;
}

/** The roles the source's objects need that the new node lacks. */
export async function missingRoles(source: ClusterNode, target: CatalogSql): Promise<string[]> {
  const needed = (await source.sql.unsafe(NEEDED_ROLES_SQL)).map((row) => row.role as string);
  if (needed.length === 0) return [];
  const present = await target`select rolname::text as role from pg_catalog.pg_roles
    where rolname = any(${needed}::text[])`;
  const have = new Set(present.map((row) => row.role));
  return needed.filter((role) => !have.has(role));
}

/** The catalog version of a database's spock schema. */
export async function catalogVersion(sql: CatalogSql): Promise<number> {
  const [row] = await sql`select spock.catalog_version() as version`;
  return Number(row.version);
}

/** The node's disabled subscriptions, except those involving node `except` (its own links). */
export async function disabledSubscriptions(
  node: ClusterNode,
  except: string | undefined,
): Promise<string[]> {
  const rows = await node.sql`select s.sub_name::text as name from spock.subscription s
    where not s.sub_enabled and (${except ?? null}::oid is null
      or (s.sub_origin <> ${except ?? null}::oid and s.sub_target <> ${except ?? null}::oid))
    order by 1`;
  return rows.map((row) => row.name);
}
