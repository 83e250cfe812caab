/**
 * Last-update-wins between two nodes that both write while the subscriptions
 * between them are paused (sub_disable): every conflict type that LWW
 * resolves is met on one node or the other, the newer write wins on both, and
 * each recorded conflict is a spock.resolutions row with both row images.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  type TestNode,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

interface Resolution {
  conflict_type: string;
  conflict_resolution: string;
  local_tuple: string | null;
  remote_tuple: string | null;
  k: number;
  local_origin: number | null;
  remote_origin: number;
  idxname: string | null;
  relname: string;
  has_times: boolean;
}

async function resolutions(node: TestNode): Promise<Resolution[]> {
  return await node.sql`
    select conflict_type, conflict_resolution, local_tuple, remote_tuple,
      coalesce(local_tuple::json ->> 'k', remote_tuple::json ->> 'k')::int as k,
      local_origin, remote_origin, idxname, relname,
      (remote_timestamp is not null and remote_lsn is not null and remote_xid is not null) as has_times
    from spock.resolutions order by k, conflict_type` as unknown as Resolution[];
}

async function nodeId(node: TestNode): Promise<number> {
  const [row] = await node.sql`select node_id::int8 as id from spock.local_node`;
  return Number(row.id);
}

pgTest(
  "last-update-wins resolves conflicting writes the same way on both nodes",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["la", "lb"],
      "create table kv (k int primary key, v text not null)",
    );
    const [a, b] = nodes;
    await addAllTables(nodes);
    const subB = await subscribe(b, a);
    const subA = await subscribe(a, b);
    const daemon = runDaemon(nodes, { save_resolutions: true, update_missing: "insert" });
    try {
      await waitForSync(b, subB);
      await waitForSync(a, subA);
      await a.sql`insert into kv select g, 'start' from generate_series(1, 5) g`;
      await waitConverged(nodes, "kv");
      const [idA, idB] = [await nodeId(a), await nodeId(b)];

      await b.sql`select spock.sub_disable(${subB})`;
      await a.sql`select spock.sub_disable(${subA})`;
      // Each pair: the first write is older, the second newer.
      await a.sql`insert into kv values (10, 'a')`;
      await b.sql`insert into kv values (10, 'b')`; // insert_exists: b's wins
      await b.sql`update kv set v = 'b' where k = 1`;
      await a.sql`update kv set v = 'a' where k = 1`; // update_origin_differs: a's wins
      await a.sql`delete from kv where k = 2`;
      await b.sql`update kv set v = 'b' where k = 2`; // delete_exists on b, update_missing on a
      await a.sql`delete from kv where k = 3`;
      await b.sql`delete from kv where k = 3`; // delete_missing on both
      await b.sql`select spock.sub_enable(${subB})`;
      await a.sql`select spock.sub_enable(${subA})`;

      await waitConverged(nodes, "kv");
      const rows = await a.sql`select k, v from kv order by k`;
      assert.deepEqual(rows.map((r) => [r.k, r.v]), [
        [1, "a"],
        [2, "b"],
        [4, "start"],
        [5, "start"],
        [10, "b"],
      ]);

      const onA = await pollUntil(async () => {
        const found = await resolutions(a);
        return found.length >= 4 ? found : undefined;
      }, { what: "resolutions on la" });
      assert.deepEqual(onA.map((r) => [r.k, r.conflict_type, r.conflict_resolution]), [
        [1, "update_origin_differs", "keep_local"],
        [2, "update_missing", "apply_remote"],
        [3, "delete_missing", "skip"],
        [10, "insert_exists", "apply_remote"],
      ]);
      const onB = await pollUntil(async () => {
        const found = await resolutions(b);
        return found.length >= 3 ? found : undefined;
      }, { what: "resolutions on lb" });
      assert.deepEqual(onB.map((r) => [r.k, r.conflict_type, r.conflict_resolution]), [
        [2, "delete_exists", "skip"],
        [3, "delete_missing", "skip"],
        [10, "insert_exists", "keep_local"],
      ]);

      // Both images, the origins as node ids, the index, the remote commit.
      const insertOnB = onB.find((r) => r.k === 10)!;
      assert.deepEqual(JSON.parse(insertOnB.local_tuple!), { k: 10, v: "b" });
      assert.deepEqual(JSON.parse(insertOnB.remote_tuple!), { k: 10, v: "a" });
      assert.equal(insertOnB.local_origin, idB);
      assert.equal(insertOnB.remote_origin, idA);
      assert.equal(insertOnB.idxname, "kv_pkey");
      assert.equal(insertOnB.relname, "public.kv");
      assert.ok(insertOnB.has_times);
      const updateOnA = onA.find((r) => r.k === 1)!;
      assert.deepEqual(JSON.parse(updateOnA.local_tuple!), { k: 1, v: "a" });
      assert.deepEqual(JSON.parse(updateOnA.remote_tuple!), { k: 1, v: "b" });
      assert.equal(updateOnA.local_origin, idA);
      assert.equal(updateOnA.remote_origin, idB);
      const missingOnA = onA.find((r) => r.k === 3)!;
      assert.equal(missingOnA.local_tuple, null);
      assert.equal(missingOnA.local_origin, null);

      // The counters saw the same conflicts.
      const counters = await pollUntil(async () => {
        const [row] = await a.sql`
        select sum(confl_insert_exists)::int as ie, sum(confl_update_origin_differs)::int as uod,
          sum(confl_update_missing)::int as um, sum(confl_delete_missing)::int as dm
        from spock._channel_stats`;
        return row.ie === 1 && row.uod >= 1 && row.um === 1 && row.dm === 1 ? row : undefined;
      }, { what: "channel counters on la" });
      assert.equal(counters.ie, 1);
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
  { everyVersion: true },
);
