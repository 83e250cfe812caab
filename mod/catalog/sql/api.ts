/**
 * The SQL API in install order: every function of the spock schema, as
 * `CREATE OR REPLACE` statements re-run whenever the catalog version changes.
 */
import { HASH_HELPERS_SQL, HASH_SQL } from "./hash.ts";

/** The function groups, in the order they are created. */
export const API_SQL: readonly string[] = [HASH_HELPERS_SQL, HASH_SQL];
