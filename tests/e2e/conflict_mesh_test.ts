/**
 * Convergence under conflict: three nodes in a full mesh insert, update and
 * delete random rows of the same small key range for a minute; once quiet,
 * every node holds the same rows, every conflict that is always recorded is
 * in spock.resolutions (counters and rows agree), no transaction went to
 * exception handling and every worker still replicates.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribeMesh,
  waitConverged,
  waitForSync,
  writeConflicting,
} from "./_mesh.ts";

const SECONDS = Number(Deno.env.get("SPOCK_TEST_MESH_SECONDS") ?? "15");
const KEYS = 40;

/** One node's writer: single-row transactions on random keys until the deadline. */
pgTest("a three-node mesh converges under conflicting writes", async (_t, cluster) => {
  const nodes = await createNodes(
    cluster,
    ["ca", "cb", "cc"],
    "create table kv (k int primary key, v int not null, note text)",
  );
  await addAllTables(nodes);
  const subscriptions = await subscribeMesh(nodes);
  const daemon = runDaemon(nodes, { save_resolutions: true, update_missing: "insert" });
  let running = true;
  try {
    for (const [node, sub] of subscriptions) await waitForSync(node, sub);
    const until = Date.now() + SECONDS * 1000;
    // Paced so that three nodes and their daemon share two cores.
    const operations = (await Promise.all(
      nodes.map((node, i) => writeConflicting(node, { until, seed: i + 7, keys: KEYS, paceMs: 2 })),
    )).map((done) => done.operations);
    assert.ok(operations.every((n) => n > 100), `operations per node: ${operations}`);
    await waitConverged(nodes, "kv", 120_000);
    for (const [node, sub] of subscriptions) {
      const [row] = await node.sql`select status from spock.sub_show_status(${sub})`;
      assert.equal(row.status, "replicating", `${sub} on ${node.name}`);
    }
    // Stopped, every worker has written its counters.
    await daemon.stop();
    running = false;
    let conflicts = 0;
    for (const node of nodes) {
      const [errors] = await node.sql`select count(*)::int as n from spock.exception_log`;
      assert.equal(errors.n, 0, `exception_log on ${node.name}`);
      const [counted] = await node.sql`
        select sum(confl_insert_exists)::int as insert_exists,
          sum(confl_update_missing)::int as update_missing,
          sum(confl_delete_missing)::int as delete_missing,
          sum(confl_delete_exists)::int as delete_exists,
          sum(confl_update_origin_differs)::int as update_origin_differs
        from spock._channel_stats`;
      const recorded = await node.sql`
        select conflict_type, count(*)::int as n,
          count(*) filter (where conflict_resolution = 'keep_local')::int as kept
        from spock.resolutions group by conflict_type`;
      const byType = new Map(recorded.map((row) => [row.conflict_type, row]));
      for (const type of ["insert_exists", "update_missing", "delete_missing", "delete_exists"]) {
        assert.equal(
          byType.get(type)?.n ?? 0,
          counted[type] ?? 0,
          `${type} on ${node.name}: resolutions vs counters`,
        );
      }
      const keptUpdates = byType.get("update_origin_differs")?.kept ?? 0;
      assert.ok(keptUpdates <= (counted.update_origin_differs ?? 0));
      conflicts += recorded.reduce((sum, row) => sum + row.n, 0);
    }
    assert.ok(conflicts > 0, "the workload produced conflicts");
  } finally {
    if (running) await daemon.stop();
    await closeNodes(nodes);
  }
});
