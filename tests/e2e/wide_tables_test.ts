/**
 * Tables of any width: 101 and 1,000 columns go through the initial copy,
 * streamed INSERT, UPDATE and DELETE with the fast statements, and the same
 * again with conflict handling (an insert_exists conflict makes its whole
 * transaction apply again with the conflict-handling statements).
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

const WIDTHS = [101, 1_000];

/** A table of `width` columns: the key, then int columns defaulting to their number. */
function wideTable(width: number): string {
  const columns = Array.from({ length: width - 1 }, (_, i) => `c${i + 1} int default ${i + 1}`);
  return `create table w${width} (id int primary key, ${columns.join(", ")})`;
}

pgTest("tables of 101 and 1,000 columns replicate in both apply modes", async (_t, cluster) => {
  const ddl = WIDTHS.map(wideTable).join(";\n");
  const nodes = await createNodes(cluster, ["wp", "ws"], ddl);
  const [provider, subscriber] = nodes;
  for (const width of WIDTHS) {
    await provider.sql.unsafe(`insert into w${width} (id) values (1), (2), (3)`);
  }
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider, { syncData: true });
  const daemon = runDaemon([subscriber]);
  try {
    await waitForSync(subscriber, sub);
    for (const width of WIDTHS) {
      const table = `w${width}`;
      await waitConverged(nodes, table);
      // Fast statements: nothing conflicts.
      await provider.sql.unsafe(`insert into ${table} (id, c${width - 1}) values (4, -4)`);
      await provider.sql.unsafe(`update ${table} set c50 = c50 + 1000, c99 = 7 where id = 1`);
      await provider.sql.unsafe(`delete from ${table} where id = 2`);
      await waitConverged(nodes, table);
      // A local row with the key of a later remote insert: the transaction conflicts
      // and is applied again with conflict handling, its update and delete too.
      await subscriber.sql.unsafe(`insert into ${table} (id, c1) values (10, -1)`);
      await provider.sql.begin(async (tx) => {
        await tx.unsafe(`insert into ${table} (id, c2) values (10, -2)`);
        await tx.unsafe(`update ${table} set c${width - 1} = 99 where id = 1`);
        await tx.unsafe(`delete from ${table} where id = 3`);
      });
      await waitConverged(nodes, table);
      const [row] = await subscriber.sql.unsafe(`select c1, c2 from ${table} where id = 10`);
      assert.deepEqual({ ...row }, { c1: 1, c2: -2 }, `${table}: the remote insert won`);
    }
  } finally {
    await daemon.stop();
  }
  const stats = await subscriber.sql`select table_name, confl_insert_exists::int as n
    from spock.channel_table_stats order by table_name`;
  assert.deepEqual(stats.map((row) => ({ ...row })), [
    { table_name: "public.w1000", n: 1 },
    { table_name: "public.w101", n: 1 },
  ]);
  await closeNodes(nodes);
});
