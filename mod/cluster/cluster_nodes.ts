/**
 * The nodes of a cluster as one node's catalog knows them, each with an open
 * catalog connection: what `spock node add` and `spock node remove` work on.
 * A node's DSN is the config file's when it names the node, else the DSN its
 * subscribers use (its `node_interface`).
 */
import { type CatalogSql, connectDatabase } from "../catalog/mod.ts";
import { maskDsn, resolveConnectOptions } from "../pg/mod.ts";
import { ClusterError } from "./errors.ts";

/** One node, connected. */
export interface ClusterNode {
  name: string;
  /** The node id (oid) as text. */
  id: string;
  dsn: string;
  sql: CatalogSql;
}

/** How to reach nodes: DSNs the config file gives, and the environment for libpq defaults. */
export interface NodeDirectory {
  dsns: Map<string, string>;
  env: Record<string, string | undefined>;
  applicationName: string;
}

/**
 * Connects to `dsn` and reads its local node (undefined when it has none).
 *
 * @throws {ClusterError} when it cannot be reached or has no current catalog.
 */
export async function connectNode(
  dsn: string,
  directory: NodeDirectory,
  label: string,
): Promise<{ sql: CatalogSql; node: { name: string; id: string } | undefined }> {
  const sql = connectDatabase(
    resolveConnectOptions(dsn, { env: directory.env, applicationName: directory.applicationName }),
  );
  try {
    const [node] = await sql`select n.node_name::text as name, n.node_id::text as id
      from spock.local_node l join spock.node n using (node_id)`;
    return { sql, node: node === undefined ? undefined : { name: node.name, id: node.id } };
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw new ClusterError(
      `Cannot reach ${label} at ${maskDsn(dsn)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * The other nodes `from` knows (its providers and the nodes named in its
 * catalog), each connected and checked to be the node of that name.
 */
export async function connectKnownNodes(
  from: ClusterNode,
  directory: NodeDirectory,
  options: { except: string[] },
): Promise<ClusterNode[]> {
  const rows = await from.sql`select n.node_name::text as name, n.node_id::text as id,
      (select i.if_dsn from spock.node_interface i where i.if_nodeid = n.node_id
       order by i.if_name = n.node_name desc, i.if_id limit 1) as dsn
    from spock.node n where n.node_id <> ${from.id}::oid order by n.node_name`;
  const nodes: ClusterNode[] = [];
  try {
    for (const row of rows) {
      if (options.except.includes(row.name)) continue;
      const dsn = directory.dsns.get(row.name) ?? row.dsn;
      if (dsn === null) {
        throw new ClusterError(`Node ${row.name} has no DSN in ${from.name}'s catalog`);
      }
      nodes.push(await connectAs(row.name, dsn, directory));
    }
    return nodes;
  } catch (error) {
    await closeNodes(nodes);
    throw error;
  }
}

/**
 * Connects to the node `name` at `dsn`.
 *
 * @throws {ClusterError} when it is unreachable or is not that node.
 */
export async function connectAs(
  name: string,
  dsn: string,
  directory: NodeDirectory,
): Promise<ClusterNode> {
  const { sql, node } = await connectNode(dsn, directory, `node ${name}`);
  if (node?.name !== name) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw new ClusterError(
      `The database at ${maskDsn(dsn)} is ${
        node === undefined ? "not a spock node" : `node ${node.name}`
      }, not node ${name}`,
    );
  }
  return { name, id: node.id, dsn, sql };
}

/** Closes every node's connection. */
export async function closeNodes(nodes: Iterable<ClusterNode | undefined>): Promise<void> {
  await Promise.all([...nodes].map((node) => node?.sql.end({ timeout: 2 }).catch(() => {})));
}
