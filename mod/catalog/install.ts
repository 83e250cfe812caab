/**
 * `spock install` / `spock uninstall`: our CREATE EXTENSION. Installing runs
 * the missing schema versions and re-creates the SQL API in one transaction
 * under an advisory lock, and records what it installed (`api_checksum.ts`);
 * the same version again changes nothing unless the API differs from this
 * program's or was changed by hand, which it puts back. Removing refuses
 * while subscriptions or spock's replication slots exist, unless forced.
 */
import type postgres from "postgres";
import type { CatalogSql } from "./connection.ts";
import { CatalogError } from "./errors.ts";
import { checkServer } from "./preflight.ts";
import {
  API_FUNCTION_VERSIONS_SQL,
  API_SOURCE_HASH,
  liveApiChecksum,
  STALE_API_FUNCTIONS_SQL,
} from "./api_checksum.ts";
import { ORIGIN_SQL } from "./replication_origins.ts";
import { RUNNING_WORKERS_SQL } from "./worker_locks.ts";
import { API_SQL, RECONCILE_SQL } from "./sql/api.ts";
import { CATALOG_VERSION, MIGRATIONS } from "./sql/schema.ts";

/** What an install did. */
export interface InstallResult {
  /** The version found before, or null for a fresh install. */
  from: number | null;
  to: number;
  changed: boolean;
  /**
   * Set when the catalog version was already installed but its SQL API was
   * re-created: `api_changed` (installed by a program with other SQL) or
   * `api_modified` (functions changed since the install).
   */
  apiReinstalled?: "api_changed" | "api_modified";
  warnings: string[];
}

/** Options of {@link installCatalog}. */
export interface InstallOptions {
  /** The program's version, recorded with the catalog. */
  programVersion: string;
  /** Install only up to this schema version (tests of upgrades); default the newest. */
  targetVersion?: number;
}

const INSTALL_LOCK = "spock catalog install";

/** The installed catalog version, or null when there is none. */
export async function installedVersion(sql: CatalogSql): Promise<number | null> {
  const [row] = await sql`SELECT to_regclass('spock._catalog') IS NOT NULL AS present`;
  if (!row.present) return null;
  const [catalog] = await sql`SELECT version FROM spock._catalog`;
  return catalog ? Number(catalog.version) : null;
}

/**
 * Installs or upgrades the spock catalog in the database behind `sql`.
 *
 * @throws {CatalogError} when the server is not ready (the message says what to
 * change), a foreign `spock` schema exists, the installed catalog is newer,
 * or a daemon is applying into the database while the catalog would change.
 */
export async function installCatalog(
  sql: CatalogSql,
  options: InstallOptions,
): Promise<InstallResult> {
  const report = await checkServer(sql);
  if (report.errors.length > 0) {
    throw new CatalogError(
      `The server is not ready for spock:\n  - ${report.errors.join("\n  - ")}`,
    );
  }
  const target = options.targetVersion ?? CATALOG_VERSION;
  if (!MIGRATIONS.some((m) => m.version === target)) {
    throw new RangeError(
      `Unknown catalog version ${target}: this program knows 1 to ${CATALOG_VERSION}`,
    );
  }
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${INSTALL_LOCK}))`;
    // The scripts' own notices ("does not exist, skipping") are noise; warnings still show.
    await tx`SET LOCAL client_min_messages = warning`;
    // The catalog is each node's own: its DDL is never replicated.
    await tx`SET LOCAL spock.enable_ddl_replication = off`;
    const [state] = await tx`
      SELECT to_regnamespace('spock') IS NOT NULL AS has_schema,
             to_regclass('spock._catalog') IS NOT NULL AS has_catalog,
             EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'spock') AS has_extension`;
    if (state.has_extension) {
      throw new CatalogError(
        "The spock extension (pgEdge Spock) is installed in this database: " +
          "this program cannot share its catalog; use another database or DROP EXTENSION spock",
      );
    }
    let from: number | null = null;
    if (state.has_catalog) {
      const [row] = await tx`SELECT version FROM spock._catalog`;
      from = Number(row.version);
    } else if (state.has_schema) {
      throw new CatalogError(
        'A schema named "spock" exists but was not created by spock install: rename or drop it first',
      );
    }
    if (from !== null && from > target) {
      throw new CatalogError(
        `The installed catalog (version ${from}) is newer than this program's (${target}): ` +
          "use a newer spock",
      );
    }
    const warnings = [...report.warnings];
    if (from === target) {
      const drift = target === CATALOG_VERSION ? await apiDrift(tx) : undefined;
      if (drift === undefined) return { from, to: target, changed: false, warnings };
      await refuseWhileApplying(tx);
      await installApi(tx, warnings);
      await tx`UPDATE spock._catalog SET program_version = ${options.programVersion},
        upgraded_at = now()`;
      return { from, to: target, changed: true, apiReinstalled: drift, warnings };
    }
    if (from === null) {
      await tx`CREATE SCHEMA spock`;
      await tx`CREATE TABLE spock._catalog (
        version integer NOT NULL,
        program_version text NOT NULL,
        installed_at timestamptz NOT NULL DEFAULT now(),
        upgraded_at timestamptz
      )`;
      await tx`INSERT INTO spock._catalog (version, program_version) VALUES (0, ${options.programVersion})`;
    }
    if (from !== null) await refuseWhileApplying(tx);
    for (const migration of MIGRATIONS) {
      if (migration.version > (from ?? 0) && migration.version <= target) {
        await tx.unsafe(migration.sql);
      }
    }
    if (target === CATALOG_VERSION) await installApi(tx, warnings);
    await tx`UPDATE spock._catalog
      SET version = ${target}, program_version = ${options.programVersion},
          upgraded_at = CASE WHEN ${from !== null} THEN now() END`;
    return { from, to: target, changed: true, warnings };
  });
}

/**
 * Refuses to change the catalog under a running daemon: its workers check
 * the catalog when they start, and would go on calling the SQL they know
 * (an older build's functions, which an upgrade may drop).
 */
async function refuseWhileApplying(tx: postgres.TransactionSql): Promise<void> {
  const workers = await tx.unsafe(RUNNING_WORKERS_SQL);
  if (workers.length === 0) return;
  const list = workers.map((w) => `subscription ${w.subscription} (backend pid ${w.pid})`);
  throw new CatalogError(
    `Cannot change the catalog while spock run applies into this database: ${
      list.join(", ")
    }. Stop spock run on this node and wait for it to exit, then install again`,
  );
}

/**
 * Whether the installed API is not this program's: installed by a program
 * with other SQL, or changed since (its live checksum is not the recorded one).
 */
async function apiDrift(
  tx: postgres.TransactionSql,
): Promise<"api_changed" | "api_modified" | undefined> {
  const [row] = await tx`SELECT api_source, api_checksum FROM spock._catalog`;
  if (row.api_source !== API_SOURCE_HASH) return "api_changed";
  if (row.api_checksum !== await liveApiChecksum(tx)) return "api_modified";
  return undefined;
}

/** Creates (or re-creates) every API function, then records what was installed. */
async function installApi(tx: postgres.TransactionSql, warnings: string[]): Promise<void> {
  const dblink = await ensureDblink(tx);
  if (dblink) warnings.push(dblink);
  const before = await tx.unsafe(API_FUNCTION_VERSIONS_SQL);
  for (const file of API_SQL) await tx.unsafe(file);
  // What the API did not re-create belongs to an older one: an upgrade leaves none behind.
  const stale = await tx.unsafe(STALE_API_FUNCTIONS_SQL, [
    before.map((row) => row.oid),
    before.map((row) => row.version),
  ]);
  for (const { signature } of stale) await tx.unsafe(`DROP FUNCTION ${signature}`);
  await tx.unsafe(RECONCILE_SQL);
  await tx`UPDATE spock._catalog SET api_source = ${API_SOURCE_HASH},
    api_checksum = ${await liveApiChecksum(tx)}`;
}

/**
 * SQL functions that must reach another node (sub_create asks the provider
 * for its node_info, sub_drop drops its slot) do it through dblink, as Spock
 * does through libpq inside the server. Returns a warning when dblink cannot be
 * had; those functions then say to use the spock CLI instead.
 */
async function ensureDblink(tx: postgres.TransactionSql): Promise<string | undefined> {
  const [row] = await tx`
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dblink') AS installed,
           EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'dblink') AS available`;
  if (row.installed) return undefined;
  if (!row.available) {
    return "dblink is not available on this server: SQL calls that reach other nodes " +
      "(spock.sub_create, spock.sub_drop) need it; use the spock CLI for those instead";
  }
  try {
    await tx.savepoint((sp) => sp`CREATE EXTENSION dblink SCHEMA spock`);
    return undefined;
  } catch (error) {
    return `Cannot create the dblink extension (${(error as Error).message}): SQL calls that ` +
      "reach other nodes (spock.sub_create, spock.sub_drop) need it; use the spock CLI for those instead";
  }
}

/** The publications of the catalog's channels (catalog version 4 and later). */
async function channelPublications(tx: postgres.TransactionSql): Promise<postgres.Row[]> {
  const [row] = await tx`SELECT to_regclass('spock._channel_publication') IS NOT NULL AS present`;
  if (!row.present) return [];
  return [
    ...await tx`SELECT p.pubname FROM spock._channel_publication p
      JOIN pg_catalog.pg_publication pp ON pp.pubname = p.pubname`,
  ];
}

/** What an uninstall removed. */
export interface UninstallResult {
  removed: boolean;
  droppedSlots: string[];
  droppedPublications: string[];
}

/**
 * Removes the spock schema, its publications and (with `force`) its
 * subscriptions' slots and origins: the origins of this database's
 * subscriptions only, as other databases of the server keep theirs.
 *
 * @throws {CatalogError} when subscriptions or spock slots exist and `force` is not set.
 */
export async function uninstallCatalog(
  sql: CatalogSql,
  options: { force?: boolean } = {},
): Promise<UninstallResult> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${INSTALL_LOCK}))`;
    await tx`SET LOCAL spock.enable_ddl_replication = off`;
    const [state] = await tx`SELECT to_regclass('spock._catalog') IS NOT NULL AS present`;
    if (!state.present) return { removed: false, droppedSlots: [], droppedPublications: [] };
    const subscriptions = await tx`SELECT sub_name FROM spock.subscription ORDER BY sub_name`;
    const slots = await tx`
      SELECT slot_name, active FROM pg_catalog.pg_replication_slots
      WHERE database = current_database() AND slot_name LIKE 'spk\_%' ORDER BY slot_name`;
    if ((subscriptions.length > 0 || slots.length > 0) && !options.force) {
      const parts = [];
      if (subscriptions.length > 0) {
        parts.push(`subscriptions ${subscriptions.map((s) => `"${s.sub_name}"`).join(", ")}`);
      }
      if (slots.length > 0) {
        parts.push(`replication slots ${slots.map((s) => `"${s.slot_name}"`).join(", ")}`);
      }
      throw new CatalogError(
        `Cannot uninstall spock while ${parts.join(" and ")} exist: drop them first ` +
          "(spock sub drop), or pass --force to drop them too",
      );
    }
    const active = slots.filter((s) => s.active).map((s) => String(s.slot_name));
    if (active.length > 0) {
      throw new CatalogError(
        `Cannot drop replication slots in use: ${
          active.join(", ")
        }: stop the daemons using them first`,
      );
    }
    for (const slot of slots) await tx`SELECT pg_drop_replication_slot(${slot.slot_name})`;
    // Origins are server-wide: only this database's subscriptions' (and their
    // data copies' \`<slot>_c<n>\`) are ours to drop, never another database's.
    await tx.unsafe(ORIGIN_SQL.dropSubscribed);
    const publications = [
      ...await tx`
        SELECT p.pubname FROM spock._set_publication p
        JOIN pg_catalog.pg_publication pp ON pp.pubname = p.pubname`,
      ...await channelPublications(tx),
    ];
    for (const publication of publications) {
      await tx.unsafe(
        `DROP PUBLICATION IF EXISTS "${String(publication.pubname).replaceAll('"', '""')}"`,
      );
    }
    await tx`DROP SCHEMA spock CASCADE`;
    return {
      removed: true,
      droppedSlots: slots.map((s) => String(s.slot_name)),
      droppedPublications: publications.map((p) => String(p.pubname)),
    };
  });
}
