/**
 * The two engines the replication bench compares, behind one interface:
 * PostgreSQL's own `CREATE SUBSCRIPTION` (apply worker in the subscriber) and
 * spock (catalog, nodes, replication sets, `sub_create`, and `spock run` as a
 * child process). The workloads and timing are `_replication_workloads.ts`'s.
 */
import { installCatalog } from "../mod/catalog/mod.ts";
import { TcpProxy } from "../local_pg/mod.ts";
import { type ClusterPair, DATABASE } from "./_replication_cluster.ts";
import { DaemonProcess } from "./_replication_daemon.ts";
import { waitFor } from "./_replication_poll.ts";

export const SUBSCRIPTION = "bench_sub";

/** What the workloads need from an engine. */
export interface Engine {
  readonly name: "native" | "spock";
  /** The provider's slot the engine streams from (known after {@link subscribe}). */
  readonly slotName: string;
  /** Untimed set-up once the schema is loaded: publication, or catalog + nodes + sets. */
  prepare(pair: ClusterPair): Promise<void>;
  /** Starts (a): creates the subscription with data copy and whatever applies it. */
  subscribe(pair: ClusterPair): Promise<void>;
  /** Boolean SQL, true on the subscriber once the subscription and all tables are ready. */
  readonly syncDoneSql: string;
  /** Backlog mode: stop applying, and return once the provider's slot is inactive. */
  pause(pair: ClusterPair): Promise<void>;
  /** Applies again; returns performance.now() at which the apply process existed. */
  resume(pair: ClusterPair): Promise<number>;
  /** Peak RSS (kB) of the apply process since {@link resetPeak}; undefined for native. */
  peakRssKb(): Promise<number | undefined>;
  resetPeak(): Promise<void>;
  /** Throws when the apply process died on its own. */
  assertAlive(): void;
  /** Stops whatever the engine runs outside the servers. */
  close(): Promise<void>;
}

async function waitSlotInactive(pair: ClusterPair, slot: string): Promise<void> {
  await waitFor(
    pair.p,
    `not exists (select 1 from pg_replication_slots where slot_name = '${slot}' and active)`,
    { what: `slot ${slot} to be released` },
  );
}

/** CREATE PUBLICATION … FOR ALL TABLES / CREATE SUBSCRIPTION with the default options. */
export class NativeEngine implements Engine {
  readonly name = "native";
  readonly slotName = SUBSCRIPTION;
  #tables = 0;

  async prepare(pair: ClusterPair): Promise<void> {
    await pair.p.unsafe("create publication bench_pub for all tables");
    const [{ n }] = await pair.p.unsafe(
      "select count(*)::int as n from pg_tables where schemaname = 'public'",
    );
    this.#tables = n;
  }

  async subscribe(pair: ClusterPair): Promise<void> {
    await pair.s.unsafe(
      `create subscription ${SUBSCRIPTION} connection '${pair.providerDsn}' ` +
        "publication bench_pub",
    );
  }

  get syncDoneSql(): string {
    return `(select count(*) from pg_subscription_rel) = ${this.#tables} and not exists ` +
      "(select 1 from pg_subscription_rel where srsubstate <> 'r')";
  }

  async pause(pair: ClusterPair): Promise<void> {
    await pair.s.unsafe(`alter subscription ${SUBSCRIPTION} disable`);
    await waitFor(
      pair.s,
      `not exists (select 1 from pg_stat_subscription where subname = '${SUBSCRIPTION}' ` +
        "and pid is not null)",
      { what: "the apply worker to exit" },
    );
    await waitSlotInactive(pair, this.slotName);
  }

  async resume(pair: ClusterPair): Promise<number> {
    await pair.s.unsafe(`alter subscription ${SUBSCRIPTION} enable`);
    // The launcher may delay the start (wal_retrieve_retry_interval): the window
    // starts when the apply worker runs, as in native_baseline.sh.
    return await waitFor(
      pair.s,
      `exists (select 1 from pg_stat_subscription where subname = '${SUBSCRIPTION}' ` +
        "and pid is not null)",
      { what: "the apply worker to start", intervalMs: 5 },
    );
  }

  peakRssKb(): Promise<number | undefined> {
    return Promise.resolve(undefined);
  }

  resetPeak(): Promise<void> {
    return Promise.resolve();
  }

  assertAlive(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Where spock's daemon writes its log and (optionally) CPU profiles. */
export interface SpockEngineOptions {
  logPath: string;
  cpuProfileDir?: string;
  /** Added round trip between the daemon and the subscriber (a delaying proxy), in ms. */
  latencyMs?: number;
}

/** spock: catalog and nodes on both sides, `sub_create`, `spock run` as a child process. */
export class SpockEngine implements Engine {
  readonly name = "spock";
  #options: SpockEngineOptions;
  #daemon: DaemonProcess | undefined;
  #slotName = "";
  #exited: string | undefined;
  #proxy: TcpProxy | undefined;

  constructor(options: SpockEngineOptions) {
    this.#options = options;
  }

  get slotName(): string {
    return this.#slotName;
  }

  async prepare(pair: ClusterPair): Promise<void> {
    for (
      const [sql, name, dsn] of [
        [pair.p, "provider", pair.providerDsn],
        [pair.s, "subscriber", pair.subscriberDsn],
      ] as const
    ) {
      await installCatalog(sql, { programVersion: "bench" });
      await sql`select spock.node_create(${name}, ${dsn})`;
    }
    // pgbench_history has no primary key: the default set refuses it (it
    // replicates UPDATE and DELETE), so it goes into the insert-only set.
    const tables = await pair.p.unsafe(
      "select tablename::text as t from pg_tables where schemaname = 'public' order by 1",
    );
    for (const { t } of tables) {
      const set = t === "pgbench_history" ? "default_insert_only" : "default";
      await pair.p`select spock.repset_add_table(${set}, ${t}::regclass)`;
    }
    // The daemon runs before the subscription exists, as a service would: (a)
    // then times sub_create and the sync, not the daemon's own start.
    this.#spawn(pair);
    await waitFor(
      pair.s,
      "exists (select 1 from pg_stat_activity where datname = current_database() " +
        `and query = 'listen "spock_catalog"')`,
      { what: "spock run to listen for catalog changes", check: () => this.assertAlive() },
    );
  }

  async subscribe(pair: ClusterPair): Promise<void> {
    await pair.s`select spock.sub_create(
      subscription_name := ${SUBSCRIPTION}, provider_dsn := ${pair.providerDsn},
      replication_sets := ${["default", "default_insert_only"]},
      synchronize_data := true)`;
    const [{ slot }] = await pair.s`select sub_slot_name::text as slot from spock.subscription
      where sub_name = ${SUBSCRIPTION}`;
    this.#slotName = slot;
  }

  get syncDoneSql(): string {
    return `spock._sub_sync_done((select sub_id from spock.subscription ` +
      `where sub_name = '${SUBSCRIPTION}'), null, null)`;
  }

  async pause(pair: ClusterPair): Promise<void> {
    const daemon = this.#daemon;
    this.#daemon = undefined;
    await daemon?.stop();
    await waitSlotInactive(pair, this.slotName);
  }

  resume(pair: ClusterPair): Promise<number> {
    return Promise.resolve(this.#spawn(pair).startedAt);
  }

  async peakRssKb(): Promise<number | undefined> {
    return await this.#daemon?.peakRssKb();
  }

  async resetPeak(): Promise<void> {
    await this.#daemon?.resetPeak();
  }

  assertAlive(): void {
    if (this.#exited !== undefined) throw new Error(this.#exited);
  }

  async close(): Promise<void> {
    const daemon = this.#daemon;
    this.#daemon = undefined;
    await daemon?.stop();
    await this.#proxy?.close();
    this.#proxy = undefined;
  }

  /** The subscriber as the daemon reaches it: through the delaying proxy when there is latency. */
  #subscriberDsn(pair: ClusterPair): string {
    const latencyMs = this.#options.latencyMs ?? 0;
    if (latencyMs <= 0) return pair.subscriberDsn;
    this.#proxy ??= TcpProxy.start(
      { host: pair.subscriber.host, port: pair.subscriber.port },
      { delayMs: latencyMs },
    );
    return pair.subscriber.dsn({ dbname: DATABASE }).replace(
      `port=${pair.subscriber.port}`,
      `port=${this.#proxy.port}`,
    );
  }

  #spawn(pair: ClusterPair): DaemonProcess {
    const daemon = DaemonProcess.spawn({
      dsn: this.#subscriberDsn(pair),
      logPath: this.#options.logPath,
      cpuProfileDir: this.#options.cpuProfileDir,
    });
    this.#daemon = daemon;
    daemon.status.then((status) => {
      if (this.#daemon === daemon) {
        this.#exited = `spock run exited on its own (code ${status.code}); see ` +
          this.#options.logPath;
      }
    });
    return daemon;
  }
}
