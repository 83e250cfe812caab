/**
 * The demo's writes and the wait for convergence: every node inserts, updates
 * and deletes its own rows at the same time as the others, then a few rows are
 * updated on two nodes at once (conflicts); convergence is an identical
 * ordered checksum of `accounts` on every node.
 */
import { pollUntil } from "../local_pg/mod.ts";
import type { DemoNode } from "./_mesh.ts";

const INSERT_TRANSACTIONS = 10;
const ROWS_PER_INSERT = 100;
/** Each update transaction changes one in UPDATE_SPREAD rows of the node. */
const UPDATE_TRANSACTIONS = 5;
const UPDATE_SPREAD = 10;
/** Every DELETE_EVERY-th row of a node is deleted again. */
const DELETE_EVERY = 50;
const CONVERGE_TIMEOUT_MS = 30_000;

/** What {@link writeOnAllNodes} did, summed over the nodes. */
export interface WriteCounts {
  transactions: number;
  inserted: number;
  updated: number;
  deleted: number;
}

/** The first id of node number `index` (1-based): each node owns its own id range. */
function firstId(index: number): number {
  return index * 100_000 + 1;
}

/** The rows every node must end with. */
export function expectedRows(nodeCount: number): number {
  const perNode = INSERT_TRANSACTIONS * ROWS_PER_INSERT;
  return nodeCount * (perNode - perNode / DELETE_EVERY);
}

/**
 * One node's share: inserts in several transactions, then updates and a
 * delete of its own rows. No row is written by two nodes here, so no
 * conflict can arise whatever order the changes arrive in.
 */
async function writeOwnRows(node: DemoNode, index: number): Promise<WriteCounts> {
  const first = firstId(index);
  const last = first + INSERT_TRANSACTIONS * ROWS_PER_INSERT - 1;
  const counts: WriteCounts = { transactions: 0, inserted: 0, updated: 0, deleted: 0 };
  for (let batch = 0; batch < INSERT_TRANSACTIONS; batch++) {
    const from = first + batch * ROWS_PER_INSERT;
    const rows = await node.sql`insert into accounts (id, owner, balance, updated_by)
      select g, 'owner ' || g, 100, ${node.name}
      from generate_series(${from}::int, ${from + ROWS_PER_INSERT - 1}::int) g`;
    counts.inserted += rows.count;
    counts.transactions++;
  }
  for (let round = 0; round < UPDATE_TRANSACTIONS; round++) {
    const rows = await node.sql`update accounts
      set balance = balance + ${10 * (round + 1)}, updated_by = ${node.name}
      where id between ${first} and ${last} and id % ${UPDATE_SPREAD} = ${round}`;
    counts.updated += rows.count;
    counts.transactions++;
  }
  const rows = await node.sql`delete from accounts
    where id between ${first} and ${last} and id % ${DELETE_EVERY} = 0`;
  counts.deleted += rows.count;
  counts.transactions++;
  return counts;
}

/** Runs every node's share at once; returns the totals. */
export async function writeOnAllNodes(nodes: DemoNode[]): Promise<WriteCounts> {
  const perNode = await Promise.all(nodes.map((node, i) => writeOwnRows(node, i + 1)));
  return perNode.reduce((sum, counts) => ({
    transactions: sum.transactions + counts.transactions,
    inserted: sum.inserted + counts.inserted,
    updated: sum.updated + counts.updated,
    deleted: sum.deleted + counts.deleted,
  }));
}

/** A row updated first on `first`, then on `second`: every node must end with `second`'s. */
export interface TwoNodeUpdate {
  id: number;
  first: DemoNode;
  second: DemoNode;
}

/** Balances that mark the first and the second of the two updates. */
const FIRST_BALANCE = 1000;
const SECOND_BALANCE = 2000;

/** Who wrote row `id` on `node` last, and to which balance: `n1=1000.00`. */
async function rowVersion(node: DemoNode, id: number): Promise<string | undefined> {
  const [row] = await node.sql`select updated_by || '=' || balance as version
    from accounts where id = ${id}`;
  return row?.version;
}

function version(node: DemoNode, balance: number): string {
  return `${node.name}=${balance.toFixed(2)}`;
}

/**
 * Updates one row of each node on that node and at once on the next node,
 * all pairs together: the two updates are in flight at the same time, a
 * third node receives them in either order, and last-update-wins keeps the
 * second everywhere.
 */
export async function updateOnTwoNodes(nodes: DemoNode[]): Promise<TwoNodeUpdate[]> {
  const updates = nodes.map((first, i) => ({
    id: firstId(i + 1),
    first,
    second: nodes[(i + 1) % nodes.length],
  }));
  await Promise.all(updates.map(async ({ id, first, second }) => {
    // The row was written on `first` a moment ago: update it on `second` only once it is there.
    await pollUntil(() => rowVersion(second, id), {
      timeoutMs: CONVERGE_TIMEOUT_MS,
      what: `row ${id} to reach ${second.name}`,
    });
    await first.sql`update accounts set balance = ${FIRST_BALANCE}, updated_by = ${first.name}
      where id = ${id}`;
    await second.sql`update accounts set balance = ${SECOND_BALANCE}, updated_by = ${second.name}
      where id = ${id}`;
  }));
  return updates;
}

/** How many conflicts the nodes recorded in spock.resolutions. */
export async function countResolutions(nodes: DemoNode[]): Promise<number> {
  const counts = await Promise.all(nodes.map(async (node) => {
    const [row] = await node.sql`select count(*)::int as n from spock.resolutions`;
    return row.n as number;
  }));
  return counts.reduce((sum, n) => sum + n, 0);
}

/** A node's `accounts`: its row count and an ordered checksum of its rows. */
export interface TableChecksum {
  node: string;
  rows: number;
  checksum: string;
}

async function tableChecksum(node: DemoNode): Promise<TableChecksum> {
  const [row] = await node.sql`
    select count(*)::int as rows,
      coalesce(md5(string_agg(t::text, ',' order by t::text)), '') as checksum
    from accounts t`;
  return { node: node.name, rows: row.rows, checksum: row.checksum };
}

/**
 * Waits until `accounts` has the same checksum on every node, then checks the
 * result is the expected one: `rows` rows, and each row of `updates` with its
 * second writer's value.
 */
export async function waitConverged(
  nodes: DemoNode[],
  options: { rows: number; updates: TwoNodeUpdate[] },
): Promise<TableChecksum[]> {
  let last: TableChecksum[] = [];
  const checksums = await pollUntil(async () => {
    last = await Promise.all(nodes.map(tableChecksum));
    return last.every((sum) => sum.checksum === last[0].checksum) ? last : undefined;
  }, { timeoutMs: CONVERGE_TIMEOUT_MS, what: "the nodes to converge" }).catch((error) => {
    const seen = last.map((sum) => `${sum.node}: ${sum.rows} rows`).join(", ");
    throw new Error(`${error.message} (${seen})`);
  });
  if (checksums[0].rows !== options.rows) {
    throw new Error(`The nodes converged to ${checksums[0].rows} rows, expected ${options.rows}`);
  }
  for (const { id, second } of options.updates) {
    const seen = await rowVersion(nodes[0], id);
    const wanted = version(second, SECOND_BALANCE);
    if (seen !== wanted) throw new Error(`Row ${id} ended as "${seen}", expected "${wanted}"`);
  }
  return checksums;
}
