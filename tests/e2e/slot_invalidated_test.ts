/**
 * A provider that removes WAL a stopped subscriber's slot still needed
 * (max_slot_wal_keep_size): the worker reports the invalidated slot by name
 * with the way out, and spock.sub_resync copies everything again under a new
 * slot, after which the stream goes on from there.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  subscribe,
  waitConverged,
  waitForRow,
  waitForSync,
  withDaemon,
} from "./_mesh.ts";

pgTest("an invalidated slot is named with its remedy, and sub_resync recovers", async (
  _t,
  cluster,
) => {
  const nodes = await createNodes(
    cluster,
    ["sp", "ss"],
    "create table t (k int primary key, v text)",
  );
  const [provider, subscriber] = nodes;
  try {
    await addAllTables([provider]);
    const sub = await subscribe(subscriber, provider, { syncData: true });
    const [{ slot }] = await subscriber.sql`select sub_slot_name::text as slot
      from spock.subscription where sub_name = ${sub}`;
    const engine = { restart_delay_default: 200 };
    await withDaemon([subscriber], engine, async () => {
      await waitForSync(subscriber, sub);
      await provider.sql`insert into t values (1, 'streamed')`;
      await waitForRow(subscriber, "t", "k", 1);
    });

    // With the daemon stopped, the provider moves on past what the slot holds.
    for (let k = 2; k <= 4; k++) {
      await provider.sql`insert into t values (${k}, 'only in the lost WAL')`;
      await provider.sql`select pg_switch_wal()`;
    }
    await pollUntil(async () => {
      await provider.sql`checkpoint`;
      const [row] = await provider.sql`select wal_status from pg_replication_slots
        where slot_name = ${slot}`;
      return row?.wal_status === "lost";
    }, { what: `slot ${slot} to be invalidated` });

    await withDaemon([subscriber], engine, async () => {
      const message = await pollUntil(async () => {
        const [row] = await subscriber.sql`select error_message from spock._sub_error`;
        return row?.error_message?.includes("invalidated")
          ? row.error_message as string
          : undefined;
      }, { what: "the worker to report the invalidated slot" });
      assert.match(
        message,
        new RegExp(`^Replication slot "${slot}" was invalidated by the provider`),
      );
      assert.match(message, /max_slot_wal_keep_size/);
      assert.match(message, /spock\.sub_resync\(subscription_name\)/);
      const [status] = await subscriber.sql`select status from spock.sub_show_status(${sub})`;
      assert.notEqual(status.status, "replicating");

      await subscriber.sql`select spock.sub_resync(${sub})`;
      await waitForSync(subscriber, sub);
      await waitConverged(nodes, "t");
      await provider.sql`insert into t values (5, 'streamed from the new slot')`;
      await waitForRow(subscriber, "t", "k", 5);
    });
    const [row] = await provider.sql`select wal_status from pg_replication_slots
      where slot_name = ${slot}`;
    assert.notEqual(row?.wal_status, "lost", "a new slot of the same name");
  } finally {
    await closeNodes(nodes);
  }
}, { conf: { max_slot_wal_keep_size: "1MB" }, everyVersion: true });
