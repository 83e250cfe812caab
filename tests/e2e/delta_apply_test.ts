/**
 * Delta apply: a counter registered with spock.delta_apply() on every node of
 * a three-node mesh, incremented 1,000 times on each node at once, ends at
 * exactly 3,000 more everywhere (local + (new − old) instead of last-update-wins).
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribeMesh,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

const INCREMENTS = 1000;

pgTest(
  "concurrent increments of a delta-apply column sum up on every node",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["da", "db", "dc"],
      "create table counters (id int primary key, n bigint not null default 0, label text)",
    );
    await addAllTables(nodes);
    for (const node of nodes) {
      await node.sql`select spock.delta_apply('counters', 'n')`;
    }
    const subscriptions = await subscribeMesh(nodes);
    const daemon = runDaemon(nodes);
    try {
      for (const [node, sub] of subscriptions) await waitForSync(node, sub);
      await nodes[0].sql`insert into counters values (1, 100, 'start')`;
      await waitConverged(nodes, "counters");
      await Promise.all(nodes.map(async (node) => {
        for (let i = 0; i < INCREMENTS; i++) {
          await node.sql`update counters set n = n + 1 where id = 1`;
        }
      }));
      const expected = 100 + nodes.length * INCREMENTS;
      const counts = async () =>
        await Promise.all(nodes.map(async (node) => {
          const [row] = await node.sql`select n::int as n from counters where id = 1`;
          return row.n as number;
        }));
      let last: number[] = [];
      await pollUntil(async () => {
        last = await counts();
        return last.every((n) => n >= expected) || undefined;
      }, { timeoutMs: 120_000, what: `every counter to reach ${expected}` }).catch((error) => {
        throw new Error(`Counters ${JSON.stringify(last)}: ${error.message}`);
      });
      assert.deepEqual(await counts(), nodes.map(() => expected));
      const digest = await waitConverged(nodes, "counters");
      assert.ok(digest.startsWith("1:"));
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
