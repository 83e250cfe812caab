/**
 * `spock node remove`: a node leaves the cluster. By default the other
 * nodes first apply everything it wrote (a sync event of the node, waited
 * for on each), so none of its changes is lost. Then every subscription to
 * and from it is dropped with its slot and origin, on every node, and the
 * node itself is dropped (`node_drop`). Also cleans up after a half-done
 * `spock node add`. Each part that is already gone is skipped, so it can be
 * run again.
 */
import { CatalogError, dropProviderSlot } from "../catalog/mod.ts";
import { maskDsn } from "../pg/mod.ts";
import {
  closeNodes,
  type ClusterNode,
  connectAs,
  connectKnownNodes,
  type NodeDirectory,
} from "./cluster_nodes.ts";
import { ClusterError } from "./errors.ts";
import { linkName } from "./links.ts";
import { waitCaughtUp } from "./waits.ts";

/** What `spock node remove` is asked to do. */
export interface RemoveNodeOptions {
  node: { name: string; dsn: string };
  directory: NodeDirectory;
  /** Skip the wait for the others to apply the node's changes, and nodes that cannot be reached. */
  force: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
  report: (line: string) => void;
}

/** What was removed. */
export interface RemoveNodeResult {
  node: string;
  droppedSubscriptions: string[];
  droppedSlots: string[];
  milliseconds: number;
}

/**
 * Removes the node; see the module comment.
 *
 * @throws {ClusterError} when a node cannot be reached (without `force`) or
 * a wait times out; nothing is dropped before every wait has passed.
 */
export async function removeNode(options: RemoveNodeOptions): Promise<RemoveNodeResult> {
  const started = performance.now();
  const { report } = options;
  const result: RemoveNodeResult = {
    node: options.node.name,
    droppedSubscriptions: [],
    droppedSlots: [],
    milliseconds: 0,
  };
  let node: ClusterNode | undefined;
  const others: ClusterNode[] = [];
  try {
    node = await connectAs(options.node.name, options.node.dsn, options.directory);
    const known = await connectKnownNodes(node, options.directory, { except: [] }).catch(
      (error) => {
        if (!options.force) throw error;
        report(`Skipping the nodes ${node!.name} knows: ${(error as Error).message}`);
        return [] as ClusterNode[];
      },
    );
    others.push(...known);
    for (const [name, dsn] of options.directory.dsns) {
      if (name === node.name || others.some((o) => o.name === name)) continue;
      try {
        const extra = await connectAs(name, dsn, options.directory);
        others.push(extra);
      } catch (error) {
        report(`Skipping node ${name} of the config file: ${(error as Error).message}`);
      }
    }
    report(
      `Removing ${node.name}; the other nodes: ${others.map((o) => o.name).join(", ") || "none"}`,
    );

    if (options.force) {
      report("--force: not waiting for the other nodes to apply what it wrote");
    } else {
      for (const other of others) {
        const links = await linksBetween(other, node, other);
        if (!links.some((link) => link.enabled)) continue;
        report(`Waiting for ${other.name} to apply everything ${node.name} wrote`);
        await waitCaughtUp(other, node, options);
      }
    }

    for (const other of others) {
      for (const sub of await linksBetween(other, node, other)) {
        await dropLink(other, sub, node, result, report);
      }
    }
    for (const sub of await linksBetween(node, node, undefined)) {
      const provider = others.find((o) => o.id === sub.origin);
      await dropLink(node, sub, provider, result, report);
    }
    // Slots a half-done add made for links whose subscription it never created.
    const [{ db }] = await node.sql`select current_database()::text as db`;
    for (const other of others) {
      const [{ slot }] = await other.sql`select spock.spock_gen_slot_name(${db},
        ${other.name}, ${linkName(other.name, node.name)})::text as slot`;
      await dropSlot(other, slot, linkName(other.name, node.name), result, report);
    }
    await node.sql`select spock.node_drop(${node.name}, true)`;
    report(`Dropped node ${node.name}`);
    result.milliseconds = Math.round(performance.now() - started);
    return result;
  } finally {
    await closeNodes([node, ...others]);
  }
}

interface SubRow {
  name: string;
  origin: string;
  enabled: boolean;
}

/** Subscriptions on `on` between `node` and another node (`subscriberSide`: only those from `node`). */
async function linksBetween(
  on: ClusterNode,
  node: ClusterNode,
  subscriberSide: ClusterNode | undefined,
): Promise<SubRow[]> {
  const rows = subscriberSide === undefined
    ? await on.sql`select sub_name::text as name, sub_origin::text as origin, sub_enabled
        from spock.subscription where sub_target = ${node.id}::oid order by 1`
    : await on.sql`select sub_name::text as name, sub_origin::text as origin, sub_enabled
        from spock.subscription
        where sub_origin = ${node.id}::oid and sub_target = ${on.id}::oid order by 1`;
  return rows.map((row) => ({ name: row.name, origin: row.origin, enabled: row.sub_enabled }));
}

async function dropLink(
  on: ClusterNode,
  sub: SubRow,
  provider: ClusterNode | undefined,
  result: RemoveNodeResult,
  report: (line: string) => void,
): Promise<void> {
  const [dropped] = await on.sql`select slot_name::text as slot, provider_dsn
    from spock._sub_drop_local(${sub.name}, true)`;
  result.droppedSubscriptions.push(`${sub.name}@${on.name}`);
  report(`Dropped subscription ${sub.name} on ${on.name}`);
  if (dropped?.slot === null || dropped?.slot === undefined) return;
  if (provider === undefined) {
    report(
      `  its slot ${dropped.slot} is on a node that was not reached (${
        maskDsn(dropped.provider_dsn ?? "")
      }): drop it there`,
    );
    return;
  }
  await dropSlot(provider, dropped.slot, sub.name, result, report);
}

async function dropSlot(
  on: ClusterNode,
  slot: string,
  subscription: string,
  result: RemoveNodeResult,
  report: (line: string) => void,
): Promise<void> {
  try {
    const outcome = await dropProviderSlot(on.sql, {
      slotName: slot,
      subscriptionName: subscription,
    });
    if (outcome === "dropped") {
      result.droppedSlots.push(`${slot}@${on.name}`);
      report(`Dropped slot ${slot} on ${on.name}`);
    }
  } catch (error) {
    if (!(error instanceof CatalogError)) throw error;
    throw new ClusterError(`Cannot drop slot ${slot} on ${on.name}: ${error.message}`);
  }
}
