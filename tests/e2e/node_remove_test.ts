/**
 * `spock node remove` on a three-node mesh under writes: n3 stops writing
 * and is removed while n1 and n2 keep writing. Everything n3 wrote reaches
 * n1 and n2, its subscriptions, slots and origins are gone from every node,
 * and n1 and n2 go on replicating to each other.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { removeNode } from "../../mod/cluster/mod.ts";
import {
  closeNodes,
  createNodes,
  runDaemon,
  subscribeMesh,
  waitConverged,
  waitForSync,
  writeNumbered,
} from "./_mesh.ts";

const WRITES = 3_000;

pgTest(
  "node remove under writes loses nothing n3 wrote and leaves no slot or origin of it",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["n1", "n2", "n3"],
      "create table log (origin text, n int)",
    );
    const [n1, n2, n3] = nodes;
    for (const node of nodes) {
      await node.sql`select spock.repset_add_table('default_insert_only', 'log')`;
    }
    const subs = await subscribeMesh(nodes);
    const daemon = runDaemon(nodes);
    try {
      for (const [node, sub] of subs) await waitForSync(node, sub);
      const writers = Promise.all([n1, n2].map((node) => writeNumbered(node, WRITES)));
      await writeNumbered(n3, 1_000);
      const lines: string[] = [];
      const result = await removeNode({
        node: { name: "n3", dsn: n3.dsn },
        directory: { dsns: new Map(), env: {}, applicationName: "node remove test" },
        force: false,
        timeoutMs: 60_000,
        report: (line) => lines.push(line),
      });
      assert.equal(result.droppedSubscriptions.length, 4, lines.join("\n"));
      assert.equal(result.droppedSlots.length, 4, lines.join("\n"));
      for (const node of [n1, n2]) {
        const [{ rows }] = await node.sql`select count(distinct n)::int as rows from log
        where origin = 'n3'`;
        assert.equal(rows, 1_000, `everything n3 wrote is on ${node.name}`);
        const left = await node.sql`select sub_name::text from spock.subscription s
        join spock.node o on o.node_id in (s.sub_origin, s.sub_target) where o.node_name = 'n3'`;
        assert.deepEqual([...left], [], `no subscription of n3 on ${node.name}`);
        const known = await node.sql`select node_name::text from spock.node where node_name = 'n3'`;
        assert.deepEqual([...known], [], `${node.name} no longer knows n3`);
      }
      const [{ local }] = await n3.sql`select count(*)::int as local from spock.local_node`;
      assert.equal(local, 0, "n3 is no spock node any more");
      // All three databases share one server: its slots and origins are all of them.
      const slots = await n1.sql`select slot_name::text from pg_replication_slots
      where slot_name like '%n3%'`;
      assert.deepEqual([...slots], []);
      await pollUntil(async () => {
        const origins = await n1.sql`select roname::text from pg_replication_origin
        where roname like '%n3%'`;
        return origins.length === 0 || undefined;
      }, { what: "n3's origins to be dropped" });
      await writers;
      await waitConverged([n1, n2], "log");
      const [{ total }] = await n2.sql`select count(*)::int as total from log`;
      assert.equal(total, 2 * WRITES + 1_000);
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
