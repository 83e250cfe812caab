/**
 * The data path of one subscription once synced: START_REPLICATION from the
 * origin's position → pgoutput decoder → transaction filter → applier, with
 * feedback to the provider from the flush tracker only. Tells the sync's
 * stream gate the positions it has passed, so that the sync states waiting
 * on the stream move on.
 *
 * Stops when `signal` aborts: the transaction in flight is rolled back (the
 * provider sends it again next time), a final status carries the flushed LSN.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import {
  type CommitsInDoubt,
  type ConflictSettings,
  type ExceptionSettings,
  type FilterOutcome,
  FlushTracker,
  loadRowFilters,
  type RowFilterDocument,
  RowFilterState,
  saveRowFilters,
  TransactionApplier,
  TransactionFilter,
} from "../apply/mod.ts";
import { formatLsn, type Lsn, type PgConnectOptions, pgTimestampNow } from "../pg/mod.ts";
import { type Commit, PgoutputStreamDecoder } from "../pgoutput/mod.ts";
import {
  listRowFilters,
  openChannel,
  quietPoint,
  readSubscriptionChannel,
  saveSubscriptionChannel,
  StreamSyncGate,
  type SubscriptionChannel,
} from "../sync/mod.ts";
import {
  choosePgoutputOptions,
  type CopyBothMessage,
  type PrimaryKeepalive,
  ReplicationConnection,
  type ReplicationStream,
} from "../transport/mod.ts";
import { settleWithin, sleep, untilAborted } from "./backoff.ts";

import type { SubscriptionRecord } from "./subscription_record.ts";

/** Cleanup on a local session that may be dead waits no longer than this. */
const CLEANUP_MS = 2_000;
/**
 * No data for this long and the link is idle: the stream asks the provider
 * for a keepalive, and the one that comes records the link as caught up
 * (spock.progress and lag_tracker reach the last commit).
 */
const IDLE_MS = 500;
/** While the link stays idle, it is recorded as caught up at most this often. */
const CAUGHT_UP_INTERVAL_MS = 1000;

const log = getLogger(["spock", "daemon"]);

/** Where and how one subscription streams. */
export interface StreamApplyOptions {
  subscription: SubscriptionRecord;
  /** The subscriber database (a few sessions). */
  local: postgres.Sql;
  /** The subscriber database's connection settings: the apply session has its own. */
  localOptions: PgConnectOptions;
  /** An ordinary session on the provider, for its publication names. */
  provider: postgres.Sql;
  providerOptions: PgConnectOptions;
  /** How often feedback goes to the provider (ms). */
  statusIntervalMs: number;
  /** Nothing received from the provider for this long (ms) ends the stream; 0: never. */
  receiveTimeoutMs: number;
  /** Wait for the local WAL flush at each applied commit (engine.synchronous_commit). */
  synchronousCommit: boolean;
  /** Conflict settings: the node's engine settings with the subscription's overrides. */
  conflicts: ConflictSettings;
  /** Transactions and bytes in flight on the apply session (engine.apply_window_*). */
  window: { transactions: number; bytes: number };
  /** Multi-row INSERTs for runs of INSERTs (engine.batch_inserts). */
  batchInserts: boolean;
  /** Exception handling settings. */
  exceptions: ExceptionSettings;
  /** Commit LSN of a transaction to apply in exception mode (it failed too big to replay). */
  exceptionModeAt?: Lsn;
  /** The subscription's commits in doubt, kept by its worker from one attempt to the next. */
  commitsInDoubt: CommitsInDoubt;
  /** Commit LSN of a transaction to apply with conflict handling (it conflicted too big to replay). */
  carefulAt?: Lsn;
  signal: AbortSignal;
  /** Called once the stream is running. */
  onStreaming?: () => void | Promise<void>;
}

/** How many transactions a worker applied; read by the daemon's summary. */
export interface StreamCounters {
  transactions: number;
  skipped: number;
  lastRemoteCommitLsn: Lsn;
}

const PUBLICATIONS_SQL = `
select p.pubname::text as pubname, s.set_name::text as set_name
from spock._set_publication p
join spock.replication_set s on s.set_id = p.set_id
join spock.local_node l on l.node_id = s.set_nodeid
where s.set_name = any($1::text[])
order by array_position($1::text[], s.set_name::text)`;

/** Streams and applies until `signal` aborts or something fails (thrown). */
export async function streamAndApply(
  options: StreamApplyOptions,
  counters: StreamCounters,
): Promise<void> {
  const { subscription: sub, local, signal } = options;
  const channel = await currentChannel(options);
  const applier = await TransactionApplier.open(options.localOptions, {
    originName: sub.slotName,
    localNodeId: sub.localNodeId,
    remoteNodeId: sub.providerNodeId,
    rowFilters: new RowFilterState(await rowFiltersAtStart(options), sub.replicationSets),
    replicationSets: sub.replicationSets,
    synchronousCommit: options.synchronousCommit,
    commitsInDoubt: options.commitsInDoubt,
    conflicts: options.conflicts,
    batchInserts: options.batchInserts,
    subscriptionId: sub.id,
    subscriptionName: sub.name,
    exceptions: options.exceptions,
    exceptionModeAt: options.exceptionModeAt,
    carefulAt: options.carefulAt,
    window: options.window,
  });
  const repl = await ReplicationConnection.open(options.providerOptions).catch(async (error) => {
    await settleWithin(applier.close(), CLEANUP_MS);
    throw error;
  });
  try {
    const startLsn = applier.appliedEndLsn;
    // Before its channel may be streamed, the old publications, then a switch.
    const switching = startLsn < channel.validFrom;
    const publications = switching ? channel.previousPublications : channel.publications;
    const onlyLocal = sub.forwardOrigins.length === 0;
    const serverFilters = onlyLocal && repl.serverVersionNum >= 160000;
    const chosen = choosePgoutputOptions(repl.serverVersionNum, {
      publications,
      origin: serverFilters ? "none" : undefined,
      // Row-filter announcements travel as logical messages.
      messages: true,
    });
    const stream = await repl.startReplication(sub.slotName, {
      startLsn,
      pluginOptions: chosen.options,
      statusIntervalMs: options.statusIntervalMs,
      idleReplyMs: IDLE_MS,
      receiveTimeoutMs: options.receiveTimeoutMs || undefined,
    });
    log.info("Streaming {subscription} from slot {slot} at {lsn} (publications {publications})", {
      subscription: sub.name,
      slot: sub.slotName,
      lsn: formatLsn(startLsn),
      publications,
    });
    const stop = () => void stream.stop();
    signal.addEventListener("abort", stop, { once: true });
    const decoder = new PgoutputStreamDecoder(chosen.protoVersion);
    const sync = await StreamSyncGate.open(local, {
      id: sub.id,
      name: sub.name,
      state: sub.syncState,
    });
    const session = new StreamSession(options, counters, {
      switchAt: switching ? channel.validFrom : undefined,
      applier,
      stream,
      decoder,
      sync,
      tracker: new FlushTracker(local, sub.slotName),
      filter: new TransactionFilter({
        skipOriginated: onlyLocal && !serverFilters,
        skipLsn: sub.skipLsn,
        relations: decoder.relations,
        applyTable: sync.tablesPending ? (ns, rel, lsn) => sync.applies(ns, rel, lsn) : undefined,
      }),
    });
    await options.onStreaming?.();
    try {
      for await (const batch of stream) {
        // A call stuck on a dead local session must not keep the stream open.
        await untilAborted(session.applyBatch(batch), signal);
        if (signal.aborted) break;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      await settleWithin(applier.close(), CLEANUP_MS);
      await settleWithin(session.confirm(), CLEANUP_MS);
      await stream.stop();
    }
    if (!signal.aborted) throw new Error("The provider ended the replication stream");
  } finally {
    // Also when START_REPLICATION failed (a slot still held by a dying walsender).
    await settleWithin(applier.close(), CLEANUP_MS);
    await settleWithin(repl.close(), CLEANUP_MS);
  }
}

/**
 * The stream has applied past the point from which the subscription's
 * channel may be streamed: the worker starts again at once, streaming it.
 */
export class ChannelSwitch extends Error {
  constructor() {
    super("Switching to the subscription's channel");
    this.name = "ChannelSwitch";
  }
}

/** The parts of one running stream. */
interface StreamParts {
  /** While the old publications are streamed: where the channel may take over. */
  switchAt: Lsn | undefined;
  applier: TransactionApplier;
  stream: ReplicationStream;
  decoder: PgoutputStreamDecoder;
  tracker: FlushTracker;
  filter: TransactionFilter;
  sync: StreamSyncGate;
}

/** One stream's loop body: messages to the applier, feedback to the provider, sync states. */
class StreamSession {
  #options: StreamApplyOptions;
  #counters: StreamCounters;
  #parts: StreamParts;
  #lastStatus = performance.now();
  #lastCaughtUp = 0;
  #lastDataAt = 0;

  constructor(options: StreamApplyOptions, counters: StreamCounters, parts: StreamParts) {
    this.#options = options;
    this.#counters = counters;
    this.#parts = parts;
  }

  /** Reports the flushed position now. */
  async confirm(): Promise<void> {
    this.#parts.stream.reportProgress(await this.#parts.tracker.confirmableLsn());
    this.#lastStatus = performance.now();
  }

  /** Applies one batch of stream messages, in order. */
  async applyBatch(batch: CopyBothMessage[]): Promise<void> {
    const { applier, decoder, filter } = this.#parts;
    const { subscription: sub, signal } = this.#options;
    for (const item of batch) {
      if (signal.aborted) return;
      if (item.type === "keepalive") {
        await this.#keepalive(item);
        continue;
      }
      this.#lastDataAt = performance.now();
      const message = decoder.decode(item.data);
      applier.noteWalEnd(item.walEnd);
      for (const passed of filter.filter(message)) {
        if (passed.type === "begin" && sub.applyDelayMs > 0) {
          await delayApply(passed.commitTime, sub.applyDelayMs, signal);
          if (signal.aborted) return;
        }
        await applier.applyMessage(passed, item.data.length);
      }
      if (message.type === "commit") await this.#afterCommit(message, filter.lastOutcome);
    }
    if (performance.now() - this.#lastStatus >= this.#options.statusIntervalMs) {
      await this.confirm();
    }
    await applier.flushCounters();
    const { switchAt } = this.#parts;
    if (switchAt !== undefined && applier.appliedEndLsn >= switchAt && !applier.inTransaction) {
      await this.confirm();
      throw new ChannelSwitch();
    }
  }

  async #keepalive(keepalive: PrimaryKeepalive): Promise<void> {
    const { applier, filter, tracker, sync, stream } = this.#parts;
    if (filter.inTransaction || applier.inTransaction) return;
    // While data flows the walsender sends a keepalive after nearly every
    // transaction: waiting there for the commit window would cost a round trip
    // per transaction, and the commits move the positions anyway. Unless the
    // server asks for a reply (a shutdown waits for it) or the link has still
    // to be marked caught up.
    const flowing = performance.now() - this.#lastDataAt < IDLE_MS;
    if (flowing && sync.caughtUp && !keepalive.replyRequested) return;
    // Everything before the keepalive must be committed before its position counts.
    await applier.drain();
    tracker.noteIdleKeepalive(keepalive.walEnd);
    await sync.passedIdle(keepalive.walEnd);
    // Confirm at once: a server shutting down waits for this before it stops.
    stream.reportProgress(tracker.confirmableNow(applier.appliedEndLsn));
    if (keepalive.replyRequested) stream.sendStatus(false);
    // Idle for a while and everything sent is applied: the link is caught up.
    // (A keepalive in the middle of a backlog says only how far the provider has sent.)
    const now = performance.now();
    if (
      now - this.#lastDataAt >= IDLE_MS &&
      now - this.#lastCaughtUp >= CAUGHT_UP_INTERVAL_MS
    ) {
      this.#lastCaughtUp = now;
      await applier.noteCaughtUp(keepalive.walEnd);
    }
  }

  async #afterCommit(commit: Commit, outcome: FilterOutcome): Promise<void> {
    const counters = this.#counters;
    const sub = this.#options.subscription;
    if (outcome === "originated") {
      counters.skipped++;
      return;
    }
    counters.transactions++;
    counters.lastRemoteCommitLsn = commit.commitLsn;
    if (sub.skipLsn !== 0n) {
      const matched = outcome === "skipped_lsn";
      log.warning(
        matched
          ? "skip-LSN of subscription {subscription} cleared: transaction at {lsn} skipped"
          : "skip-LSN of subscription {subscription} cleared: transaction at {lsn} did not match {skip}",
        { subscription: sub.name, lsn: formatLsn(commit.commitLsn), skip: formatLsn(sub.skipLsn) },
      );
      await this.#options.local.unsafe(
        "update spock.subscription set sub_skip_lsn = '0/0' where sub_id = $1::int8::oid",
        [sub.id],
      );
      sub.skipLsn = 0n;
      this.#parts.filter.clearSkipLsn();
    }
    if (!this.#parts.sync.tablesPending) return;
    // A table becomes ready only once the commits before its position are acknowledged.
    await this.#parts.applier.drain();
    await this.#parts.sync.passedCommit(commit.endLsn);
  }
}

/**
 * The row filters as of the position the stream starts from: saved by the
 * initial sync and by every applied announcement since. A subscription
 * synchronized by an older spock has none saved; the provider's current
 * ones are then taken (and saved).
 */
async function rowFiltersAtStart(options: StreamApplyOptions): Promise<RowFilterDocument> {
  const { local, subscription } = options;
  const saved = await loadRowFilters(local, subscription.id);
  if (saved !== undefined) return saved;
  const current = await listRowFilters(options.provider);
  await saveRowFilters(local, subscription.id, current);
  return current;
}

/**
 * The channel the subscription streams: the one recorded, or, when it has
 * none yet (synchronized by an older spock) or its sets have changed since,
 * a new one for its sets, recorded with the point from which it may be
 * streamed and the publications to stream until then.
 */
async function currentChannel(options: StreamApplyOptions): Promise<SubscriptionChannel> {
  const { local, provider, subscription: sub, signal } = options;
  const recorded = await readSubscriptionChannel(local, sub.id);
  const sameSets = (sets: string[]) =>
    JSON.stringify([...new Set(sets)].sort()) ===
      JSON.stringify([...new Set(sub.replicationSets)].sort());
  if (recorded !== undefined && sameSets(recorded.sets)) return recorded;
  const previousPublications = recorded?.publications ??
    await providerPublications(provider, sub.replicationSets);
  const publications = await openChannel(provider, sub.replicationSets);
  const channel: SubscriptionChannel = {
    sets: sub.replicationSets,
    publications,
    validFrom: await quietPoint(provider, signal),
    previousPublications,
  };
  await saveSubscriptionChannel(local, sub.id, channel);
  log.info(
    "Subscription {subscription} streams its sets' channel from {lsn} on (publications {publications})",
    { subscription: sub.name, lsn: formatLsn(channel.validFrom), publications },
  );
  return channel;
}

/** The provider's own publications of `sets` (before channels), in the subscription's order. */
async function providerPublications(provider: postgres.Sql, sets: string[]): Promise<string[]> {
  const rows = await provider.unsafe(PUBLICATIONS_SQL, [sets]);
  const found = new Set(rows.map((row) => row.set_name));
  const missing = sets.filter((set) => !found.has(set));
  if (rows.length === 0) {
    throw new Error(
      `Cannot stream: none of the replication sets ${JSON.stringify(sets)} exists on the provider`,
    );
  }
  if (missing.length > 0) {
    log.warning("Replication sets {missing} do not exist on the provider; streaming the others", {
      missing,
    });
  }
  return rows.map((row) => row.pubname);
}

/** Waits until `commitTime + delay` (apply_delay), measured on this host's clock. */
async function delayApply(commitTime: bigint, delayMs: number, signal: AbortSignal) {
  const dueMicros = commitTime + BigInt(delayMs) * 1000n;
  const waitMs = Number((dueMicros - pgTimestampNow()) / 1000n);
  if (waitMs > 0) await sleep(waitMs, signal);
}
