/**
 * Ordinary (non-replication) connections for catalog work, from resolved
 * libpq settings: one session, notices kept out of stdout.
 */
import postgres from "postgres";
import type { PgConnectOptions } from "../pg/mod.ts";

/** A postgres.js client for catalog work. */
export type CatalogSql = postgres.Sql;

/** Opens a client with `max` sessions (default 1); close it with `end()`. */
export function connectDatabase(
  options: PgConnectOptions,
  settings: {
    max?: number;
    onnotice?: (notice: postgres.Notice) => void;
    /** Called whenever one of the sessions' connections closes (an end() included). */
    onclose?: () => void;
  } = {},
): CatalogSql {
  // postgres.js accepts host and port lists at run time; its types only show one.
  return postgres({
    ...(options as unknown as postgres.Options<Record<string, never>>),
    max: settings.max ?? 1,
    onnotice: settings.onnotice ?? (() => {}),
    idle_timeout: 30,
    ...(settings.onclose ? { onclose: settings.onclose } : {}),
  });
}
