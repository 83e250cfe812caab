/**
 * `spock node add`: a fresh database joins a running mesh with zero
 * downtime, by ZODAN's invariant (Spock's docs/zodan.md):
 *
 *   1. checks; 2. the node; 3. a disabled link from every peer, its slot
 *   made on the peer now; 4. the source has applied each peer up to after
 *   that slot; 5–6. a link from the source that copies structure and data
 *   (run by the new node's daemon, which also records what of each peer the
 *   copy holds); 7. each peer's slot advanced to exactly that, then enabled;
 *   8. the source's replication sets mirrored; 9. every node subscribes to
 *   the new one; 10. every link has caught up.
 *
 * Every step first looks for what an earlier run made, so a run interrupted
 * anywhere is continued by running it again. Every wait is on a position,
 * with a timeout.
 */
import { formatLsn, maskDsn } from "../pg/mod.ts";
import { catalogVersion, disabledSubscriptions, missingRoles, userTables } from "./add_checks.ts";
import {
  closeNodes,
  type ClusterNode,
  connectAs,
  connectKnownNodes,
  connectNode,
  type NodeDirectory,
} from "./cluster_nodes.ts";
import { ClusterError } from "./errors.ts";
import {
  advanceLink,
  createDisabledLink,
  createSyncingLink,
  DEFAULT_SETS,
  enableLink,
  ensureLinkSlot,
  findLink,
  type Link,
  readSlot,
} from "./links.ts";
import { mirrorReplicationSets } from "./repset_mirror.ts";
import { type TableCopyReporter, watchInitialCopy } from "./copy_progress.ts";
import { appliedFrom, waitCaughtUp, type WaitOptions } from "./waits.ts";

/** What `spock node add` is asked to do. */
export interface AddNodeOptions {
  /** The node the new one copies from, and how to reach it. */
  source: { name: string; dsn: string };
  /** The new node: its name, and its DSN (how the others reach it, and how it is reached now). */
  node: { name: string; dsn: string; location?: string; country?: string; info?: string };
  directory: NodeDirectory;
  /**
   * Copy the source's structure (pg_dump) as well as its data; false when
   * the new node's tables were made beforehand (they must be empty).
   */
  structure: boolean;
  /** The longest any one wait may take. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** One line per step and per table copied. */
  report: TableCopyReporter;
}

/** What the add did. */
export interface AddNodeResult {
  node: string;
  source: string;
  peers: string[];
  /** Whether it continued an earlier run. */
  resumed: boolean;
  milliseconds: number;
}

const STEPS = 10;

/**
 * Adds the node; see the module comment for the steps.
 *
 * @throws {ClusterError} when a check fails (nothing is changed then), or a
 * step cannot complete; running it again continues from there.
 */
export async function addNode(options: AddNodeOptions): Promise<AddNodeResult> {
  const started = performance.now();
  const { report, directory } = options;
  const wait: WaitOptions = { timeoutMs: options.timeoutMs, signal: options.signal };
  const step = (n: number, text: string) => report(`[${n}/${STEPS}] ${text}`);
  const X = options.node.name;
  if (X === options.source.name) {
    throw new ClusterError(`The new node and the source are both named ${X}`);
  }
  let source: ClusterNode | undefined;
  let peers: ClusterNode[] = [];
  let node: ClusterNode | undefined;
  let newSql;
  try {
    step(1, `Checking the cluster of ${options.source.name} and the new node ${X}`);
    source = await connectAs(options.source.name, options.source.dsn, directory);
    const reached = await connectNode(options.node.dsn, directory, `the new node ${X}`);
    newSql = reached.sql;
    if (reached.node !== undefined && reached.node.name !== X) {
      throw new ClusterError(
        `The database at ${maskDsn(options.node.dsn)} is already node ${reached.node.name}`,
      );
    }
    const resumed = reached.node !== undefined;
    peers = await connectKnownNodes(source, directory, { except: [X] });
    const versions = new Map<string, number>();
    for (const member of [source, ...peers]) {
      versions.set(member.name, await catalogVersion(member.sql));
    }
    versions.set(X, await catalogVersion(newSql));
    if (new Set(versions.values()).size > 1) {
      throw new ClusterError(
        `The nodes run different spock catalog versions (${
          [...versions].map(([name, v]) => `${name}: ${v}`).join(", ")
        }): run 'spock install' on each with the same spock first`,
      );
    }
    if (!resumed) {
      const tables = await userTables(newSql, { nonEmpty: !options.structure });
      if (tables.length > 0) {
        throw new ClusterError(
          options.structure
            ? `The new node's database already has tables (${tables.join(", ")}): ` +
              "node add needs an empty database (or --no-structure, with empty tables)"
            : `Tables of the new node already hold rows (${tables.join(", ")}): ` +
              "node add needs them empty",
        );
      }
      const roles = await missingRoles(source, newSql);
      if (roles.length > 0) {
        throw new ClusterError(
          `Roles that ${source.name}'s objects belong to are missing on the new node: ` +
            `${roles.join(", ")}; create them there first`,
        );
      }
    }
    for (const member of [source, ...peers]) {
      const disabled = await disabledSubscriptions(member, reached.node?.id);
      if (disabled.length > 0) {
        throw new ClusterError(
          `Subscription${disabled.length > 1 ? "s" : ""} ${
            disabled.join(", ")
          } on ${member.name} ` +
            "must be enabled and replicating before a node is added",
        );
      }
    }
    for (const peer of peers) {
      if (await findLink(source, peer) === undefined) {
        throw new ClusterError(
          `${source.name} does not subscribe to ${peer.name}: node add needs a full mesh`,
        );
      }
    }
    if (resumed) report(`Node ${X} exists: continuing an earlier run`);

    step(2, resumed ? `Node ${X} already created` : `Creating node ${X}`);
    if (!resumed) {
      await newSql`select spock.node_create(${X}, ${options.node.dsn},
        ${options.node.location ?? null}, ${options.node.country ?? null},
        ${options.node.info ?? null}::jsonb)`;
    }
    const created = await connectAs(X, options.node.dsn, directory);
    await newSql.end({ timeout: 2 });
    newSql = undefined;
    node = created;

    const sourceLink = await findLink(node, source);
    step(3, `Links from the peers (${peers.map((p) => p.name).join(", ") || "none"}) to ${X}`);
    for (const peer of peers) {
      const sets = (await findLink(source, peer))!.sets;
      const link = await createDisabledLink(peer, node, sets);
      if (sourceLink !== undefined && !link.enabled && await readSlot(peer, link) === undefined) {
        throw new ClusterError(
          `Slot ${link.slotName} on ${peer.name} is gone after ${X}'s copy began: the add cannot ` +
            `continue. Run 'spock node remove --node ${X}', recreate ${X}'s database and add it again`,
        );
      }
      const slot = await ensureLinkSlot(peer, node, link);
      report(
        `  ${link.name}: slot ${link.slotName} on ${peer.name} ${
          slot.created ? "created" : "exists"
        } at ${formatLsn(slot.start)}`,
      );
    }

    step(4, `${source.name} has applied each peer's changes up to after its slot`);
    if (sourceLink === undefined) {
      for (const peer of peers) await waitCaughtUp(source, peer, wait);
    }

    const sourceSets = peers.length > 0 ? (await findLink(peers[0], source))!.sets : DEFAULT_SETS;
    step(
      5,
      `${X} subscribes to ${source.name} with ${options.structure ? "structure and " : ""}data`,
    );
    const copying = sourceLink ??
      await createSyncingLink(source, node, sourceSets, options.structure);

    step(6, `Copying ${source.name} to ${X} (run by the daemon serving ${X})`);
    await watchInitialCopy(node, copying, { ...wait, report });
    await waitCaughtUp(node, source, wait);

    step(7, `Starting each peer's link at what the copy holds of it`);
    for (const peer of peers) {
      const link = (await findLink(node, peer))!;
      if (link.enabled) {
        report(`  ${link.name}: enabled by an earlier run`);
        continue;
      }
      const target = await appliedFrom(node, peer);
      if (target === 0n) {
        throw new ClusterError(
          `The copy from ${source.name} recorded no position of ${peer.name}: cannot start ${link.name}`,
        );
      }
      const moved = await advanceLink(peer, node, link, target);
      await enableLink(node, link);
      report(`  ${link.name}: starts at ${formatLsn(target)} (${moved}), enabled`);
    }

    step(8, `Mirroring ${source.name}'s replication sets on ${X}`);
    const mirrored = await mirrorReplicationSets(source, node);
    report(
      `  ${mirrored.sets} sets, ${mirrored.tables} tables, ${mirrored.sequences} sequences added or changed`,
    );

    step(9, `Every node subscribes to ${X}`);
    for (const member of [source, ...peers]) {
      const sets = await setsOf(member, source, peers);
      const link = await createDisabledLink(node, member, sets);
      const slot = await ensureLinkSlot(node, member, link);
      await enableLink(member, link);
      report(`  ${link.name} on ${member.name}: from ${formatLsn(slot.start)}, enabled`);
    }

    step(10, "Waiting for every link of the new node to catch up");
    for (const peer of peers) await waitCaughtUp(node, peer, wait);
    for (const member of [source, ...peers]) await waitCaughtUp(member, node, wait);
    const milliseconds = Math.round(performance.now() - started);
    report(`Node ${X} joined in ${(milliseconds / 1000).toFixed(1)} s`);
    return {
      node: X,
      source: source.name,
      peers: peers.map((p) => p.name),
      resumed,
      milliseconds,
    };
  } finally {
    await newSql?.end({ timeout: 2 }).catch(() => {});
    await closeNodes([source, node, ...peers]);
  }
}

/** The sets `member` subscribes to the source with (the source: those of a peer's link). */
async function setsOf(
  member: ClusterNode,
  source: ClusterNode,
  peers: ClusterNode[],
): Promise<string[]> {
  const link: Link | undefined = member === source
    ? peers.length > 0 ? await findLink(source, peers[0]) : undefined
    : await findLink(member, source);
  return link?.sets ?? DEFAULT_SETS;
}
