/**
 * The two servers of one replication bench run (provider and subscriber),
 * configured like ../shared/bench/cluster.sh, the pgbench schema on both, and
 * the client tools (pgbench). Which engine replicates between them is
 * `_replication_engines.ts`'s business.
 */
import type postgres from "postgres";
import { Cluster, type PgInstall } from "../local_pg/mod.ts";

/** PG 15 client tools, used against every server version (as native_baseline.sh does). */
export const PGCLIENTBIN = "/usr/lib/postgresql/15/bin";
export const DATABASE = "bench";

/** cluster.sh's settings for a 2-node run; the harness's test shortcuts are turned back on. */
const BENCH_CONF: Record<string, string | number | boolean> = {
  wal_level: "logical",
  track_commit_timestamp: true,
  max_replication_slots: 18,
  max_wal_senders: 18,
  max_worker_processes: 24,
  max_logical_replication_workers: 14,
  max_sync_workers_per_subscription: 2,
  synchronous_commit: "on",
  shared_buffers: "512MB",
  max_wal_size: "4GB",
  max_connections: 100,
  fsync: true,
  full_page_writes: true,
  log_min_messages: "warning",
};

/** The tables besides pgbench's: a marker for catch-up, (c)'s and (d)'s targets. */
export const EXTRA_DDL = `
create table bench_marker (id int primary key, ts timestamptz not null default clock_timestamp());
create table big_tx (id bigint primary key, v int not null, payload text not null);
create table small_tx (id bigserial primary key, payload text not null,
  ts timestamptz not null default now());`;

/** The six data tables compared at the end of a run. */
export const DATA_TABLES = [
  "pgbench_accounts",
  "pgbench_branches",
  "pgbench_tellers",
  "pgbench_history",
  "big_tx",
  "small_tx",
];

/** A provider and a subscriber, each with a `bench` database and a client on it. */
export interface ClusterPair {
  install: PgInstall;
  provider: Cluster;
  subscriber: Cluster;
  /** Client on the provider's `bench` database. */
  p: postgres.Sql;
  /** Client on the subscriber's `bench` database. */
  s: postgres.Sql;
  providerDsn: string;
  subscriberDsn: string;
}

/** Starts two fresh servers of `install` and creates `bench` on both. */
export async function startPair(install: PgInstall): Promise<ClusterPair> {
  const provider = await Cluster.start(install, { conf: BENCH_CONF });
  let subscriber: Cluster | undefined;
  try {
    subscriber = await Cluster.start(install, { conf: BENCH_CONF });
    for (const cluster of [provider, subscriber]) {
      const admin = cluster.connect();
      await admin.unsafe(`create database ${DATABASE}`);
      await admin.end();
    }
  } catch (error) {
    await provider.stop();
    await subscriber?.stop();
    throw error;
  }
  return {
    install,
    provider,
    subscriber,
    p: provider.connect({ database: DATABASE }),
    s: subscriber.connect({ database: DATABASE }),
    providerDsn: provider.dsn({ dbname: DATABASE }),
    subscriberDsn: subscriber.dsn({ dbname: DATABASE }),
  };
}

/** Stops and deletes both servers. */
export async function stopPair(pair: ClusterPair): Promise<void> {
  await Promise.allSettled([pair.provider.stop(), pair.subscriber.stop()]);
}

/** What one pgbench run reported. */
export interface PgbenchResult {
  tps: number;
  txns: number;
}

/** Runs PG 15's pgbench against `cluster`'s `bench` database. */
export async function pgbench(cluster: Cluster, args: string[]): Promise<PgbenchResult> {
  const out = await new Deno.Command(`${PGCLIENTBIN}/pgbench`, {
    args: ["-h", cluster.host, "-p", String(cluster.port), "-U", "postgres", ...args, DATABASE],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`pgbench ${args.join(" ")} failed (${out.code}):\n${text}`);
  return {
    tps: Number(/tps = ([0-9.]+)/.exec(text)?.[1] ?? Number.NaN),
    txns: Number(/actually processed: (\d+)/.exec(text)?.[1] ?? Number.NaN),
  };
}

/**
 * The provider gets `pgbench -i -s scale`; the subscriber the same tables and
 * primary keys without data (`-I dtp`); both get {@link EXTRA_DDL}.
 */
export async function loadSchema(pair: ClusterPair, scale: number): Promise<void> {
  await pgbench(pair.provider, ["-i", "-s", String(scale), "-q"]);
  await pgbench(pair.subscriber, ["-i", "-s", String(scale), "-I", "dtp"]);
  await pair.p.unsafe(EXTRA_DDL);
  await pair.s.unsafe(EXTRA_DDL);
}

/** CHECKPOINT on both servers. */
export async function checkpointBoth(pair: ClusterPair): Promise<void> {
  await pair.p.unsafe("checkpoint");
  await pair.s.unsafe("checkpoint");
}

/** count and hash of each data table on both nodes; the tables that differ. */
export async function compareTables(pair: ClusterPair): Promise<string[]> {
  const differ: string[] = [];
  for (const table of DATA_TABLES) {
    const query = `select count(*) || ':' || coalesce(sum(hashtext(x::text)::bigint), 0) as h ` +
      `from ${table} x`;
    const [[a], [b]] = await Promise.all([pair.p.unsafe(query), pair.s.unsafe(query)]);
    if (a.h !== b.h) differ.push(`${table} (provider ${a.h}, subscriber ${b.h})`);
  }
  return differ;
}
