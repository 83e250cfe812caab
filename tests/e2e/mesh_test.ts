/**
 * A full mesh of three nodes, every node subscribed to both others with
 * forward_origins '{}', every node writing at once: all converge to the same
 * contents, and no change ever comes back to the node it came from (PG 16+
 * filters with origin 'none', PG 15 in the engine).
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribeMesh,
  type TestNode,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

const TABLES = `
create table items (id int primary key, node text not null, qty int not null, note text);
create table audit (node text, n int, at timestamptz default now(), primary key (node, n));
`;

async function writeLoad(node: TestNode, index: number): Promise<void> {
  for (let batch = 0; batch < 20; batch++) {
    await node.sql.begin(async (tx) => {
      const base = index * 100_000 + batch * 50;
      await tx`insert into items select g, ${node.name}, g % 7, null
        from generate_series(${base}::int, ${base + 49}::int) g`;
      await tx`update items set qty = qty + 1, note = ${node.name}
        where id between ${base} and ${base + 9}`;
      await tx`delete from items where id = ${base + 49}`;
      await tx`insert into audit (node, n) values (${node.name}, ${batch})`;
    });
  }
}

pgTest("a three-node mesh where every node writes converges", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["n1", "n2", "n3"], TABLES);
  const daemon = runDaemon(nodes);
  try {
    await addAllTables(nodes);
    const subs = await subscribeMesh(nodes);
    for (const [node, sub] of subs) await waitForSync(node, sub);

    await Promise.all(nodes.map((node, i) => writeLoad(node, i + 1)));
    const items = await waitConverged(nodes, "items");
    assert.equal(items.split(":")[0], String(3 * 20 * 49));
    await waitConverged(nodes, "audit");

    // Every row's last writer is its own node: a change that came back would
    // have been re-applied with another origin.
    for (const node of nodes) {
      const rows = await node.sql`
        select i.node, (spock.xact_commit_timestamp_origin(i.xmin)).roident <> 0 as remote,
          count(*)::int as n
        from items i group by 1, 2 order by 1, 2`;
      for (const row of rows) {
        assert.equal(row.remote, row.node !== node.name, `${node.name}: ${JSON.stringify(row)}`);
      }
    }
    const summaries = daemon.summaries();
    assert.equal(summaries.length, 6);
    for (const summary of summaries) assert.ok(summary.transactions >= 20, JSON.stringify(summary));
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
}, { everyVersion: true });
