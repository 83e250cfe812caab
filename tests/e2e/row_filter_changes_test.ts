/**
 * Replication-set changes made on the provider while a subscription streams
 * apply to exactly the provider transactions committed after them, with no
 * restart: a table added with a row filter, a filter changed between two
 * transactions, a change made while the daemon is stopped (the restart
 * filters the older transactions the old way), a table removed from its set,
 * and a changed column list.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  type TestNode,
  waitForRow,
  waitForSync,
} from "./_mesh.ts";

const DDL = `
create table m (k int primary key);
create table t3 (id int primary key);
create table t4 (id int primary key, a int, b int)`;

async function ids(node: TestNode): Promise<number[]> {
  return (await node.sql`select id from t3 order by id`).map((row) => row.id);
}

pgTest("row filter and set changes take effect in stream order", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["fp", "fs"], DDL);
  const [provider, subscriber] = nodes;
  let marker = 0;
  /** Waits until every provider transaction so far is applied. */
  const caughtUp = async () => {
    marker++;
    await provider.sql`insert into m values (${marker})`;
    await waitForRow(subscriber, "m", "k", marker);
  };
  const setFilter = (filter: string) =>
    provider.sql.begin(async (tx) => {
      await tx`select spock.repset_remove_table('default', 't3')`;
      await tx`select spock.repset_add_table('default', 't3', row_filter := ${filter})`;
    });
  await provider.sql`select spock.repset_add_table('default', 'm')`;
  await provider.sql`select spock.repset_add_table('default', 't4', columns := '{id,a}')`;
  const sub = await subscribe(subscriber, provider);
  let daemon = runDaemon([subscriber]);
  try {
    await waitForSync(subscriber, sub);

    // A table added with a filter while streaming: its later rows are filtered.
    await provider.sql`insert into t3 values (1)`;
    await provider.sql`select spock.repset_add_table('default', 't3', row_filter := 'id > 10')`;
    await provider.sql`insert into t3 values (5), (20)`;
    await caughtUp();
    assert.deepEqual(await ids(subscriber), [20]);

    // The filter changes between two transactions written back to back.
    await provider.sql`insert into t3 values (30)`;
    await setFilter("id > 50");
    await provider.sql`insert into t3 values (40), (60)`;
    await caughtUp();
    assert.deepEqual(await ids(subscriber), [20, 30, 60]);

    // Changed while the daemon is stopped: the restart filters each
    // transaction with the filter of its time, not the provider's newest.
    await daemon.stop();
    await provider.sql`insert into t3 values (45), (70)`;
    await setFilter("id > 40");
    await provider.sql`insert into t3 values (41), (42)`;
    daemon = runDaemon([subscriber]);
    await caughtUp();
    assert.deepEqual(await ids(subscriber), [20, 30, 41, 42, 60, 70]);

    // Removed from the set: its rows stop.
    await provider.sql`select spock.repset_remove_table('default', 't3')`;
    await provider.sql`insert into t3 values (100)`;
    await caughtUp();
    assert.deepEqual(await ids(subscriber), [20, 30, 41, 42, 60, 70]);

    // A column list widened: later rows carry the column.
    await provider.sql`insert into t4 values (1, 1, 1)`;
    await provider.sql.begin(async (tx) => {
      await tx`select spock.repset_remove_table('default', 't4')`;
      await tx`select spock.repset_add_table('default', 't4', columns := '{id,a,b}')`;
    });
    await provider.sql`insert into t4 values (2, 2, 2)`;
    await caughtUp();
    const rows = await subscriber.sql`select id, a, b from t4 order by id`;
    assert.deepEqual(rows.map((row) => ({ ...row })), [
      { id: 1, a: 1, b: null },
      { id: 2, a: 2, b: 2 },
    ]);
    const [state] = await subscriber.sql`select filters from spock._sub_filter_state`;
    assert.deepEqual(state.filters, {});
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
