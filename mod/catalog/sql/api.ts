/**
 * The SQL API in install order: every function of the spock schema, as
 * `CREATE OR REPLACE` statements in `api/*.sql`, one file per area, each run
 * as one query (a server error's position points into its file).
 */
import hashHelpers from "./api/01_hash_helpers.sql" with { type: "text" };
import hash from "./api/02_hash.sql" with { type: "text" };
import common from "./api/03_common.sql" with { type: "text" };
import info from "./api/04_info.sql" with { type: "text" };
import infoDdl from "./api/05_info_ddl.sql" with { type: "text" };
import node from "./api/06_node.sql" with { type: "text" };
import repset from "./api/07_repset.sql" with { type: "text" };
import repsetFilter from "./api/08_repset_filter.sql" with { type: "text" };
import repsetTable from "./api/09_repset_table.sql" with { type: "text" };
import repsetSeq from "./api/10_repset_seq.sql" with { type: "text" };
import channel from "./api/11_channel.sql" with { type: "text" };
import subscriptionHelpers from "./api/12_subscription_helpers.sql" with { type: "text" };
import subscriptionCreate from "./api/13_subscription_create.sql" with { type: "text" };
import subscriptionDrop from "./api/14_subscription_drop.sql" with { type: "text" };
import subscriptionAlter from "./api/15_subscription_alter.sql" with { type: "text" };
import subscriptionShow from "./api/16_subscription_show.sql" with { type: "text" };
import applySupport from "./api/17_apply_support.sql" with { type: "text" };
import conflicts from "./api/18_conflicts.sql" with { type: "text" };
import queue from "./api/19_queue.sql" with { type: "text" };
import autoDdl from "./api/20_auto_ddl.sql" with { type: "text" };
import sequenceIds from "./api/21_sequence_ids.sql" with { type: "text" };
import readonly from "./api/22_readonly.sql" with { type: "text" };
import reconcile from "./reconcile.sql" with { type: "text" };

/**
 * Run after the API on every install that creates it: brings objects an
 * older catalog made (triggers on tables already in sets) up to date.
 */
export const RECONCILE_SQL: string = reconcile;

/** The API files' texts, in the order they are created. */
export const API_SQL: readonly string[] = [
  hashHelpers,
  hash,
  common,
  info,
  infoDdl,
  node,
  repset,
  repsetFilter,
  repsetTable,
  repsetSeq,
  channel,
  subscriptionHelpers,
  subscriptionCreate,
  subscriptionDrop,
  subscriptionAlter,
  subscriptionShow,
  applySupport,
  conflicts,
  queue,
  autoDdl,
  sequenceIds,
  readonly,
];
