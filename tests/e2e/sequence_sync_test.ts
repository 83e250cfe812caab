/**
 * Sequences of a subscription's sets: the initial sync sets the subscriber's
 * past every copied id (the provider's value ahead by its cache size), so a
 * local insert there does not collide; `sync_seq` on the provider, and the
 * daemon every `sequence_sync_interval`, move the subscriber's sequence
 * through the queue, in stream order, ahead of the provider's.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  waitForSync,
} from "./_mesh.ts";

pgTest(
  "the initial sync sets the subscriber's sequences ahead of the copied ids; sync_seq and the periodic sync move them",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["p1", "s1"],
      "create table t (id serial primary key, v text)",
    );
    const [provider, subscriber] = nodes;
    await addAllTables([provider]);
    await provider.sql`select spock.repset_add_all_seqs('default', array['public'])`;
    await provider.sql`insert into t (v) select 'p' from generate_series(1, 5)`;
    const ahead = async () => {
      const [row] = await provider.sql`select (last_value + (select cache_size
        from spock.sequence_state where seqoid = 't_id_seq'::regclass))::text as v from t_id_seq`;
      return row.v as string;
    };
    const expected = await ahead();
    const daemon = runDaemon(nodes, { sequence_sync_interval: 1 });
    try {
      const sub = await subscribe(subscriber, provider, { syncData: true });
      await waitForSync(subscriber, sub);
      const [copied] = await subscriber.sql`select max(id)::int as max from t`;
      assert.equal(copied.max, 5);
      const [seq] = await subscriber.sql`select last_value::text as v from t_id_seq`;
      assert.equal(seq.v, expected, "set to the provider's value plus its cache size");
      const [local] = await subscriber.sql`insert into t (v) values ('local') returning id`;
      assert.ok(local.id > 5, `a local insert gets a new id (${local.id})`);

      await provider.sql`insert into t (v) select 'p' from generate_series(1, 3000)`;
      await provider.sql`select spock.sync_seq('t_id_seq')`;
      const pushed = await ahead();
      await pollUntil(async () => {
        const [row] = await subscriber.sql`select last_value::text as v from t_id_seq`;
        return row.v === pushed || undefined;
      }, { what: `t_id_seq at ${pushed} on the subscriber` });

      // Under load (each round past any buffer pushed so far) the daemon
      // keeps the subscriber's sequence ahead of the provider's.
      const lastValue = async (node: typeof provider) => {
        const [row] = await node.sql`select last_value::int8::text as v from t_id_seq`;
        return BigInt(row.v);
      };
      for (let round = 1; round <= 3; round++) {
        await provider.sql`insert into t (v) select 'load' from generate_series(1, 2500)`;
        const used = await lastValue(provider);
        await pollUntil(async () => (await lastValue(subscriber)) > used || undefined, {
          what: `t_id_seq past ${used} on the subscriber (round ${round})`,
        });
      }
      // A final sync (a push or none needed) leaves it at the provider's buffered value.
      await provider.sql`select spock.sync_sequences()`;
      const [state] = await provider.sql`select last_value::text as v from spock.sequence_state`;
      await pollUntil(async () => (await lastValue(subscriber)) === BigInt(state.v) || undefined, {
        what: `t_id_seq at ${state.v} on the subscriber`,
      });
      assert.ok(BigInt(state.v) > await lastValue(provider));
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
