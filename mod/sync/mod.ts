/**
 * Initial synchronization of a subscription: the provider's schema through
 * pg_dump (`structure_sync.ts`) and its table contents through COPY under the
 * slot's exported snapshot (`data_copy.ts`), and the sync state machine
 * (`sync_states.ts`), moved by the sync itself and, as the stream passes the
 * positions it waits for, by `stream_gate.ts`.
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
export {
  DataCopyError,
  type DataCopyErrorCode,
  StructureSyncError,
  type StructureSyncErrorCode,
} from "./errors.ts";
export {
  initializeSubscription,
  type SubscriptionSyncOptions,
  synchronizeTables,
} from "./subscription_sync.ts";
export {
  needsCopy,
  needsInitialSync,
  readTableSyncStates,
  type SyncState,
  syncStateOfLetter,
  type TableSyncState,
} from "./sync_states.ts";
export { StreamSyncGate } from "./stream_gate.ts";
