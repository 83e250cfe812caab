/**
 * The demo's nodes and their full mesh, built only through the SQL API a user
 * would call: `installCatalog`, `spock.node_create`, `spock.repset_add_all_tables`,
 * `spock.sub_create` and `spock.sub_wait_for_sync`. Starting the servers is
 * `local_servers.ts`'s job; replicating is the daemon's.
 */
import denoJson from "../deno.json" with { type: "json" };
import { connectDatabase, installCatalog } from "../mod/catalog/mod.ts";
import { resolveConnectOptions } from "../mod/pg/mod.ts";
import type postgres from "postgres";
import { type LocalServer, serverDsn } from "./local_servers.ts";

/** The database every node lives in. */
export const DATABASE = "demo";

/** The replicated table. */
const SCHEMA = `
create table accounts (
  id int primary key,
  owner text not null,
  balance numeric(12, 2) not null,
  updated_by text not null
)`;

/** How long `sub_wait_for_sync` may wait for one subscription. */
const SYNC_TIMEOUT_SECONDS = 30;

/** One spock node: the `demo` database of one server. */
export interface DemoNode {
  name: string;
  dsn: string;
  sql: postgres.Sql;
}

/** A subscription of the mesh: `node` receives what `provider` writes. */
export interface MeshSubscription {
  name: string;
  node: DemoNode;
  provider: DemoNode;
}

/** Opens a client for `dsn` (closed by the caller with `end()`). */
export function connect(dsn: string, max = 1): postgres.Sql {
  return connectDatabase(resolveConnectOptions(dsn, { applicationName: "spock-demo" }), { max });
}

/**
 * Creates the `demo` database on `server`, installs the catalog, creates the
 * node and the `accounts` table, and puts every table of `public` into the
 * `default` replication set. The node's client goes to `onClient` as soon as
 * it opens, so an interrupted demo can still close it.
 */
export async function createNode(
  server: LocalServer,
  onClient: (sql: postgres.Sql) => void,
): Promise<DemoNode> {
  const admin = connect(serverDsn(server, "postgres"));
  try {
    await admin.unsafe(`create database ${DATABASE}`);
  } finally {
    await admin.end();
  }
  const dsn = serverDsn(server, DATABASE);
  const sql = connect(dsn, 4);
  onClient(sql);
  await installCatalog(sql, { programVersion: denoJson.version });
  await sql`select spock.node_create(${server.name}, ${dsn})`;
  await sql.unsafe(SCHEMA);
  await sql`select spock.repset_add_all_tables('default', array['public'])`;
  return { name: server.name, dsn, sql };
}

/**
 * Subscribes every node to every other one (`sub_<node>_<provider>`), with the
 * default replication sets and forward_origins '{}': each change travels one
 * hop, from the node that made it to each of the others.
 */
export async function createMesh(nodes: DemoNode[]): Promise<MeshSubscription[]> {
  const subscriptions: MeshSubscription[] = [];
  for (const node of nodes) {
    for (const provider of nodes) {
      if (provider === node) continue;
      const name = `sub_${node.name}_${provider.name}`;
      await node.sql`select spock.sub_create(subscription_name := ${name},
        provider_dsn := ${provider.dsn})`;
      subscriptions.push({ name, node, provider });
    }
  }
  return subscriptions;
}

/** Waits, with `sub_wait_for_sync`, until every subscription replicates. */
export async function waitForSync(subscriptions: MeshSubscription[]): Promise<void> {
  await Promise.all(subscriptions.map(async ({ name, node }) => {
    try {
      await node.sql.begin(async (tx) => {
        await tx.unsafe(`set local statement_timeout = '${SYNC_TIMEOUT_SECONDS}s'`);
        await tx`select spock.sub_wait_for_sync(${name})`;
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "57014") throw error;
      throw new Error(
        `Subscription "${name}" did not start replicating within ${SYNC_TIMEOUT_SECONDS} s: ` +
          "run the demo with --verbose to see the daemon's log",
      );
    }
  }));
}
