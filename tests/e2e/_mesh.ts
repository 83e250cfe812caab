/**
 * End-to-end fixture: spock nodes as databases of one cluster (each with the
 * catalog, a node and the given tables), subscriptions through the SQL API,
 * and the daemon run in-process or as `spock run`.
 */
import type postgres from "postgres";
import { type Cluster, pollUntil } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import { DEFAULT_ENGINE, type EngineSettings } from "../../mod/config/mod.ts";
import { type Daemon, startDaemon } from "../../mod/daemon/mod.ts";

/** One node: a database of the test cluster. */
export interface TestNode {
  name: string;
  dsn: string;
  sql: postgres.Sql;
}

/** Creates a database per name, installs the catalog, creates the node, runs `ddl`. */
export async function createNodes(
  cluster: Cluster,
  names: string[],
  ddl: string,
): Promise<TestNode[]> {
  const admin = cluster.connect();
  const nodes: TestNode[] = [];
  for (const name of names) {
    await admin.unsafe(`create database ${name}`);
    const sql = cluster.connect({ database: name, max: 3 });
    await installCatalog(sql, { programVersion: "test" });
    const dsn = cluster.dsn({ dbname: name });
    await sql`select spock.node_create(${name}, ${dsn})`;
    if (ddl) await sql.unsafe(ddl);
    nodes.push({ name, dsn, sql });
  }
  await admin.end();
  return nodes;
}

/**
 * One node as {@link createNodes} makes it, but whose DSN (the one peers and
 * subscriptions use) reaches it through `port`: a proxy in front of `cluster`.
 */
export async function createNodeVia(
  cluster: Cluster,
  name: string,
  port: number,
  ddl: string,
): Promise<TestNode> {
  const admin = cluster.connect();
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const sql = cluster.connect({ database: name, max: 3 });
  await installCatalog(sql, { programVersion: "test" });
  const dsn = `host=127.0.0.1 port=${port} dbname=${name} user=postgres`;
  await sql`select spock.node_create(${name}, ${dsn})`;
  if (ddl) await sql.unsafe(ddl);
  return { name, dsn, sql };
}

/** An empty database `name` with the catalog installed and no node yet: a node to be added. */
export async function createEmptyNode(cluster: Cluster, name: string): Promise<TestNode> {
  const admin = cluster.connect();
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const sql = cluster.connect({ database: name, max: 3 });
  await installCatalog(sql, { programVersion: "test" });
  return { name, dsn: cluster.dsn({ dbname: name }), sql };
}

/** Adds every table of `public` to the default set on each node. */
export async function addAllTables(nodes: TestNode[]): Promise<void> {
  for (const node of nodes) {
    await node.sql`select spock.repset_add_all_tables('default', array['public'])`;
  }
}

/** `subscriber` subscribes to `provider` (named `sub_<subscriber>_<provider>`). */
export async function subscribe(
  subscriber: TestNode,
  provider: TestNode,
  options: { syncData?: boolean; forwardOrigins?: string[]; sets?: string[] } = {},
): Promise<string> {
  const name = `sub_${subscriber.name}_${provider.name}`;
  await subscriber.sql`select spock.sub_create(
    subscription_name := ${name}, provider_dsn := ${provider.dsn},
    replication_sets := ${options.sets ?? ["default", "default_insert_only", "ddl_sql"]},
    synchronize_data := ${options.syncData ?? false},
    forward_origins := ${options.forwardOrigins ?? []})`;
  return name;
}

/** Every node subscribes to every other one (a full mesh); returns the subscriptions in order. */
export async function subscribeMesh(nodes: TestNode[]): Promise<Array<[TestNode, string]>> {
  const subscriptions: Array<[TestNode, string]> = [];
  for (const subscriber of nodes) {
    for (const provider of nodes) {
      if (provider !== subscriber) {
        subscriptions.push([subscriber, await subscribe(subscriber, provider)]);
      }
    }
  }
  return subscriptions;
}

/**
 * A daemon serving `nodes` in this process, as `spock run` runs it (the
 * harness installs the postgres.js guard `main.ts` installs); `stop()` stops it cleanly.
 */
export function runDaemon(
  nodes: TestNode[],
  engine: Partial<EngineSettings> = {},
): Daemon & { stop(): Promise<void> } {
  const controller = new AbortController();
  const daemon = startDaemon({
    nodes: nodes.map(({ name, dsn }) => ({ name, dsn })),
    engine: { ...DEFAULT_ENGINE, ...engine },
    env: {},
    signal: controller.signal,
  });
  return {
    ...daemon,
    async stop() {
      controller.abort();
      await daemon.done;
    },
  };
}

/** Waits until `sub_wait_for_sync` returns for the subscription (bounded by a deadline). */
export async function waitForSync(node: TestNode, subscription: string): Promise<void> {
  await node.sql.begin(async (tx) => {
    await tx.unsafe("set local statement_timeout = '60s'");
    await tx`select spock.sub_wait_for_sync(${subscription})`;
  });
}

/** Waits until `table` on `node` has the row whose `column` is `value` (a trusted test table). */
export async function waitForRow(
  node: TestNode,
  table: string,
  column: string,
  value: number,
  timeoutMs?: number,
): Promise<void> {
  await pollUntil(async () => {
    const rows = await node.sql.unsafe(`select 1 from ${table} where ${column} = $1`, [value]);
    return rows.length === 1 || undefined;
  }, { timeoutMs, intervalMs: 50, what: `${table} row ${column} = ${value} on ${node.name}` });
}

/**
 * A provider and a subscriber (databases `names`) with table `t (k, v)`, a
 * CHECK (v < 100) only the subscriber has, and a subscription: remote rows
 * with v ≥ 100 fail there, for exception handling.
 */
export async function checkedPair(
  cluster: Cluster,
  names: [string, string],
): Promise<{ nodes: TestNode[]; provider: TestNode; subscriber: TestNode; sub: string }> {
  const nodes = await createNodes(cluster, names, "create table t (k int primary key, v int)");
  const [provider, subscriber] = nodes;
  await subscriber.sql`alter table t add constraint small check (v < 100)`;
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider);
  return { nodes, provider, subscriber, sub };
}

/** An order-independent digest of a table's rows. */
export async function tableDigest(sql: postgres.Sql, table: string): Promise<string> {
  const [row] = await sql.unsafe(
    `select count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' order by t::text)), '')
       as digest from ${table} t`,
  );
  return row.digest;
}

/** Waits until `table` has the same digest on every node; returns it. */
export async function waitConverged(
  nodes: TestNode[],
  table: string,
  timeoutMs = 60_000,
): Promise<string> {
  let last: string[] = [];
  return await pollUntil(async () => {
    last = await Promise.all(nodes.map((node) => tableDigest(node.sql, table)));
    return last.every((digest) => digest === last[0]) ? last[0] : undefined;
  }, { timeoutMs, what: `${table} to converge on ${nodes.map((n) => n.name).join(", ")}` });
}

/** Closes the nodes' client connections. */
export async function closeNodes(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.sql.end({ timeout: 2 })));
}

/** Runs `writes` on `node` in one transaction; returns its xid (as exception_log records it). */
export async function remoteTransaction(node: TestNode, writes: string): Promise<string> {
  return await node.sql.begin(async (tx) => {
    await tx.unsafe(writes);
    const [row] = await tx`select pg_current_xact_id()::text as xid`;
    return row.xid as string;
  });
}

/** Runs `body` while a daemon with `engine` serves `nodes`; stops it however `body` ends. */
export async function withDaemon(
  nodes: TestNode[],
  engine: Partial<EngineSettings>,
  body: () => Promise<void>,
): Promise<void> {
  const daemon = runDaemon(nodes, engine);
  try {
    await body();
  } finally {
    await daemon.stop();
  }
}

/** Commits `count` single-row transactions into `log (origin, n)` on `node`, numbered from 1. */
export async function writeNumbered(node: TestNode, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) {
    await node.sql`insert into log values (${node.name}, ${n})`;
  }
}

/** A config file naming `nodes` (their DSNs), for `spock node add` and `node remove`. */
export async function nodesConfigFile(nodes: TestNode[]): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".yaml" });
  const lines = ["nodes:", ...nodes.flatMap((n) => [`  - name: ${n.name}`, `    dsn: "${n.dsn}"`])];
  await Deno.writeTextFile(file, lines.join("\n") + "\n");
  return file;
}

/** What {@link writeConflicting} did: operations committed, and failed (when tolerated). */
export interface ConflictingWrites {
  operations: number;
  failed: number;
}

/**
 * Random single-row inserts, updates and deletes on `kv (k, v, note)` keys
 * 1..`keys` from `node` until `until` (Date.now()), a pseudo-random sequence
 * from `seed`, `paceMs` apart. With `tolerateFailures` a failed write (a
 * restarting server) is counted and the writer waits 200 ms; else it throws.
 */
export async function writeConflicting(
  node: TestNode,
  options: {
    until: number;
    seed: number;
    keys: number;
    paceMs: number;
    tolerateFailures?: boolean;
  },
): Promise<ConflictingWrites> {
  let state = options.seed;
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  const done = { operations: 0, failed: 0 };
  while (Date.now() < options.until) {
    const k = random(options.keys) + 1;
    const choice = random(10);
    try {
      if (choice < 4) {
        await node.sql`insert into kv values (${k}, 0, ${node.name}) on conflict do nothing`;
      } else if (choice < 8) {
        await node.sql`update kv set v = v + 1, note = ${node.name} where k = ${k}`;
      } else {
        await node.sql`delete from kv where k = ${k}`;
      }
      done.operations++;
    } catch (error) {
      if (!options.tolerateFailures) throw error;
      done.failed++;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await new Promise((resolve) => setTimeout(resolve, options.paceMs));
  }
  return done;
}
