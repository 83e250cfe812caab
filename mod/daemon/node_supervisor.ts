/**
 * The supervisor of one served node: keeps one worker per enabled
 * subscription of the node, in step with the catalog. It LISTENs on
 * `spock_catalog` (sent by every SQL API call that changes the catalog) and
 * re-reads the catalog on every notification and every few seconds as a
 * safety net; a subscription whose settings changed gets a fresh worker.
 * Beside that it deletes old conflict resolutions and tombstones, at start and
 * hourly, and pushes the node's replicated sequences ahead to its subscribers,
 * at start and every `sequence_sync_interval` seconds. At start it records the
 * config's DDL replication settings as the node's defaults of Spock's.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { connectDatabase, ORIGIN_SQL } from "../catalog/mod.ts";
import type { EngineSettings } from "../config/mod.ts";
import { type NodeCounts, type NodeStatus, readNodeCounts, readNodeStatus } from "./node_status.ts";
import { maskDsn, resolveConnectOptions } from "../pg/mod.ts";
import { sleep } from "./backoff.ts";
import { CatalogListener } from "./catalog_listener.ts";
import { waitForServedNode } from "./served_node.ts";
import {
  readSubscriptions,
  subscriptionFingerprint,
  type SubscriptionRecord,
} from "./subscription_record.ts";
import { SubscriptionWorker } from "./subscription_worker.ts";

const log = getLogger(["spock", "daemon"]);

const REREAD_MS = 5_000;
const READ_ONLY_POLL_MS = 1_000;
/** While the node is unreachable, this often a log line says it still is. */
const DOWN_LOG_INTERVAL_MS = 60_000;
const CLEANUP_INTERVAL_MS = 3_600_000;

/** A node this daemon serves. */
export interface ServedNode {
  /** The name in the config file; without one (`--dsn`), the node's name in its catalog. */
  name?: string;
  dsn: string;
}

/** Options shared by every supervisor of a daemon. */
export interface NodeSupervisorOptions {
  engine: EngineSettings;
  daemon: string;
  env: Record<string, string | undefined>;
}

/** What a worker has done, for status output. */
export interface WorkerSummary {
  node: string;
  subscription: string;
  provider: string;
  transactions: number;
  skipped: number;
  failures: number;
}

/** A served node as its catalog and this daemon's workers show it now (metrics, health). */
export interface NodeSnapshot {
  node: string;
  status: NodeStatus;
  counts: NodeCounts;
  workers: WorkerSummary[];
}

/**
 * Whether a running worker must start over: its settings changed, a skip LSN
 * was set (clearing a used one is the worker's own doing), or tables wait for
 * a sync while it streams.
 */
function needsRestart(
  record: SubscriptionRecord,
  entry: { worker: SubscriptionWorker; fingerprint: string },
): boolean {
  if (subscriptionFingerprint(record) !== entry.fingerprint) return true;
  if (record.skipLsn !== 0n && record.skipLsn !== entry.worker.record.skipLsn) return true;
  return record.pendingTables > 0 && entry.worker.streaming;
}

/**
 * Drops the replication origin of a dropped subscription: sub_drop cannot
 * while the worker's session still holds it, so the daemon finishes the job
 * once the worker has stopped.
 */
async function dropOrigin(sql: postgres.Sql, originName: string): Promise<void> {
  try {
    await sql.unsafe(ORIGIN_SQL.dropIfUnsubscribed, [originName]);
  } catch (error) {
    log.warning("Cannot drop replication origin {origin} of a dropped subscription: {error}", {
      origin: originName,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Runs `task` now and then every `intervalMs` until `signal` aborts. A
 * failure, such as the node being down, goes to `onFailure` and the task
 * runs again at the next interval.
 */
async function repeatEvery(
  intervalMs: number,
  options: { signal: AbortSignal; task: () => Promise<void>; onFailure: (error: string) => void },
): Promise<void> {
  const { signal, task, onFailure } = options;
  while (!signal.aborted) {
    try {
      await task();
    } catch (error) {
      if (signal.aborted) return;
      onFailure(error instanceof Error ? error.message : String(error));
    }
    await sleep(intervalMs, signal);
  }
}

/**
 * Deletes the node's spock.resolutions rows older than `days` (Spock HEAD's
 * resolutions_retention_days; 0 keeps them) and the tombstones no change can
 * still be older than, now and every hour until `signal` aborts. A failure,
 * such as a node not yet installed, is logged and retried next hour.
 */
async function cleanUpHistory(
  sql: postgres.Sql,
  days: number,
  options: { node: string; signal: AbortSignal },
): Promise<void> {
  const { node, signal } = options;
  await repeatEvery(CLEANUP_INTERVAL_MS, {
    signal,
    task: async () => {
      if (days > 0) {
        const [row] = await sql`select spock.cleanup_resolutions(${days}) as deleted`;
        const deleted = Number(row.deleted);
        if (deleted > 0) {
          log.info("Deleted {deleted} resolutions older than {days} days on node {node}", {
            deleted,
            days,
            node,
          });
        }
      }
      const [row] = await sql`select spock.cleanup_tombstones() as deleted`;
      log.debug("Deleted {deleted} tombstones on node {node}", {
        deleted: Number(row.deleted),
        node,
      });
    },
    onFailure: (error) =>
      log.warning("Cannot delete old resolutions and tombstones on node {node}: {error}", {
        node,
        error,
      }),
  });
}

/**
 * Pushes the node's replicated sequences ahead to its subscribers
 * (`spock.sync_sequences()`, which does nothing without any), now and every
 * `seconds` until `signal` aborts; 0 never does. A failure is logged and
 * retried next time.
 */
async function pushSequences(
  sql: postgres.Sql,
  seconds: number,
  options: { node: string; signal: AbortSignal },
): Promise<void> {
  const { node, signal } = options;
  if (seconds === 0) return;
  await repeatEvery(seconds * 1000, {
    signal,
    task: async () => {
      const [row] = await sql`select spock.sync_sequences() as queued`;
      if (row.queued > 0) {
        log.debug("Pushed {count} sequences ahead on node {node}", { count: row.queued, node });
      }
    },
    onFailure: (error) =>
      log.warning(
        "Cannot push the sequences of node {node} ahead: {error}; trying again in {seconds} s",
        { node, error, seconds },
      ),
  });
}

/**
 * Calls `onChange` whenever the node's read-only mode enters or leaves `all`
 * (and once at start when it is `all`), checking every second.
 */
async function watchReadOnly(
  sql: postgres.Sql,
  options: { node: string; signal: AbortSignal; onChange: (all: boolean) => void },
): Promise<void> {
  let all = false;
  await repeatEvery(READ_ONLY_POLL_MS, {
    signal: options.signal,
    task: async () => {
      const [row] = await sql`select spock.readonly_mode() as mode`;
      if ((row.mode === "all") !== all) {
        all = !all;
        options.onChange(all);
      }
    },
    onFailure: (error) =>
      log.warning("Cannot read the read-only mode of node {node}: {error}", {
        node: options.node,
        error,
      }),
  });
}

/**
 * Puts the read-only guard on the tables that lack it (made before spock was
 * installed), each in its own transaction so that no two table locks are held.
 */
async function guardTables(sql: postgres.Sql): Promise<void> {
  const tables = await sql`select t::oid::int8 as oid from spock._readonly_unguarded() t`;
  for (const table of tables) {
    await sql`select spock._readonly_attach(${table.oid}::int8::oid::regclass)`;
  }
}

/**
 * Records the config's values of Spock's session settings as the node's
 * defaults of them (a session, role, database or server value still wins).
 */
async function writeSettingDefaults(sql: postgres.Sql, engine: EngineSettings): Promise<void> {
  const on = (value: boolean) => (value ? "on" : "off");
  const defaults = {
    "spock.enable_ddl_replication": on(engine.enable_ddl_replication),
    "spock.include_ddl_repset": on(engine.include_ddl_repset),
    "spock.allow_ddl_from_functions": on(engine.allow_ddl_from_functions),
  };
  await sql.unsafe("select spock._set_setting_defaults($1::text::jsonb)", [
    JSON.stringify(defaults),
  ]);
}

/** Runs the workers of one node until `signal` aborts. */
export class NodeSupervisor {
  readonly node: ServedNode;
  #options: NodeSupervisorOptions;
  #workers = new Map<number, { worker: SubscriptionWorker; fingerprint: string }>();
  #wake: (() => void) | undefined;
  #dirty = true;
  /** spock.readonly = all on the node: its apply workers stay stopped. */
  #readOnlyAll = false;
  #name: string;
  /** The node's catalog session while it is being served. */
  #sql: postgres.Sql | undefined;

  constructor(node: ServedNode, options: NodeSupervisorOptions) {
    this.node = node;
    this.#options = options;
    this.#name = node.name ?? "";
  }

  /** The workers running now. */
  summaries(): WorkerSummary[] {
    return [...this.#workers.values()].map(({ worker }) => ({
      node: this.#name,
      subscription: worker.record.name,
      provider: worker.record.providerNodeName,
      transactions: worker.counters.transactions,
      skipped: worker.counters.skipped,
      failures: worker.failures,
    }));
  }

  /**
   * The node's subscriptions, counters and slots as its catalog has them now,
   * with this daemon's workers; fails while the node is not served (yet).
   */
  async snapshot(): Promise<NodeSnapshot> {
    const sql = this.#sql;
    if (sql === undefined) {
      throw new Error(`Node ${this.#name || maskDsn(this.node.dsn)} is not being served`);
    }
    const [status, counts] = await Promise.all([readNodeStatus(sql), readNodeCounts(sql)]);
    return { node: this.#name, status, counts, workers: this.summaries() };
  }

  /**
   * Supervises until `signal` aborts, then stops every worker cleanly.
   *
   * @throws {ServedNodeError} at start, when the node cannot be served as
   * configured (no catalog, no local node, a wrong password …).
   */
  async run(signal: AbortSignal): Promise<void> {
    const localOptions = resolveConnectOptions(this.node.dsn, {
      env: this.#options.env,
      applicationName: "spock daemon",
    });
    const sql = connectDatabase(localOptions, { max: 2 });
    let identity;
    try {
      identity = await waitForServedNode(sql, {
        node: this.node.name,
        dsn: this.node.dsn,
        signal,
      });
    } catch (error) {
      await sql.end({ timeout: 2 }).catch(() => {});
      throw error;
    }
    if (identity === undefined) {
      await sql.end({ timeout: 2 }).catch(() => {});
      return;
    }
    this.#name = this.node.name ?? identity.name;
    log.info("Serving node {node} at {dsn}", { node: this.#name, dsn: maskDsn(this.node.dsn) });
    await this.#supervise(sql, localOptions, signal);
  }

  async #supervise(
    sql: postgres.Sql,
    localOptions: ReturnType<typeof resolveConnectOptions>,
    signal: AbortSignal,
  ): Promise<void> {
    const nlog = log.with({ node: this.#name });
    const wake = () => {
      this.#dirty = true;
      this.#wake?.();
    };
    signal.addEventListener("abort", wake, { once: true });
    this.#sql = sql;
    let listener: CatalogListener | undefined;
    let warnedDown = false;
    let warnedAt = 0;
    let defaultsWritten = false;
    const { resolutions_retention_days: days, sequence_sync_interval: seconds } =
      this.#options.engine;
    const stopPeriodic = new AbortController();
    const periodic = { node: this.#name, signal: AbortSignal.any([signal, stopPeriodic.signal]) };
    const periodicTasks = Promise.all([
      cleanUpHistory(sql, days, periodic),
      pushSequences(sql, seconds, periodic),
      watchReadOnly(sql, {
        ...periodic,
        onChange: (all) => {
          this.#readOnlyAll = all;
          nlog.info(
            all
              ? "Node {node} is read-only for all (spock.readonly = all): inbound replication pauses"
              : "Node {node} is no longer read-only for all: inbound replication resumes",
            { node: this.#name },
          );
          wake();
        },
      }),
    ]);
    try {
      while (!signal.aborted) {
        try {
          if (listener === undefined || listener.lost) {
            await listener?.close();
            listener = undefined;
            // Listening before reading: a change made in between is read now or notified.
            listener = await CatalogListener.open(localOptions, "spock_catalog", wake);
          }
          if (!defaultsWritten) {
            await writeSettingDefaults(sql, this.#options.engine);
            await guardTables(sql);
            defaultsWritten = true;
          }
          const records = await readSubscriptions(sql);
          await this.#reconcile(sql, records, localOptions);
          if (warnedDown) nlog.info("Node {node} reachable again", { node: this.#name });
          warnedDown = false;
        } catch (error) {
          if (!warnedDown || performance.now() - warnedAt >= DOWN_LOG_INTERVAL_MS) {
            nlog.warning(
              "Cannot read the catalog of node {node} at {dsn}: {error}; trying again every {seconds} s",
              {
                node: this.#name,
                dsn: maskDsn(this.node.dsn),
                error: error instanceof Error ? error.message : String(error),
                seconds: REREAD_MS / 1000,
              },
            );
            warnedDown = true;
            warnedAt = performance.now();
          }
        }
        if (!this.#dirty) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
            sleep(REREAD_MS, signal).then(resolve);
          });
        }
        this.#dirty = false;
      }
    } finally {
      this.#sql = undefined;
      signal.removeEventListener("abort", wake);
      await Promise.all([...this.#workers.values()].map(({ worker }) => worker.stop()));
      this.#workers.clear();
      await listener?.close();
      stopPeriodic.abort();
      await sql.end({ timeout: 2 }).catch(() => {});
      await periodicTasks;
    }
  }

  async #reconcile(
    sql: postgres.Sql,
    records: SubscriptionRecord[],
    localOptions: ReturnType<typeof resolveConnectOptions>,
  ): Promise<void> {
    const wanted = new Map(
      records.filter((r) => r.enabled && !this.#readOnlyAll).map((r) => [r.id, r]),
    );
    for (const [id, entry] of this.#workers) {
      const record = wanted.get(id);
      if (record !== undefined && !needsRestart(record, entry)) continue;
      log.info("Stopping worker of subscription {subscription}: {why}", {
        subscription: entry.worker.record.name,
        why: this.#readOnlyAll
          ? "the node is read-only (spock.readonly = all)"
          : record === undefined
          ? "dropped or disabled"
          : "settings changed",
        was: entry.fingerprint,
        now: record === undefined ? undefined : subscriptionFingerprint(record),
      });
      this.#workers.delete(id);
      await entry.worker.stop();
      if (!records.some((r) => r.id === id)) await dropOrigin(sql, entry.worker.record.slotName);
    }
    for (const [id, record] of wanted) {
      if (this.#workers.has(id)) continue;
      log.info("Starting worker of subscription {subscription} (provider {provider})", {
        subscription: record.name,
        provider: record.providerNodeName,
      });
      const worker = new SubscriptionWorker(record, {
        localOptions,
        engine: this.#options.engine,
        daemon: this.#options.daemon,
        env: this.#options.env,
        catalog: sql,
      });
      this.#workers.set(id, { worker, fingerprint: subscriptionFingerprint(record) });
    }
  }
}
