/**
 * Checks that a server can run spock before anything is installed, and says
 * exactly what to change: version, wal_level, track_commit_timestamp, slot and
 * sender limits, and the privileges the engine uses.
 */
import type { CatalogSql } from "./connection.ts";
import { ORIGIN_FUNCTIONS } from "./replication_origins.ts";

/** What the check found: errors block installing, warnings do not. */
export interface PreflightReport {
  serverVersionNum: number;
  errors: string[];
  warnings: string[];
}

const MIN_SLOTS = 10;

/** Inspects the server behind `sql`. */
export async function checkServer(sql: CatalogSql): Promise<PreflightReport> {
  const [row] = await sql`
    SELECT current_setting('server_version_num')::int AS version_num,
           current_setting('server_version') AS version,
           current_setting('wal_level') AS wal_level,
           current_setting('track_commit_timestamp') AS track_commit_timestamp,
           current_setting('max_replication_slots')::int AS max_replication_slots,
           current_setting('max_wal_senders')::int AS max_wal_senders,
           r.rolsuper AS superuser, r.rolreplication AS replication, current_user AS role,
           has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
           (SELECT bool_and(has_function_privilege('pg_catalog.' || f, 'EXECUTE'))
            FROM unnest(${[...ORIGIN_FUNCTIONS]}::text[]) f) AS can_use_origins
    FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`;
  const errors: string[] = [];
  const warnings: string[] = [];
  if (row.version_num < 150000) {
    errors.push(`PostgreSQL ${row.version} is too old: spock needs PostgreSQL 15 or later`);
  }
  if (row.wal_level !== "logical") {
    errors.push(
      `wal_level is "${row.wal_level}": set wal_level = logical in postgresql.conf and restart PostgreSQL`,
    );
  }
  if (row.track_commit_timestamp !== "on") {
    errors.push(
      "track_commit_timestamp is off: set track_commit_timestamp = on in postgresql.conf and " +
        "restart PostgreSQL (conflict resolution needs commit timestamps)",
    );
  }
  for (const setting of ["max_replication_slots", "max_wal_senders"] as const) {
    if (row[setting] === 0) {
      errors.push(
        `${setting} is 0: set ${setting} = ${MIN_SLOTS} (at least one per peer node) and restart`,
      );
    } else if (row[setting] < MIN_SLOTS) {
      warnings.push(
        `${setting} is ${
          row[setting]
        }: each peer node needs one, plus one per table being synchronized; ` +
          `consider ${setting} = ${MIN_SLOTS}`,
      );
    }
  }
  if (!row.superuser) {
    const role = String(row.role);
    if (!row.replication) {
      errors.push(`Role "${role}" lacks REPLICATION: run ALTER ROLE "${role}" REPLICATION`);
    }
    if (!row.can_create_schema) {
      errors.push(
        `Role "${role}" cannot create schemas here: run GRANT CREATE ON DATABASE ` +
          `"<this database>" TO "${role}"`,
      );
    }
    if (!row.can_use_origins) {
      errors.push(
        `Role "${role}" cannot use replication origins: run GRANT EXECUTE ON FUNCTION ` +
          `${ORIGIN_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(", ")} TO "${role}"`,
      );
    }
  }
  return { serverVersionNum: row.version_num, errors, warnings };
}
