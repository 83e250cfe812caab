/**
 * The SQL API in install order: every function of the spock schema, as
 * `CREATE OR REPLACE` statements re-run whenever the catalog version changes.
 */
import { APPLY_SUPPORT_SQL } from "./apply_support.ts";
import { CHANNEL_SQL } from "./channel.ts";
import { COMMON_SQL } from "./common.ts";
import { CONFLICTS_SQL } from "./conflicts.ts";
import { HASH_HELPERS_SQL, HASH_SQL } from "./hash.ts";
import { INFO_SQL } from "./info.ts";
import { NODE_SQL } from "./node.ts";
import { REPSET_SQL } from "./repset.ts";
import { SUBSCRIPTION_SQL } from "./subscription.ts";

/** The function groups, in the order they are created. */
export const API_SQL: readonly string[] = [
  HASH_HELPERS_SQL,
  HASH_SQL,
  COMMON_SQL,
  INFO_SQL,
  NODE_SQL,
  REPSET_SQL,
  CHANNEL_SQL,
  SUBSCRIPTION_SQL,
  APPLY_SUPPORT_SQL,
  CONFLICTS_SQL,
].filter((group) => group.trim() !== "");
