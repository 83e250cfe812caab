/**
 * Column lists with Spock's semantics. A table is in a set with a column
 * list and a row filter on a column outside that list, and in a second set
 * without a list. A subscription to both:
 * - gets only the listed columns, in the initial copy and in the stream
 *   (the set without a list does not widen it);
 * - keeps streaming (PostgreSQL would refuse two publications with different
 *   column lists);
 * - has the filter decided on the unlisted column, which it never writes.
 * A subscription to the second set alone gets every column. DROP COLUMN of a
 * listed column works on the provider, the list shrinks, and the streams go on.
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

const DDL = "create table rf (id int primary key, region text, amount int, note text, secret text)";

async function rows(node: TestNode): Promise<string[]> {
  const result = await node.sql`select row(id, region, amount, note, secret)::text as r
    from rf order by id`;
  return result.map((row) => row.r);
}

pgTest("column lists follow Spock's rule for several sets", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["cp", "cs", "ca"], DDL);
  const [provider, listed, all] = nodes;
  await provider.sql`select spock.repset_create('listed')`;
  await provider.sql`select spock.repset_create('full')`;
  await provider.sql`select spock.repset_add_table('listed', 'rf',
    columns := '{id,region,amount,note}', row_filter := 'secret <> ''hide''')`;
  await provider.sql`select spock.repset_add_table('full', 'rf')`;
  await provider.sql`insert into rf values (1, 'eu', 10, 'n1', 's1'), (2, 'us', 20, 'n2', 'hide')`;
  const both = await subscribe(listed, provider, { sets: ["listed", "full"], syncData: true });
  const fullOnly = await subscribe(all, provider, { sets: ["full"], syncData: true });
  const daemon = runDaemon([listed, all]);
  try {
    await waitForSync(listed, both);
    await waitForSync(all, fullOnly);
    assert.deepEqual(await rows(listed), ["(1,eu,10,n1,)"], "the copy: listed columns, filtered");
    assert.deepEqual(await rows(all), ["(1,eu,10,n1,s1)", "(2,us,20,n2,hide)"]);

    await provider
      .sql`insert into rf values (3, 'eu', 30, 'n3', 's3'), (4, 'us', 40, 'n4', 'hide')`;
    await provider.sql`update rf set amount = 31 where id = 3`;
    await provider.sql`update rf set secret = 'hide', amount = 11 where id = 1`;
    await provider.sql`insert into rf values (6, 'eu', 60, 'n6', 's6')`;
    await waitForRow(listed, "rf", "id", 6);
    await waitForRow(all, "rf", "id", 6);
    // Row 1's update fails the filter (its new row decides): not applied there.
    assert.deepEqual(await rows(listed), ["(1,eu,10,n1,)", "(3,eu,31,n3,)", "(6,eu,60,n6,)"]);
    assert.deepEqual((await rows(all))[0], "(1,eu,11,n1,hide)");

    // A listed column dropped on the provider: the list shrinks, the streams go on.
    await provider.sql`alter table rf drop column note`;
    const [list] = await provider.sql`select r.set_att_list from spock.replication_set_table r
      join spock.replication_set s using (set_id) where s.set_name = 'listed'`;
    assert.deepEqual(list.set_att_list, ["id", "region", "amount"]);
    await provider.sql`insert into rf values (5, 'eu', 50, 's5')`;
    await waitForRow(listed, "rf", "id", 5);
    await waitForRow(all, "rf", "id", 5);
    assert.ok((await rows(listed)).includes("(5,eu,50,,)"));
    assert.ok((await rows(all)).includes("(5,eu,50,,s5)"));
    for (const [node, sub] of [[listed, both], [all, fullOnly]] as const) {
      const [status] = await node.sql`select status, last_error from spock.sub_show_status(${sub})`;
      assert.deepEqual({ ...status }, { status: "replicating", last_error: null });
    }
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
