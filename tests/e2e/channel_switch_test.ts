/**
 * A subscription whose sets change (sub_add_repset) gets a channel for its
 * new sets without a resync: it keeps streaming the old publications until
 * it has applied past the point where the new channel may be streamed, then
 * switches, and the added set's changes arrive from then on, with those of
 * the sets it had.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { closeNodes, createNodes, runDaemon, subscribe, waitForRow, waitForSync } from "./_mesh.ts";

pgTest("sub_add_repset switches the stream to the new sets' channel", async (_t, cluster) => {
  const nodes = await createNodes(
    cluster,
    ["hp", "hs"],
    "create table t (k int primary key); create table t2 (k int primary key)",
  );
  const [provider, subscriber] = nodes;
  await provider.sql`select spock.repset_create('extra')`;
  await provider.sql`select spock.repset_add_table('default', 't')`;
  await provider.sql`select spock.repset_add_table('extra', 't2')`;
  const sub = await subscribe(subscriber, provider, { sets: ["default"] });
  const daemon = runDaemon([subscriber]);
  try {
    await waitForSync(subscriber, sub);
    await provider.sql`insert into t values (1)`;
    await waitForRow(subscriber, "t", "k", 1);
    const [before] = await subscriber.sql`select publications::text[] as p from spock._sub_channel`;

    await subscriber.sql`select spock.sub_add_repset(${sub}, 'extra')`;
    let next = 0;
    await pollUntil(async () => {
      next++;
      await provider.sql`insert into t2 values (${next})`;
      const [row] = await subscriber.sql`select count(*)::int as n from t2`;
      return row.n > 0 || undefined;
    }, { timeoutMs: 30_000, intervalMs: 300, what: "the added set's changes to arrive" });
    const [after] = await subscriber.sql`select publications::text[] as p, sets
      from spock._sub_channel`;
    assert.deepEqual(after.sets, ["default", "extra"]);
    assert.notDeepEqual(after.p, before.p);
    await provider.sql`insert into t2 values (1000)`;
    await provider.sql`insert into t values (1000)`;
    await waitForRow(subscriber, "t2", "k", 1000);
    await waitForRow(subscriber, "t", "k", 1000);
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
