/**
 * Whether a database's catalog is the one this program installs. `spock
 * install` records, beside the catalog version, a hash of the program's API
 * source and a checksum of spock's functions as the server keeps them
 * (`pg_get_functiondef` over `pg_proc`). So a program whose SQL changed
 * without a new catalog version is seen, and so is a function changed by hand.
 */
import { createHash } from "node:crypto";
import type postgres from "postgres";
import type { CatalogSql } from "./connection.ts";
import { CatalogError } from "./errors.ts";
import { API_SQL } from "./sql/api.ts";
import { CATALOG_VERSION } from "./sql/schema.ts";

/** SHA-256 of this program's SQL API, in install order. */
export const API_SOURCE_HASH: string = createHash("sha256").update(API_SQL.join("\n"))
  .digest("hex");

/** The functions in schema spock that the API creates: not an extension's, such as dblink's. */
const API_FUNCTIONS = `pg_catalog.pg_proc p
where p.pronamespace = 'spock'::pg_catalog.regnamespace and p.prokind in ('f', 'p')
  and not exists (select 1 from pg_catalog.pg_depend d
    where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass and d.objid = p.oid
      and d.deptype = 'e')`;

/**
 * md5 over the definitions of the functions in schema spock that the API
 * created (not an extension's, such as dblink's when it lives there), in
 * signature order: `checksum`.
 */
export const LIVE_API_CHECKSUM_SQL = `
select md5(coalesce(string_agg(pg_catalog.pg_get_functiondef(p.oid), E'\\n'
  order by p.oid::pg_catalog.regprocedure::text), '')) as checksum
from ${API_FUNCTIONS}`;

/** Every API function with its row version (`pg_proc.xmin`): `oid`, `version`. */
export const API_FUNCTION_VERSIONS_SQL =
  `select p.oid::pg_catalog.int8 as oid, p.xmin::text as version from ${API_FUNCTIONS}`;

/**
 * The functions still at the row versions `$1` (oids) and `$2` (versions)
 * read before the API was created, that nothing depends on: the ones it did
 * not create or replace, an older API's whose name or arguments changed
 * since. (The schema's own, such as md5_agg's state function, and one a
 * trigger still uses, stay.) `signature` is the quoted `regprocedure`.
 */
export const STALE_API_FUNCTIONS_SQL =
  `select p.oid::pg_catalog.regprocedure::text as signature from ${API_FUNCTIONS}
  and (p.oid::pg_catalog.int8, p.xmin::text) in
    (select * from unnest($1::pg_catalog.int8[], $2::text[]))
  and not exists (select 1 from pg_catalog.pg_depend d
    where d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass and d.refobjid = p.oid)`;

/** How a database's catalog differs from this program's (see {@link catalogMismatch}). */
export type CatalogMismatch =
  | { kind: "missing" }
  | { kind: "older" | "newer"; installed: number }
  /** Same version, but installed by a program whose SQL API differs. */
  | { kind: "api_changed"; installedBy: string }
  /** The functions are not what the install created (changed by hand?). */
  | { kind: "api_modified" };

/**
 * Settings under which the definitions are printed: a default such as
 * `'0'::interval` is deparsed by the session's IntervalStyle, DateStyle,
 * time zone and float digits, which databases and roles may set otherwise.
 */
const FIXED_OUTPUT_SQL = "SET LOCAL DateStyle = 'ISO'; SET LOCAL IntervalStyle = 'postgres'; " +
  "SET LOCAL extra_float_digits = 3; SET LOCAL TimeZone = 'UTC'";

/**
 * The live checksum of the API in the database behind `sql`: a client (in a
 * transaction of its own) or an open transaction (whose output settings it
 * fixes for the rest of that transaction).
 */
export async function liveApiChecksum(
  sql: CatalogSql | postgres.TransactionSql,
): Promise<string> {
  const checksum = async (tx: postgres.TransactionSql) => {
    await tx.unsafe(FIXED_OUTPUT_SQL);
    const [row] = await tx.unsafe(LIVE_API_CHECKSUM_SQL);
    return String(row.checksum);
  };
  if ("savepoint" in sql) return await checksum(sql);
  return await sql.begin(checksum) as string;
}

/** How the catalog behind `sql` differs from this program's, or undefined when it is the same. */
export async function catalogMismatch(sql: CatalogSql): Promise<CatalogMismatch | undefined> {
  const [state] = await sql`SELECT to_regclass('spock._catalog') IS NOT NULL AS present`;
  if (!state.present) return { kind: "missing" };
  const [catalog] = await sql.unsafe("SELECT to_jsonb(c) AS row FROM spock._catalog c");
  const row = (catalog?.row ?? {}) as Record<string, unknown>;
  const installed = Number(row.version ?? 0);
  if (installed < CATALOG_VERSION) return { kind: "older", installed };
  if (installed > CATALOG_VERSION) return { kind: "newer", installed };
  if (row.api_source !== API_SOURCE_HASH) {
    return { kind: "api_changed", installedBy: String(row.program_version) };
  }
  if (row.api_checksum !== await liveApiChecksum(sql)) return { kind: "api_modified" };
  return undefined;
}

/** What is wrong and what to run, for a mismatch found in the database `installCommand` names. */
export function describeMismatch(mismatch: CatalogMismatch, installCommand: string): string {
  switch (mismatch.kind) {
    case "missing":
      return `spock is not installed there; run '${installCommand}' and create its node first`;
    case "older":
      return `its catalog is version ${mismatch.installed}, this program's is ${CATALOG_VERSION}; ` +
        `run '${installCommand}' to upgrade it`;
    case "newer":
      return `its catalog is version ${mismatch.installed}, newer than this program's ` +
        `${CATALOG_VERSION}; run a newer spock`;
    case "api_changed":
      return `its SQL API (catalog version ${CATALOG_VERSION}) was installed by spock ` +
        `${mismatch.installedBy}, whose functions differ from this program's; ` +
        `run '${installCommand}' to install this program's`;
    case "api_modified":
      return "its SQL API functions differ from what spock install created (changed by hand?); " +
        `run '${installCommand}' to put them back`;
  }
}

/**
 * Throws a CatalogError naming what to run unless the catalog behind `sql`
 * is this program's; `where` names the database in the message.
 */
export async function assertCatalogCurrent(
  sql: CatalogSql,
  options: { where: string; installCommand: string },
): Promise<void> {
  const mismatch = await catalogMismatch(sql);
  if (mismatch === undefined) return;
  throw new CatalogError(
    `The spock catalog of ${options.where} is not this program's: ` +
      describeMismatch(mismatch, options.installCommand),
  );
}
