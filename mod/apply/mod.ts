/**
 * Applying decoded remote transactions to the local database, exactly once:
 * remote→local relation mapping, the SQL writer, one local transaction per
 * remote one with the replication origin committed alongside (many in
 * flight on one pipelining session: the commit window), and the flush
 * tracker that says where to resume and what to confirm. Reading the
 * replication stream is the caller's (`daemon/`).
 *
 * @example Applying a stream (transport and decoder wired by the caller)
 * ```ts ignore
 * import { FlushTracker, TransactionApplier } from "./mod.ts";
 * import { PgoutputStreamDecoder } from "../pgoutput/mod.ts";
 * import { resolveConnectOptions } from "../pg/mod.ts";
 *
 * const applier = await TransactionApplier.open(resolveConnectOptions(subscriberDsn), {
 *   originName: "spk_app_n1_sub1",
 *   localNodeId: 2,
 *   remoteNodeId: 1,
 * });
 * const tracker = new FlushTracker(subscriberSql, "spk_app_n1_sub1");
 * const stream = await conn.startReplication("spk_app_n1_sub1", {
 *   startLsn: await tracker.resumeLsn(),
 *   pluginOptions: options, // chosen without "streaming" and "two_phase"
 * });
 * const decoder = new PgoutputStreamDecoder(protoVersion);
 * for await (const batch of stream) {
 *   for (const item of batch) {
 *     if (item.type === "xlogdata") {
 *       applier.noteWalEnd(item.walEnd);
 *       await applier.applyMessage(decoder.decode(item.data));
 *     } else if (!applier.inTransaction) {
 *       await applier.drain(); // the COMMITs in flight count only once answered
 *       tracker.noteIdleKeepalive(item.walEnd);
 *     }
 *   }
 *   stream.reportProgress(await tracker.confirmableLsn());
 * }
 * ```
 *
 * @module
 */
export {
  CONFLICT_TYPES,
  type ConflictResolution,
  type ConflictSettings,
  type ConflictType,
  DEFAULT_CONFLICT_SETTINGS,
} from "./conflicts/settings.ts";
export {
  DEFAULT_EXCEPTION_SETTINGS,
  type ExceptionBehaviour,
  type ExceptionLogging,
  type ExceptionSettings,
} from "./exception_mode.ts";
export { ApplyError, type ApplyErrorCode, type ApplyErrorOptions } from "./errors.ts";
export { CommitsInDoubt } from "./commits_in_doubt.ts";
export { FlushTracker, type OriginPositions } from "./flush_tracker.ts";
export { type LocalRelation, type MappedColumn, mapRelation } from "./relation_map.ts";
export {
  loadRowFilters,
  ROW_FILTER_MESSAGE_PREFIX,
  type RowFilterDocument,
  RowFilterState,
  saveRowFilters,
} from "./row_filters.ts";
export { APPLY_QUEUED_SEQUENCE_SQL } from "./queued_commands.ts";
export { SqlWriter, type SqlWriterOptions, type WriteFailure } from "./sql_writer.ts";
export { TransactionApplier, type TransactionApplierOptions } from "./transaction_applier.ts";
export {
  type FilterOutcome,
  TransactionFilter,
  type TransactionFilterOptions,
} from "./transaction_filter.ts";
