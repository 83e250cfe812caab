/**
 * The CLI shows what the server warns about, and `spock sub drop` does not
 * leave a slot behind in silence: it drops the provider's slot itself (a
 * walsender of the subscription streaming it is stopped first), and when it
 * cannot, it exits 1 naming the slot.
 */
import assert from "node:assert/strict";
import { pgTest, runSpock } from "../_harness/mod.ts";
import { resolveConnectOptions } from "../../mod/pg/mod.ts";
import { choosePgoutputOptions, ReplicationConnection } from "../../mod/transport/mod.ts";

pgTest("spock sub drop drops the provider's slot, or names it", async (_t, cluster) => {
  const admin = cluster.connect();
  await admin`CREATE DATABASE prov`;
  await admin`CREATE DATABASE subs`;
  const provider = cluster.dsn({ dbname: "prov" });
  const subscriber = cluster.dsn({ dbname: "subs" });
  const spock = (...args: string[]) => runSpock(args);
  for (const [dsn, name] of [[provider, "p1"], [subscriber, "s1"]]) {
    assert.equal((await spock("install", "--dsn", dsn)).code, 0);
    assert.equal((await spock("node", "create", "--dsn", dsn, "--node-name", name)).code, 0);
  }
  const create = (name: string) =>
    spock(
      "sub",
      "create",
      "--dsn",
      subscriber,
      "--subscription-name",
      name,
      "--provider-dsn",
      provider,
    );
  assert.equal((await create("first")).code, 0);
  const second = await create("second");
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stderr,
    /^WARNING: {2}existing subscription "first" to node "p1" already subscribes to replication set "default"$/m,
  );

  const prov = cluster.connect({ database: "prov" });
  const subs = cluster.connect({ database: "subs" });
  const slotOf = async (name: string) =>
    (await subs`SELECT sub_slot_name::text AS s FROM spock.subscription WHERE sub_name = ${name}`)[
      0
    ]
      .s as string;
  const slots = async () =>
    (await prov`SELECT slot_name::text AS s FROM pg_replication_slots ORDER BY 1`).map((r) => r.s);

  // A slot the daemon created, being streamed for the subscription: stopped and dropped.
  const firstSlot = await slotOf("first");
  const repl = await ReplicationConnection.open(
    resolveConnectOptions(`${provider} application_name=first`),
  );
  await repl.createSlot(firstSlot, { snapshot: "nothing" });
  const chosen = choosePgoutputOptions(repl.serverVersionNum, { publications: ["spock_default"] });
  const stream = await repl.startReplication(firstSlot, { pluginOptions: chosen.options });
  const dropped = await spock("sub", "drop", "--dsn", subscriber, "--subscription-name", "first");
  assert.equal(dropped.code, 0, dropped.stderr);
  assert.equal(dropped.stdout, "1\n");
  assert.deepEqual(await slots(), []);
  await stream.stop().catch(() => {});
  await repl.close().catch(() => {});

  // The provider cannot be reached: the subscription is dropped, the slot is named.
  const secondSlot = await slotOf("second");
  await prov`SELECT pg_create_logical_replication_slot(${secondSlot}, 'pgoutput')`;
  await subs`UPDATE spock.node_interface SET if_dsn = 'host=127.0.0.1 port=1 dbname=prov'
    WHERE if_name = 'p1'`;
  const left = await spock("sub", "drop", "--dsn", subscriber, "--subscription-name", "second");
  assert.equal(left.code, 1);
  assert.match(
    left.stderr,
    new RegExp(
      `^spock sub drop: The subscription is dropped, but its slot "${secondSlot}" on the provider at host=127\\.0\\.0\\.1 port=1 dbname=prov is not: .*pg_drop_replication_slot\\('${secondSlot}'\\)`,
    ),
  );
  assert.deepEqual(await slots(), [secondSlot]);
  assert.equal((await subs`SELECT sub_name FROM spock.subscription`).length, 0);
  await Promise.all([admin.end(), prov.end(), subs.end()]);
});
