/**
 * Initial synchronization of a subscription: the provider's schema through
 * pg_dump (`structure_sync.ts`) and its table contents through COPY under the
 * slot's exported snapshot (`data_copy.ts`). Walking the sync states is the
 * daemon's; this folder copies.
 */
export {
  openChannel,
  quietPoint,
  readSubscriptionChannel,
  saveSubscriptionChannel,
  type SubscriptionChannel,
} from "./channel.ts";
export { copyTables, type CopyTablesOptions, type TableCopyResult } from "./data_copy.ts";
export { listRowFilters, listSubscribedTables, type TableToCopy } from "./subscribed_tables.ts";
export {
  dumpSchema,
  type DumpSchemaOptions,
  findPgDump,
  type PgDumpTool,
  restoreSchema,
} from "./structure_sync.ts";
export { StructureSyncError, type StructureSyncErrorCode } from "./errors.ts";
export {
  initializeSubscription,
  type SubscriptionSyncOptions,
  synchronizeTables,
} from "./subscription_sync.ts";
export {
  readTableSyncStates,
  setSubscriptionSyncStatus,
  setTableSyncStatus,
  type SyncStatusLetter,
  type TableSyncState,
} from "./sync_status.ts";
