/**
 * The sync state machine of a subscription, as Spock's `spock_sync.c` walks
 * it, done from outside the server: the slot's exported snapshot fixes one
 * point in the provider's history; structure and data are copied as of that
 * point and the stream starts right after it, so nothing is missed or applied
 * twice.
 *
 *   init (i) ─ CREATE_REPLICATION_SLOT … EXPORT → consistent point C, snapshot S
 *              (with data: what S holds of the provider's peers, peer_positions.ts)
 *   structure (s) ─ pg_dump --section=pre-data --snapshot=S → restore
 *   data (d) ─ COPY every table under S (parallel sessions, origin-tagged)
 *   constraints (c) ─ pg_dump --section=post-data → restore
 *   catchup (u, at C) ─ origin advanced to C; the stream starts at C
 *   ready (r) ─ set by the stream once it has caught up
 *
 * Each restore commits with the state after it, so a failure anywhere
 * resumes: before the pre-data restore committed, from the start; after it,
 * from the data copy (a new slot, tables truncated), keeping the structure.
 *
 * Tables added later (`sub_alter_sync`, `sub_resync_table`) go through
 * {@link synchronizeTables}: a temporary slot's snapshot at T, the copy, and
 * the table marked `y` at T. The stream skips that table's transactions
 * committed before T (they are in the copy) and marks it `r` once past T.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { connectDatabase, copyOriginName, ORIGIN_SQL } from "../catalog/mod.ts";
import { formatLsn, type Lsn, type PgConnectOptions, quoteLiteral } from "../pg/mod.ts";
import { ReplicationConnection } from "../transport/mod.ts";
import { copyTables } from "./data_copy.ts";
import { saveRowFilters } from "../apply/mod.ts";
import { openChannel, saveSubscriptionChannel } from "./channel.ts";
import { PeerPositionProbe, recordPeerPositions } from "./peer_positions.ts";
import { synchronizeSequences } from "./sequences.ts";
import { listRowFilters, listSubscribedTables, type TableToCopy } from "./subscribed_tables.ts";
import { dumpSchema, findPgDump, restoreSchema } from "./structure_sync.ts";
import {
  readTableSyncStates,
  setSubscriptionSyncState,
  setTableSyncState,
  type SyncState,
} from "./sync_states.ts";

const log = getLogger(["spock", "sync"]);

/** The subscription being synchronized and where its data comes from. */
export interface SubscriptionSyncOptions {
  subscriptionId: number;
  subscriptionName: string;
  slotName: string;
  replicationSets: string[];
  /** `i`, `s`, `d` or `f` (structure and data). */
  syncKind: string;
  /** The subscription's current sync state. */
  syncState: SyncState;
  skipSchemas: string[];
  /** The subscriber database. */
  local: postgres.Sql;
  /** Options for new subscriber connections (the data copy opens sessions of its own). */
  localOptions: PgConnectOptions;
  providerOptions: PgConnectOptions;
  /** The provider's DSN, for pg_dump. */
  providerDsn: string;
  /** Tables copied at once. */
  connections: number;
  signal?: AbortSignal;
}

/**
 * Runs the subscription's initial sync ({@link needsInitialSync}) and returns
 * the LSN the stream must start from. Leaves the state at catchup.
 *
 * Each step that changes the subscriber commits together with the state
 * that records it, so an attempt interrupted anywhere (a crash, SIGKILL)
 * resumes on the next one: at init or structure nothing was restored yet and
 * everything starts over; at data or constraints the provider's pre-data structure is
 * in place and is kept, and the data is copied again (the tables truncated
 * first) under a new slot's snapshot, then the post-data part follows.
 */
export async function initializeSubscription(options: SubscriptionSyncOptions): Promise<Lsn> {
  const structure = options.syncKind === "s" || options.syncKind === "f";
  const data = options.syncKind === "d" || options.syncKind === "f";
  const structureRestored = structure &&
    (options.syncState === "data" || options.syncState === "constraints");
  const { local, subscriptionId } = options;
  const provider = connectDatabase(options.providerOptions, { max: 1 });
  const repl = await ReplicationConnection.open(options.providerOptions);
  try {
    // Before anything changes: a structure sync needs a pg_dump for this provider.
    const tool = structure ? await findPgDump(repl.serverVersionNum) : undefined;
    await dropInactiveSlot(provider, options.slotName);
    const retry = options.syncState !== "init" ||
      (await readTableSyncStates(local, subscriptionId)).length > 0;
    if (!structureRestored) {
      await setSubscriptionSyncState(local, subscriptionId, { state: "init" });
    }
    // The channel's publications must be older than the slot to be streamed from it.
    const publications = await openChannel(provider, options.replicationSets);
    await saveSubscriptionChannel(local, subscriptionId, {
      sets: options.replicationSets,
      publications,
      validFrom: 0n,
      previousPublications: [],
    });
    const probe = data
      ? await PeerPositionProbe.start(provider, {
        providerOptions: options.providerOptions,
        subscriberNodeId: await localNodeId(local),
        slotName: options.slotName,
      })
      : undefined;
    const slot = await repl.createSlot(options.slotName, { snapshot: "export" }).catch(
      async (error) => {
        await probe?.abandon();
        throw error;
      },
    );
    const consistent = slot.consistentPoint;
    log.info("Slot {slot} created on the provider at {lsn}", {
      slot: options.slotName,
      lsn: formatLsn(consistent),
    });
    const peers = await probe?.finish(consistent, publications) ?? [];
    const dump = (section: "pre-data" | "post-data") =>
      dumpSchema({
        tool: tool!,
        dsn: options.providerDsn,
        snapshotName: slot.snapshotName!,
        section,
        excludeSchemas: options.skipSchemas,
        signal: options.signal,
      });
    const rowFilters = await inSnapshot(provider, slot.snapshotName!, listRowFilters);
    let postData: string | undefined;
    if (tool !== undefined) {
      if (!structureRestored) {
        await setSubscriptionSyncState(local, subscriptionId, { state: "structure" });
        const preData = await dump("pre-data");
        await restoreSchema(local, preData, {
          signal: options.signal,
          thenInTransaction: (tx) =>
            setSubscriptionSyncState(tx, subscriptionId, { state: "data" }),
        });
        log.info("Structure of the provider restored (pre-data)");
      } else {
        log.info(
          "Structure of the provider restored by an earlier attempt: copying the data again",
        );
      }
      postData = await dump("post-data");
    }
    if (data) {
      await setSubscriptionSyncState(local, subscriptionId, { state: "data" });
      const tables = await tablesInSnapshot(provider, slot.snapshotName!, options);
      for (const table of tables) {
        await setTableSyncState(local, subscriptionId, { ...table, state: "data" });
      }
      await copyInto(options, slot.snapshotName!, tables, { truncate: retry, lsn: consistent });
      await synchronizeSequences(provider, local, options.replicationSets);
      // The copy holds the provider's peers' changes up to these positions.
      await recordPeerPositions(local, peers);
      for (const peer of peers) {
        log.info("The copy holds node {node}'s changes up to {lsn}", {
          node: peer.nodeId,
          lsn: formatLsn(peer.lsn),
        });
      }
    }
    // The stream starts at the slot's consistent point, with the filters of that point.
    await saveRowFilters(local, subscriptionId, rowFilters);
    await local.unsafe(ORIGIN_SQL.createIfMissing, [options.slotName]);
    await local.unsafe(ORIGIN_SQL.advance, [options.slotName, formatLsn(consistent)]);
    const caughtUp = { state: "catchup" as const, lsn: consistent };
    if (postData !== undefined) {
      await setSubscriptionSyncState(local, subscriptionId, { state: "constraints" });
      await restoreSchema(local, postData, {
        signal: options.signal,
        thenInTransaction: (tx) => setSubscriptionSyncState(tx, subscriptionId, caughtUp),
      });
      log.info("Constraints and indexes of the provider restored (post-data)");
    } else {
      await setSubscriptionSyncState(local, subscriptionId, caughtUp);
    }
    return consistent;
  } finally {
    await repl.close().catch(() => {});
    await provider.end({ timeout: 2 }).catch(() => {});
  }
}

/**
 * Copies `tables` (by name) again or for the first time, truncating each
 * first, and marks each synchronized at the snapshot's LSN. Run while the
 * subscription's stream is stopped.
 */
export async function synchronizeTables(
  options: SubscriptionSyncOptions,
  tables: Array<{ nspname: string; relname: string }>,
): Promise<void> {
  const provider = connectDatabase(options.providerOptions, { max: 1 });
  const repl = await ReplicationConnection.open(options.providerOptions);
  try {
    const slot = await repl.createSlot(`spk_tsync_${options.subscriptionId}`, {
      temporary: true,
      snapshot: "export",
    });
    const wanted = new Set(tables.map((t) => `${t.nspname}.${t.relname}`));
    const listed = (await tablesInSnapshot(provider, slot.snapshotName!, options))
      .filter((t) => wanted.has(`${t.nspname}.${t.relname}`));
    for (const table of tables) {
      if (!listed.some((t) => t.nspname === table.nspname && t.relname === table.relname)) {
        log.warning("Table {table} is in no replication set of the subscription: not copied", {
          table: `${table.nspname}.${table.relname}`,
        });
        await setTableSyncState(options.local, options.subscriptionId, {
          ...table,
          state: "ready",
        });
      }
    }
    for (const table of listed) {
      await setTableSyncState(options.local, options.subscriptionId, { ...table, state: "data" });
    }
    await copyInto(options, slot.snapshotName!, listed, {
      truncate: true,
      lsn: slot.consistentPoint,
      done: "synchronized",
    });
  } finally {
    await repl.close().catch(() => {});
    await provider.end({ timeout: 2 }).catch(() => {});
  }
}

async function copyInto(
  options: SubscriptionSyncOptions,
  snapshotName: string,
  tables: TableToCopy[],
  how: { truncate: boolean; lsn: Lsn; done?: SyncState },
): Promise<void> {
  const connections = Math.max(1, Math.min(options.connections, tables.length));
  await copyTables({
    providerOptions: options.providerOptions,
    snapshotName,
    localOptions: options.localOptions,
    tables,
    connections,
    originNames: Array.from({ length: connections }, (_, i) => copyOriginName(options.slotName, i)),
    truncate: how.truncate,
    signal: options.signal,
    onTableCopied: async (result) => {
      await setTableSyncState(options.local, options.subscriptionId, {
        nspname: result.nspname,
        relname: result.relname,
        state: how.done ?? "ready",
        lsn: how.lsn,
      });
    },
  });
}

/** Runs `read` on the provider inside the slot's exported snapshot. */
async function inSnapshot<T>(
  provider: postgres.Sql,
  snapshotName: string,
  read: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return await provider.begin("isolation level repeatable read read only", async (tx) => {
    await tx.unsafe(`set transaction snapshot ${quoteLiteral(snapshotName)}`);
    return await read(tx);
  }) as T;
}

async function tablesInSnapshot(
  provider: postgres.Sql,
  snapshotName: string,
  options: SubscriptionSyncOptions,
): Promise<TableToCopy[]> {
  const tables = await inSnapshot(
    provider,
    snapshotName,
    (tx) => listSubscribedTables(tx, options.replicationSets),
  );
  return tables.filter((table) => !options.skipSchemas.includes(table.nspname));
}

async function localNodeId(local: postgres.Sql): Promise<string> {
  const [node] = await local.unsafe("select node_id::text from spock.local_node");
  if (node === undefined) throw new Error("Cannot synchronize: this database has no spock node");
  return node.node_id;
}

async function dropInactiveSlot(provider: postgres.Sql, slotName: string): Promise<void> {
  const [slot] = await provider.unsafe(
    "select active_pid from pg_replication_slots where slot_name = $1",
    [slotName],
  );
  if (slot === undefined) return;
  if (slot.active_pid !== null) {
    throw new Error(
      `Cannot initialize: slot "${slotName}" is in use on the provider by process ${slot.active_pid}`,
    );
  }
  log.info("Dropping slot {slot} left by an earlier, unfinished sync", { slot: slotName });
  await provider.unsafe("select pg_drop_replication_slot($1)", [slotName]);
}
