/**
 * Row filters decide on the provider's whole row, as in Spock, though the
 * subscriber evaluates them: an UPDATE that leaves a filtered TOASTed column
 * unchanged (pgoutput does not resend it) is judged on that column's value,
 * also when it conflicts or finds no row; a filter on a stored generated
 * column (never streamed) is judged on its computed value.
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
create table docs (id int primary key, status text, body text);
alter table docs alter column body set storage external;
create table orders (id int primary key, qty int, price int,
  total int generated always as (qty * price) stored);
create table m (k int primary key)`;

async function statuses(node: TestNode): Promise<string[]> {
  const rows = await node.sql`select id || ':' || status as s from docs order by id`;
  return rows.map((row) => row.s);
}

pgTest("row filters see unchanged TOAST values and generated columns", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["rp", "rs"], DDL);
  const [provider, subscriber] = nodes;
  await provider
    .sql`select spock.repset_add_table('default', 'docs', row_filter := 'body like ''keep%''')`;
  await provider
    .sql`select spock.repset_add_table('default', 'orders', row_filter := 'total > 100')`;
  await provider.sql`select spock.repset_add_table('default', 'm')`;
  const sub = await subscribe(subscriber, provider);
  const daemon = runDaemon([subscriber], { update_missing: "insert" });
  let marker = 0;
  const caughtUp = async () => {
    marker++;
    await provider.sql`insert into m values (${marker})`;
    await waitForRow(subscriber, "m", "k", marker);
  };
  try {
    await waitForSync(subscriber, sub);
    // Bodies large enough to be stored out of line (TOAST).
    await provider.sql`insert into docs
      select g, 'new', case when g = 2 then 'drop' else 'keep' end || repeat('x', 20000)
      from generate_series(1, 3) g`;
    await caughtUp();
    assert.deepEqual(await statuses(subscriber), ["1:new", "3:new"]);
    // The body is unchanged, so not sent: the filter must still see it.
    await provider.sql`update docs set status = 'done' where id in (1, 2)`;
    await caughtUp();
    assert.deepEqual(await statuses(subscriber), ["1:done", "3:new"]);
    // A local change to row 1 (the newer remote update wins), and row 3 gone
    // locally: its update has no row, and without the body it cannot pass.
    await subscriber.sql`update docs set status = 'local' where id = 1`;
    await subscriber.sql`delete from docs where id = 3`;
    await provider.sql`update docs set status = 'again' where id in (1, 2, 3)`;
    await caughtUp();
    assert.deepEqual(await statuses(subscriber), ["1:again"]);

    await provider.sql`insert into orders (id, qty, price) values (1, 2, 10), (2, 20, 10)`;
    await caughtUp();
    const orders = await subscriber.sql`select id, total from orders order by id`;
    assert.deepEqual(orders.map((row) => ({ ...row })), [{ id: 2, total: 200 }]);
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
