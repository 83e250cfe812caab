/**
 * Row filters of replication sets, with Spock's semantics, in the initial
 * copy and in the stream: a row reaches the subscriber only when it passes
 * the filter of every subscribed set that has one (publications would OR
 * them); the new row decides for INSERT and UPDATE, the key for DELETE.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { closeNodes, createNodes, runDaemon, waitForSync } from "./_mesh.ts";

pgTest("row filters of two sets are ANDed in the copy and in the stream", async (_t, cluster) => {
  const nodes = await createNodes(
    cluster,
    ["fp", "fs"],
    "create table items (id int primary key, region text, qty int)",
  );
  const [provider, subscriber] = nodes;
  const p = provider.sql;
  await p`insert into items select g, case when g % 2 = 0 then 'eu' else 'us' end, g
    from generate_series(1, 40) g`;
  await p`select spock.repset_create('eu_only')`;
  await p`select spock.repset_create('big_only')`;
  await p`select spock.repset_add_table('eu_only', 'items', row_filter := 'region = ''eu''')`;
  await p`select spock.repset_add_table('big_only', 'items', row_filter := 'qty >= 20')`;
  const daemon = runDaemon(nodes);
  try {
    await subscriber.sql`select spock.sub_create('filtered', ${provider.dsn},
      replication_sets := array['eu_only', 'big_only'], synchronize_data := true)`;
    await waitForSync(subscriber, "filtered");
    const ids = async () =>
      (await subscriber.sql`select id from items order by id`).map((row) => row.id);
    // Copied: even ids from 20 up.
    assert.deepEqual(await ids(), [20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40]);

    await p`insert into items values (100, 'eu', 50), (101, 'us', 50), (102, 'eu', 5)`;
    await p`update items set qty = 99 where id = 40`; // still passes: applied
    await p`update items set qty = 1 where id = 38`; // new row fails: not applied
    await p`update items set region = 'eu' where id = 21`; // not present locally, now passes
    await p`delete from items where id in (36, 101)`; // key only: filter not true, not applied
    await p`insert into items values (103, 'eu', 60)`;
    await pollUntil(async () => (await ids()).includes(103), { what: "the last insert" });
    assert.deepEqual(await ids(), [20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 100, 103]);
    const [row40] = await subscriber.sql`select qty from items where id = 40`;
    assert.equal(row40.qty, 99);
    const [row38] = await subscriber.sql`select qty from items where id = 38`;
    assert.equal(row38.qty, 38);
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
