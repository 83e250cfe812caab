/**
 * The catalog: installing and upgrading the `spock` schema (tables, views and
 * the Spock-compatible SQL API in PL/pgSQL), checking the server first, and
 * opening ordinary connections for catalog work.
 *
 * @example
 * ```ts
 * import { connectDatabase, installCatalog } from "./mod.ts";
 * import { resolveConnectOptions } from "../pg/mod.ts";
 *
 * const sql = connectDatabase(resolveConnectOptions("host=db1 dbname=app"));
 * const result = await installCatalog(sql, { programVersion: "0.1.0" });
 * console.log(result.changed ? `installed version ${result.to}` : "already current");
 * await sql.end();
 * ```
 */
export { type CatalogSql, connectDatabase, PinnedSession } from "./connection.ts";
export {
  API_SOURCE_HASH,
  assertCatalogCurrent,
  type CatalogMismatch,
  catalogMismatch,
  describeMismatch,
  liveApiChecksum,
} from "./api_checksum.ts";
export { CatalogError } from "./errors.ts";
export {
  installCatalog,
  installedVersion,
  type InstallOptions,
  type InstallResult,
  uninstallCatalog,
  type UninstallResult,
} from "./install.ts";
export { checkServer, type PreflightReport } from "./preflight.ts";
export { dropProviderSlot } from "./provider_slot.ts";
export {
  copyOriginName,
  ORIGIN_FUNCTIONS,
  ORIGIN_SQL,
  prepareCommitStatementSql,
} from "./replication_origins.ts";
export { CATALOG_VERSION, type Migration, MIGRATIONS } from "./sql/schema.ts";
export { workerLockKey } from "./worker_locks.ts";
