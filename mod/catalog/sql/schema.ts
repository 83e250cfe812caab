/**
 * The catalog's tables and views, as versioned migrations in
 * `migrations/NNN_*.sql`. Version 1 is the Spock 5.0.0 catalog
 * (`spock--5.0.0.sql`); later versions add what Spock 5.0.x added and what the
 * engine keeps privately (tables whose names start with `_`). Migrations only
 * ever append: an installed catalog upgrades by running the versions it
 * lacks, in one transaction.
 */
import v1 from "./migrations/001_spock_500.sql" with { type: "text" };
import v2 from "./migrations/002_spock_50x.sql" with { type: "text" };
import v3 from "./migrations/003_conflicts.sql" with { type: "text" };
import v4 from "./migrations/004_operations.sql" with { type: "text" };
import v5 from "./migrations/005_api_checksum.sql" with { type: "text" };
import v6 from "./migrations/006_setting_defaults.sql" with { type: "text" };

/** One schema version: the SQL that brings the previous version to it. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** Every schema version in order. The last one is what `spock install` installs. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: "Spock 5.0.0 catalog", sql: v1 },
  {
    version: 2,
    description:
      "Spock 5.0.x additions (skip_schema, created_at, resolutions index); engine tables",
    sql: v2,
  },
  {
    version: 3,
    description: "Conflicts: subscription options, delta apply, channel counters, tombstones",
    sql: v3,
  },
  {
    version: 4,
    description:
      "Operations: last error per subscription, discarded-operation counters, row filters in stream order",
    sql: v4,
  },
  {
    version: 5,
    description: "The installed SQL API recorded: source hash and function checksum",
    sql: v5,
  },
  {
    version: 6,
    description: "Defaults of Spock's session settings from the daemon's config",
    sql: v6,
  },
];

/** The newest schema version. */
export const CATALOG_VERSION: number = MIGRATIONS.at(-1)!.version;
