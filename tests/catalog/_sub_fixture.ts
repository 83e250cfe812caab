/**
 * Fixtures for the subscription and info SQL tests: databases of one cluster
 * with the catalog installed, made spock nodes (through node_create when the
 * node and repset groups are installed, else by writing the rows Spock's
 * node_create writes), and helpers to read errors and notices.
 */
import type postgres from "postgres";
import type { Cluster } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";

/** A database with the catalog installed, and the notices its session received. */
export interface TestDatabase {
  name: string;
  sql: postgres.Sql;
  dsn: string;
  notices: string[];
}

/** Creates database `name` in `cluster` and installs the catalog into it. */
export async function createDatabase(cluster: Cluster, name: string): Promise<TestDatabase> {
  const admin = cluster.connect();
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  await admin.end();
  const notices: string[] = [];
  const sql = cluster.connect({
    database: name,
    onnotice: (notice) => notices.push(`${notice.severity}: ${notice.message}`),
  });
  await installCatalog(sql, { programVersion: "test" });
  return { name, sql, dsn: cluster.dsn({ dbname: name }), notices };
}

/**
 * Makes `db` spock node `nodeName` with the three default sets. Uses
 * spock.node_create() when it works; otherwise writes the same rows.
 */
export async function makeNode(db: TestDatabase, nodeName: string): Promise<number> {
  const [present] = await db.sql`
    SELECT to_regprocedure('spock.node_create(name,text,text,text,jsonb)') IS NOT NULL
       AND to_regprocedure('spock._repset_insert(oid,name,boolean,boolean,boolean,boolean)')
           IS NOT NULL AS ok`;
  if (present.ok) {
    const [row] = await db.sql`SELECT spock.node_create(${nodeName}, ${db.dsn}) AS id`;
    return Number(row.id);
  }
  const [row] = await db.sql.begin(async (tx) => {
    const [node] = await tx`
      INSERT INTO spock.node (node_id, node_name) VALUES (spock._node_id(${nodeName}), ${nodeName})
      RETURNING node_id`;
    await tx`INSERT INTO spock.node_interface (if_id, if_name, if_nodeid, if_dsn)
      VALUES (spock._pair_id(${node.node_id}, ${nodeName}), ${nodeName}, ${node.node_id}, ${db.dsn})`;
    await tx`INSERT INTO spock.replication_set (set_id, set_nodeid, set_name,
        replicate_insert, replicate_update, replicate_delete, replicate_truncate)
      VALUES (spock._pair_id(${node.node_id}, 'default'), ${node.node_id}, 'default', true, true, true, true),
             (spock._pair_id(${node.node_id}, 'default_insert_only'), ${node.node_id},
              'default_insert_only', true, false, false, true),
             (spock._pair_id(${node.node_id}, 'ddl_sql'), ${node.node_id}, 'ddl_sql', true, false, false, false)`;
    await tx`INSERT INTO spock.local_node (node_id, node_local_interface)
      VALUES (${node.node_id}, spock._pair_id(${node.node_id}, ${nodeName}))`;
    return [node];
  });
  return Number(row.node_id);
}

/** The error a promise rejects with, as `{ code, message }`; fails if it resolves. */
export async function errorOf(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; detail?: string; hint?: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code?: string; message: string; detail?: string; hint?: string };
    return { code: String(e.code), message: e.message, detail: e.detail, hint: e.hint };
  }
  throw new Error("Expected the statement to fail, but it succeeded");
}

/** Row counts of the catalog tables a failed call must leave unchanged. */
export async function catalogCounts(sql: postgres.Sql): Promise<Record<string, number>> {
  const [row] = await sql`
    SELECT (SELECT count(*) FROM spock.node)::int AS node,
           (SELECT count(*) FROM spock.node_interface)::int AS node_interface,
           (SELECT count(*) FROM spock.subscription)::int AS subscription,
           (SELECT count(*) FROM spock.local_sync_status)::int AS local_sync_status,
           (SELECT count(*) FROM spock.progress)::int AS progress,
           (SELECT count(*) FROM spock.queue)::int AS queue,
           (SELECT count(*) FROM pg_catalog.pg_replication_origin)::int AS origins`;
  return { ...row };
}
