/**
 * Fixtures for the daemon's catalog-facing units: the `postgres` database of
 * a test cluster with the catalog and a local spock node, and subscriptions
 * recorded the way `spock sub create` records them (spock._sub_create_local,
 * the provider known only by id, name and DSN: no provider server needed).
 */
import type postgres from "postgres";
import type { Cluster } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";

/** The local node's database: a client and the node's id. */
export interface LocalNode {
  sql: postgres.Sql;
  nodeId: number;
}

/** Installs the catalog in `postgres` and makes it node `name`. */
export async function localNode(cluster: Cluster, name = "local"): Promise<LocalNode> {
  const sql = cluster.connect({ max: 2 });
  await installCatalog(sql, { programVersion: "test" });
  const [node] = await sql`select spock.node_create(${name}, ${cluster.dsn()})::int8 as id`;
  return { sql, nodeId: Number(node.id) };
}

/** What a subscription is created with (sub_create's arguments; defaults as Spock's). */
export interface SubscriptionSpec {
  providerNodeId?: number;
  providerName?: string;
  providerDsn?: string;
  /** `[]` stores NULL: the default sets. */
  replicationSets?: string[];
  synchronizeStructure?: boolean;
  synchronizeData?: boolean;
  forwardOrigins?: string[];
  applyDelay?: string;
  enabled?: boolean;
  skipSchema?: string[];
}

/** Records subscription `name` of the local node; returns its id. */
export async function createSubscription(
  sql: postgres.Sql,
  name: string,
  spec: SubscriptionSpec = {},
): Promise<number> {
  const [row] = await sql`select spock._sub_create_local(${name}, ${
    spec.providerDsn ?? "host=provider dbname=app"
  }, ${spec.providerNodeId ?? 4242}::oid, ${spec.providerName ?? "provider"}, ${
    spec.replicationSets ?? ["default", "default_insert_only", "ddl_sql"]
  }::text[], ${spec.synchronizeStructure ?? false}, ${spec.synchronizeData ?? false}, ${
    spec.forwardOrigins ?? []
  }::text[], ${spec.applyDelay ?? "0"}::interval, false, ${spec.enabled ?? true}, ${
    spec.skipSchema ?? []
  }::text[])::int8 as id`;
  return Number(row.id);
}
