import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  choosePgoutputOptions,
  ReplicationConnection,
  TransportError,
} from "../../mod/transport/mod.ts";
import { formatLsn, resolveConnectOptions } from "../../mod/pg/mod.ts";
import { commitEndLsn } from "./_helpers.ts";

pgTest("ReplicationConnection identifies the system and manages slots", async (t, cluster) => {
  const sql = cluster.connect();
  const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  try {
    await t.step("identifySystem() reports the database and a WAL position", async () => {
      const identity = await conn.identifySystem();
      assert.equal(identity.dbName, "postgres");
      assert.equal(identity.timeline, 1);
      assert.match(identity.systemId, /^\d+$/);
      assert.ok(identity.xlogPos > 0n);
      assert.equal(Math.floor(conn.serverVersionNum / 10000), cluster.install.major);
    });
    await t.step("createSlot() makes a permanent slot with an exported snapshot", async () => {
      const slot = await conn.createSlot("perm_slot");
      assert.equal(slot.slotName, "perm_slot");
      assert.equal(slot.outputPlugin, "pgoutput");
      assert.match(slot.snapshotName ?? "", /^[0-9A-F]+-[0-9A-F]+-\d+$/);
      const [row] = await sql`
        select plugin, temporary, confirmed_flush_lsn::text as lsn
        from pg_replication_slots where slot_name = 'perm_slot'`;
      assert.deepEqual(row, {
        plugin: "pgoutput",
        temporary: false,
        lsn: formatLsn(slot.consistentPoint),
      });
    });
    await t.step("createSlot() with twoPhase sets the slot's two_phase flag", async () => {
      await conn.createSlot("tp_slot", { snapshot: "nothing", twoPhase: true });
      const [row] =
        await sql`select two_phase from pg_replication_slots where slot_name = 'tp_slot'`;
      assert.equal(row.two_phase, true);
      await conn.dropSlot("tp_slot");
    });
    await t.step("dropSlot() removes the slot", async () => {
      await conn.dropSlot("perm_slot");
      const rows = await sql`select 1 from pg_replication_slots where slot_name = 'perm_slot'`;
      assert.equal(rows.length, 0);
    });
    await t.step("dropSlot() of a missing slot fails with SQLSTATE 42704", async () => {
      await assert.rejects(conn.dropSlot("no_such_slot"), (error: { code?: string }) => {
        assert.equal(error.code, "42704");
        return true;
      });
    });
    await t.step(
      "slot names outside [a-z0-9_] are refused before reaching the server",
      async () => {
        await assert.rejects(conn.createSlot('x"; DROP TABLE t; --'), RangeError);
      },
    );
  } finally {
    await conn.close();
  }
  await t.step(
    "a temporary slot with SNAPSHOT 'use' lives in the connection's transaction",
    async () => {
      const other = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
      try {
        await other.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        const slot = await other.createSlot("temp_slot", { temporary: true, snapshot: "use" });
        assert.equal(slot.snapshotName, null);
        const [row] = await other.query("SELECT count(*)::int AS n FROM pg_class");
        assert.ok(row.n > 0);
        await other.query("COMMIT");
        const [slotRow] =
          await sql`select temporary from pg_replication_slots where slot_name = 'temp_slot'`;
        assert.equal(slotRow.temporary, true);
      } finally {
        await other.close();
      }
      await pollUntil(async () => {
        const rows = await sql`select 1 from pg_replication_slots where slot_name = 'temp_slot'`;
        return rows.length === 0;
      }, { what: "the temporary slot to disappear with its connection" });
    },
  );
});

pgTest("ReplicationStream confirms reported positions on a clean stop", async (_t, cluster) => {
  const sql = cluster.connect();
  await sql`create table t (id int primary key, v text)`;
  await sql`create publication p for table t`;
  const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  await conn.createSlot("s1", { snapshot: "nothing" });
  const { options } = choosePgoutputOptions(conn.serverVersionNum, { publications: ["p"] });
  const stream = await conn.startReplication("s1", { pluginOptions: options });
  for (let i = 1; i <= 3; i++) await sql`insert into t values (${i}, 'x')`;
  const commits: bigint[] = [];
  for await (const batch of stream) {
    for (const message of batch) {
      const end = commitEndLsn(message);
      if (end !== undefined) commits.push(end);
    }
    if (commits.length >= 3) break;
  }
  // Confirm only the second transaction: the third must come again next time.
  stream.reportProgress(commits[1]);
  await stream.stop();
  await conn.close();
  const [slot] = await sql`select confirmed_flush_lsn::text as lsn from pg_replication_slots`;
  assert.equal(slot.lsn, formatLsn(commits[1]));

  const again = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  const resumed = await again.startReplication("s1", { pluginOptions: options });
  const seen: bigint[] = [];
  for await (const batch of resumed) {
    for (const message of batch) {
      const end = commitEndLsn(message);
      if (end !== undefined) seen.push(end);
    }
    if (seen.length >= 1) break;
  }
  await resumed.stop();
  await again.close();
  assert.deepEqual(seen, [commits[2]]);
});

pgTest("ReplicationStream answers keepalives that request a reply", async (_t, cluster) => {
  const sql = cluster.connect();
  await sql`create publication p`;
  await sql`alter system set wal_sender_timeout = '1s'`;
  await sql`select pg_reload_conf()`;
  const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  await conn.createSlot("ka", { snapshot: "nothing" });
  const { options } = choosePgoutputOptions(conn.serverVersionNum, { publications: ["p"] });
  // No timer-driven status updates: only replies to the server's requests keep it alive.
  const stream = await conn.startReplication("ka", {
    pluginOptions: options,
    statusIntervalMs: 3_600_000,
  });
  let keepalives = 0;
  const consumer = (async () => {
    for await (const batch of stream) {
      keepalives += batch.filter((m) => m.type === "keepalive" && m.replyRequested).length;
    }
  })();
  await pollUntil(() => keepalives >= 3 && stream.statusMessagesSent >= 3, {
    timeoutMs: 15_000,
    what: "three answered keepalive requests",
  });
  const [active] = await sql`select active from pg_replication_slots where slot_name = 'ka'`;
  assert.equal(active.active, true, "the walsender must not have timed out");
  await stream.stop();
  await consumer;
  await conn.close();
});

pgTest(
  "ReplicationStream pauses the socket when the consumer falls behind, and hands out bounded batches",
  async (_t, cluster) => {
    const sql = cluster.connect();
    await sql`create table big (id int primary key, pad text)`;
    await sql`create publication p for table big`;
    const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
    await conn.createSlot("bp", { snapshot: "nothing" });
    await sql`insert into big select g, repeat('x', 200) from generate_series(1, 40000) g`;
    const maxBufferedBytes = 256 * 1024;
    const maxBatchBytes = 32 * 1024;
    const { options } = choosePgoutputOptions(conn.serverVersionNum, { publications: ["p"] });
    const stream = await conn.startReplication("bp", {
      pluginOptions: options,
      maxBufferedBytes,
      maxBatchBytes,
    });
    await pollUntil(() => stream.paused, { what: "the stream to pause" });
    // Paused: the buffer stops growing at about the limit (plus one socket read).
    const peak = stream.bufferedBytes;
    assert.ok(peak >= maxBufferedBytes && peak < maxBufferedBytes + 512 * 1024, `buffered ${peak}`);
    let inserts = 0;
    let maxSeen = 0;
    for await (const batch of stream) {
      maxSeen = Math.max(
        maxSeen,
        batch.reduce((n, m) => n + (m.type === "xlogdata" ? m.data.length : 0), 0),
      );
      inserts += batch.filter((m) => m.type === "xlogdata" && m.data[0] === 0x49).length;
      if (inserts >= 40000) break;
    }
    assert.equal(inserts, 40000);
    // A batch closes once it holds maxBatchBytes: it exceeds that by one message at most.
    assert.ok(maxSeen < maxBatchBytes + 1024, `a batch held ${maxSeen} bytes`);
    await stream.stop();
    await conn.close();
  },
);

pgTest(
  "startReplication() on a missing slot fails with the server's error",
  async (_t, cluster) => {
    const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
    try {
      await assert.rejects(
        conn.startReplication("missing", {
          pluginOptions: [["proto_version", "1"], ["publication_names", '"p"']],
        }),
        (error: { code?: string; message: string }) => {
          assert.equal(error.code, "42704");
          assert.match(error.message, /missing/);
          return true;
        },
      );
    } finally {
      await conn.close();
    }
  },
);

Deno.test("TransportError has a stable code", () => {
  assert.equal(new TransportError("x").code, "ERR_REPLICATION_TRANSPORT");
});
