/**
 * mod/daemon/subscription_record.ts: readSubscriptions() against a real
 * catalog (every field of the record as sub_create and sub_alter_* leave it,
 * the defaults, the order, and nothing without a local node), and the
 * fingerprint that decides when a worker must restart.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import {
  readSubscriptions,
  subscriptionFingerprint,
  type SubscriptionRecord,
} from "../../mod/daemon/mod.ts";
import { createSubscription, localNode } from "./_local_node.ts";

pgTest(
  "readSubscriptions() reads every field of a subscription as created",
  async (_t, cluster) => {
    const { sql, nodeId } = await localNode(cluster);
    const id = await createSubscription(sql, "sub_b", {
      providerNodeId: 77,
      providerName: "prov",
      providerDsn: "host=prov dbname=app",
      replicationSets: ["default", "extra"],
      synchronizeData: true,
      forwardOrigins: ["all"],
      applyDelay: "1.5 s",
      skipSchema: ["audit"],
    });
    await createSubscription(sql, "sub_a", {
      providerNodeId: 78,
      providerName: "other",
      providerDsn: "host=other dbname=app",
      replicationSets: [],
      enabled: false,
    });
    const [slot] =
      await sql`select spock.spock_gen_slot_name(current_database()::name, 'prov', 'sub_b')::text as s`;
    const records = await readSubscriptions(sql);
    assert.deepEqual(records.map((r) => r.name), ["sub_a", "sub_b"], "ordered by name");
    assert.deepEqual(
      records[1],
      {
        id,
        name: "sub_b",
        enabled: true,
        slotName: slot.s,
        replicationSets: ["default", "extra"],
        forwardOrigins: ["all"],
        applyDelayMs: 1500,
        skipLsn: 0n,
        providerNodeId: 77,
        providerNodeName: "prov",
        providerDsn: "host=prov dbname=app",
        localNodeId: nodeId,
        syncKind: "d",
        syncState: "init",
        skipSchemas: ["audit"],
        pendingTables: 0,
        options: {},
      } satisfies SubscriptionRecord,
    );
    // No sets stored means Spock's defaults; a disabled subscription is ready without a sync.
    const [disabled] = records;
    assert.equal(disabled.enabled, false);
    assert.deepEqual(disabled.replicationSets, ["default", "default_insert_only", "ddl_sql"]);
    assert.deepEqual(disabled.forwardOrigins, []);
    assert.deepEqual(disabled.skipSchemas, []);
    assert.equal(disabled.syncKind, "i");
    assert.equal(disabled.syncState, "ready");
  },
);

pgTest(
  "readSubscriptions() follows sub_alter_options, sub_alter_skiplsn and sub_resync_table",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    await createSubscription(sql, "sub1");
    await sql`select spock.sub_alter_options('sub1', '{"conflict_resolution": "keep_local"}')`;
    await sql`select spock.sub_alter_skiplsn('sub1', '1/A0')`;
    await sql`create table t (id int primary key)`;
    await sql`select spock.sub_resync_table('sub1', 't')`;
    const [record] = await readSubscriptions(sql);
    assert.deepEqual(record.options, { conflict_resolution: "keep_local" });
    assert.equal(record.skipLsn, 0x1_0000_00a0n);
    assert.equal(record.pendingTables, 1);
  },
);

pgTest("readSubscriptions() finds none without a local node", async (_t, cluster) => {
  const sql = cluster.connect();
  await installCatalog(sql, { programVersion: "test" });
  assert.deepEqual(await readSubscriptions(sql), []);
});

const RECORD: SubscriptionRecord = {
  id: 1,
  name: "sub1",
  enabled: true,
  slotName: "spk_app_prov_sub1",
  replicationSets: ["default"],
  forwardOrigins: [],
  applyDelayMs: 0,
  skipLsn: 0n,
  providerNodeId: 2,
  providerNodeName: "prov",
  providerDsn: "host=prov",
  localNodeId: 3,
  syncKind: "d",
  syncState: "init",
  skipSchemas: [],
  pendingTables: 0,
  options: {},
};

Deno.test("subscriptionFingerprint() changes with every setting the stream starts with", () => {
  const changes: Partial<SubscriptionRecord>[] = [
    { enabled: false },
    { slotName: "other" },
    { replicationSets: ["default", "extra"] },
    { forwardOrigins: ["all"] },
    { applyDelayMs: 1000 },
    { providerDsn: "host=elsewhere" },
    { providerNodeId: 9 },
    { localNodeId: 9 },
    { options: { update_missing: "insert" } },
  ];
  const base = subscriptionFingerprint(RECORD);
  for (const change of changes) {
    assert.notEqual(
      subscriptionFingerprint({ ...RECORD, ...change }),
      base,
      JSON.stringify(change),
    );
  }
});

Deno.test("subscriptionFingerprint() ignores what the worker itself moves", () => {
  const base = subscriptionFingerprint(RECORD);
  const moved: Partial<SubscriptionRecord>[] = [
    { syncState: "ready" },
    { skipLsn: 0x100n },
    { pendingTables: 3 },
  ];
  for (const change of moved) {
    assert.equal(subscriptionFingerprint({ ...RECORD, ...change }), base, Object.keys(change)[0]);
  }
});
