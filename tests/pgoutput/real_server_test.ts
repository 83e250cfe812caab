/**
 * The decoder against messages produced for real by PostgreSQL 15 and 17:
 * every message kind, every replica identity, TOAST, NULLs, TRUNCATE flags,
 * logical messages, streamed and two-phase transactions, origins, and binary
 * values compared with the types' own send functions.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import type { PgoutputMessage, Relation, Tuple } from "../../mod/pgoutput/mod.ts";
import { collect, count, text } from "./_collect.ts";

function rowsOf<T extends PgoutputMessage["type"]>(messages: PgoutputMessage[], type: T) {
  return messages.filter((m): m is Extract<PgoutputMessage, { type: T }> => m.type === type);
}

function commitCount(n: number) {
  return (messages: PgoutputMessage[]) => count(messages, "commit") >= n;
}

pgTest("decodeMessage() reads row changes under every replica identity", async (t, cluster) => {
  const sql = cluster.connect();
  await sql.unsafe(`
    create table ri_default (id int primary key, v text, n int);
    create table ri_full (id int, v text);
    alter table ri_full replica identity full;
    create table ri_index (id int not null, code text not null, v text);
    create unique index ri_index_code on ri_index (code);
    alter table ri_index replica identity using index ri_index_code;
    create table ri_nothing (id int, v text);
    alter table ri_nothing replica identity nothing;
    create publication p for table ri_default, ri_full, ri_index;
    create publication p_ins for table ri_nothing with (publish = 'insert');
  `);
  const { messages, decoder } = await collect(cluster, sql, async () => {
    await sql.unsafe(`
      insert into ri_default values (1, 'one', null), (2, null, 2);
      update ri_default set v = 'uno' where id = 1;
      update ri_default set id = 10 where id = 2;
      delete from ri_default where id = 10;
      insert into ri_full values (1, 'a');
      update ri_full set v = 'b';
      delete from ri_full;
      insert into ri_index values (1, 'c1', 'x');
      update ri_index set v = 'y';
      update ri_index set code = 'c2';
      delete from ri_index;
      insert into ri_nothing values (1, 'n');
    `);
  }, { publications: ["p", "p_ins"], until: commitCount(1) });

  const relations = rowsOf(messages, "relation");
  const byName = (name: string) => relations.find((r) => r.relationName === name) as Relation;
  await t.step("Relation messages carry names, identity and key columns", () => {
    // A relation may be described again after an invalidation: compare the set of names.
    assert.deepEqual([...new Set(relations.map((r) => r.relationName))].sort(), [
      "ri_default",
      "ri_full",
      "ri_index",
      "ri_nothing",
    ]);
    assert.equal(byName("ri_default").namespace, "public");
    assert.equal(byName("ri_default").replicaIdentity, "d");
    assert.equal(byName("ri_full").replicaIdentity, "f");
    assert.equal(byName("ri_index").replicaIdentity, "i");
    assert.equal(byName("ri_nothing").replicaIdentity, "n");
    assert.deepEqual(byName("ri_default").columns.map((c) => [c.name, c.isKey, c.typeOid]), [
      ["id", true, 23],
      ["v", false, 25],
      ["n", false, 23],
    ]);
    assert.deepEqual(byName("ri_index").columns.map((c) => c.isKey), [false, true, false]);
    assert.equal(decoder.relations.get(byName("ri_full").relationId)?.relationName, "ri_full");
  });

  const changes = messages.filter((m) =>
    m.type === "insert" || m.type === "update" || m.type === "delete"
  );
  const tableOf = (m: { relationId: number }) => decoder.relations.get(m.relationId)?.relationName;
  const values = (tuple: Tuple) => tuple.map((_, i) => text(tuple, i));

  await t.step("REPLICA IDENTITY DEFAULT: no old tuple unless the key changes, NULLs kept", () => {
    const rows = changes.filter((m) => tableOf(m) === "ri_default");
    assert.deepEqual(rows.map((m) => m.type), ["insert", "insert", "update", "update", "delete"]);
    const [ins1, ins2, upd1, upd2, del] = rows as [
      Extract<PgoutputMessage, { type: "insert" }>,
      Extract<PgoutputMessage, { type: "insert" }>,
      Extract<PgoutputMessage, { type: "update" }>,
      Extract<PgoutputMessage, { type: "update" }>,
      Extract<PgoutputMessage, { type: "delete" }>,
    ];
    assert.deepEqual(values(ins1.newTuple), ["1", "one", null]);
    assert.deepEqual(values(ins2.newTuple), ["2", null, "2"]);
    assert.equal(upd1.oldKind, null);
    assert.equal(upd1.oldTuple, null);
    assert.deepEqual(values(upd1.newTuple), ["1", "uno", null]);
    assert.equal(upd2.oldKind, "key");
    assert.deepEqual(text(upd2.oldTuple!, 0), "2");
    assert.deepEqual(values(upd2.newTuple), ["10", null, "2"]);
    assert.equal(del.oldKind, "key");
    assert.equal(text(del.oldTuple, 0), "10");
    assert.equal(del.oldTuple[1].kind, "null");
  });
  await t.step("REPLICA IDENTITY FULL: old tuples on update and delete", () => {
    const rows = changes.filter((m) => tableOf(m) === "ri_full");
    const upd = rows[1] as Extract<PgoutputMessage, { type: "update" }>;
    const del = rows[2] as Extract<PgoutputMessage, { type: "delete" }>;
    assert.equal(upd.oldKind, "old");
    assert.deepEqual(values(upd.oldTuple!), ["1", "a"]);
    assert.deepEqual(values(upd.newTuple), ["1", "b"]);
    assert.equal(del.oldKind, "old");
    assert.deepEqual(values(del.oldTuple), ["1", "b"]);
  });
  await t.step("REPLICA IDENTITY USING INDEX: the index columns as key", () => {
    const rows = changes.filter((m) => tableOf(m) === "ri_index");
    assert.deepEqual(rows.map((m) => m.type), ["insert", "update", "update", "delete"]);
    const keyChange = rows[2] as Extract<PgoutputMessage, { type: "update" }>;
    assert.equal(keyChange.oldKind, "key");
    assert.equal(text(keyChange.oldTuple!, 1), "c1");
    const del = rows[3] as Extract<PgoutputMessage, { type: "delete" }>;
    assert.equal(text(del.oldTuple, 1), "c2");
  });
  await t.step("REPLICA IDENTITY NOTHING: inserts still replicate", () => {
    const rows = changes.filter((m) => tableOf(m) === "ri_nothing");
    assert.deepEqual(rows.map((m) => m.type), ["insert"]);
  });
  await t.step("Begin and Commit frame the transaction", () => {
    assert.equal(messages[0].type, "begin");
    const begin = messages[0] as Extract<PgoutputMessage, { type: "begin" }>;
    const commit = messages.at(-1) as Extract<PgoutputMessage, { type: "commit" }>;
    assert.equal(commit.type, "commit");
    assert.equal(commit.commitLsn, begin.finalLsn);
    assert.equal(commit.commitTime, begin.commitTime);
    assert.ok(commit.endLsn > commit.commitLsn);
  });
}, { everyVersion: true });

pgTest(
  "decodeMessage() reads unchanged TOAST, TRUNCATE flags and logical messages",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe(`
    create table toasty (id int primary key, big text, small text);
    alter table toasty alter column big set storage external;
    create table parent (id serial primary key);
    create table child (id int references parent);
    create publication p for table toasty, parent, child;
  `);
    const { messages } = await collect(cluster, sql, async () => {
      await sql`insert into toasty values (1, ${"x".repeat(10_000)}, 'a')`;
      await sql`update toasty set small = 'b'`;
      await sql`insert into parent default values`;
      await sql`truncate parent, child restart identity cascade`;
      await sql`truncate child`;
      await sql`select pg_logical_emit_message(true, 'test/tx', 'transactional payload')`;
      await sql`select pg_logical_emit_message(false, 'test/nontx', '\\x00ff'::bytea)`;
    }, { messages: true, until: (m) => count(m, "message") >= 2 });

    await t.step("an update that leaves a TOASTed value alone sends it as unchanged", () => {
      const [insert] = rowsOf(messages, "insert");
      assert.equal(text(insert.newTuple, 1)?.length, 10_000);
      const [update] = rowsOf(messages, "update");
      assert.equal(update.newTuple[1].kind, "unchanged");
      assert.equal(text(update.newTuple, 2), "b");
    });
    await t.step("TRUNCATE carries CASCADE and RESTART IDENTITY", () => {
      const truncates = rowsOf(messages, "truncate");
      assert.equal(truncates.length, 2);
      assert.equal(truncates[0].relationIds.length, 2);
      assert.equal(truncates[0].cascade, true);
      assert.equal(truncates[0].restartIdentity, true);
      assert.equal(truncates[1].cascade, false);
      assert.equal(truncates[1].restartIdentity, false);
    });
    await t.step("pg_logical_emit_message() arrives transactional or not", () => {
      const [tx, nontx] = rowsOf(messages, "message");
      assert.equal(tx.transactional, true);
      assert.equal(tx.prefix, "test/tx");
      assert.equal(new TextDecoder().decode(tx.content), "transactional payload");
      assert.equal(nontx.transactional, false);
      assert.equal(nontx.prefix, "test/nontx");
      assert.deepEqual([...nontx.content], [0, 255]);
      assert.ok(nontx.messageLsn > 0n);
    });
  },
  { everyVersion: true },
);

pgTest(
  "decodeMessage() reads streamed transactions with a rolled-back subtransaction",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql`alter system set logical_decoding_work_mem = '64kB'`;
    await sql`select pg_reload_conf()`;
    await sql`create table s (id int primary key, pad text)`;
    await sql`create publication p for table s`;
    const bigTransaction = async () => {
      await sql`truncate s`;
      await sql.begin(async (tx) => {
        await tx`insert into s select g, repeat('p', 100) from generate_series(1, 3000) g`;
        await tx.savepoint(async (sp) => {
          await sp`insert into s select g, 'rolled back' from generate_series(3001, 5000) g`;
          throw new Error("roll back the savepoint");
        }).catch(() => {});
        await tx`insert into s select g, repeat('q', 100) from generate_series(5001, 7000) g`;
      });
      await sql.begin(async (tx) => {
        await tx`insert into s select g, repeat('r', 100) from generate_series(10001, 13000) g`;
        await tx`select 1/0`;
      }).catch(() => {});
    };
    // PostgreSQL 18 skips a transaction already aborted when decoding reaches it: the failed
    // one is not streamed at all there, and only the rolled-back subtransaction is aborted.
    const abortedStreamed = cluster.install.major < 18;
    const abortsExpected = abortedStreamed ? 2 : 1;
    const { messages } = await collect(cluster, sql, bigTransaction, {
      streaming: true,
      until: (m) => count(m, "stream_commit") >= 1 && count(m, "stream_abort") >= abortsExpected,
    });
    await t.step("changes arrive between Stream Start and Stream Stop, each with the xid", () => {
      const starts = rowsOf(messages, "stream_start");
      assert.ok(starts.length >= 2, `only ${starts.length} stream blocks`);
      assert.equal(starts[0].firstSegment, true);
      assert.equal(count(messages, "stream_stop"), starts.length);
      const inserts = rowsOf(messages, "insert");
      assert.ok(inserts.every((m) => typeof m.xid === "number"));
      assert.equal(count(messages, "begin"), 1, "only the TRUNCATE is an ordinary transaction");
    });
    await t.step("the rolled-back subtransaction is a Stream Abort of a subxid", () => {
      const commit = rowsOf(messages, "stream_commit")[0];
      const aborts = rowsOf(messages, "stream_abort");
      const subAbort = aborts.find((a) => a.xid === commit.xid);
      assert.ok(subAbort, "a stream_abort for the committed transaction's subtransaction");
      assert.notEqual(subAbort.subXid, subAbort.xid);
      const topAbort = aborts.find((a) => a.xid !== commit.xid);
      if (abortedStreamed) {
        assert.ok(topAbort, "a stream_abort for the failed transaction");
        assert.equal(topAbort.subXid, topAbort.xid);
      } else assert.equal(topAbort, undefined, "the failed transaction is not streamed");
      assert.ok(commit.endLsn > commit.commitLsn);
    });
    await t.step("rows of the committed transaction: all but the rolled-back ones", () => {
      const commit = rowsOf(messages, "stream_commit")[0];
      const subAbort = rowsOf(messages, "stream_abort").find((a) => a.xid === commit.xid)!;
      const failed = rowsOf(messages, "stream_abort").find((a) => a.xid !== commit.xid);
      // After ROLLBACK TO SAVEPOINT the last rows run in a new subtransaction of the same xact.
      const committed = rowsOf(messages, "insert")
        .filter((m) => m.xid !== subAbort.subXid && m.xid !== failed?.xid);
      assert.equal(committed.length, 5000);
    });
    if (cluster.install.major >= 16) {
      const parallel = await collect(cluster, sql, bigTransaction, {
        streaming: "parallel",
        until: (m) => count(m, "stream_commit") >= 1 && count(m, "stream_abort") >= abortsExpected,
      });
      await t.step("protocol 4 parallel streaming adds the abort LSN and time", () => {
        const aborts = rowsOf(parallel.messages, "stream_abort");
        assert.ok(aborts.every((a) => typeof a.abortLsn === "bigint" && a.abortLsn > 0n));
        assert.ok(aborts.every((a) => typeof a.abortTime === "bigint"));
      });
    }
  },
  { everyVersion: true },
);

pgTest("decodeMessage() reads two-phase transactions", async (t, cluster) => {
  const sql = cluster.connect();
  await sql`alter system set logical_decoding_work_mem = '64kB'`;
  await sql`select pg_reload_conf()`;
  await sql`create table tp (id int primary key, pad text)`;
  await sql`create publication p for table tp`;
  const { messages } = await collect(cluster, sql, async () => {
    const reserved = await sql.reserve();
    try {
      await reserved`begin`;
      await reserved`insert into tp values (1, 'one')`;
      await reserved`prepare transaction 'gid_commit'`;
      await reserved`commit prepared 'gid_commit'`;
      await reserved`begin`;
      await reserved`insert into tp values (2, 'two')`;
      await reserved`prepare transaction 'gid_rollback'`;
      await reserved`rollback prepared 'gid_rollback'`;
      await reserved`begin`;
      await reserved`insert into tp select g, repeat('z', 100) from generate_series(100, 3000) g`;
      await reserved`prepare transaction 'gid_streamed'`;
      await reserved`commit prepared 'gid_streamed'`;
    } finally {
      reserved.release();
    }
  }, {
    twoPhase: true,
    twoPhaseSlot: true,
    streaming: true,
    until: (m) => count(m, "commit_prepared") >= 2 && count(m, "rollback_prepared") >= 1,
  });
  await t.step("Begin Prepare, Prepare and Commit Prepared carry the gid", () => {
    const begins = rowsOf(messages, "begin_prepare");
    const prepares = rowsOf(messages, "prepare");
    const commits = rowsOf(messages, "commit_prepared");
    assert.deepEqual(begins.map((b) => b.gid), ["gid_commit", "gid_rollback"]);
    assert.deepEqual(prepares.map((p) => p.gid), ["gid_commit", "gid_rollback"]);
    assert.equal(commits[0].gid, "gid_commit");
    assert.equal(begins[0].xid, prepares[0].xid);
    assert.equal(begins[0].prepareLsn, prepares[0].prepareLsn);
    assert.equal(commits[0].xid, prepares[0].xid);
  });
  await t.step("Rollback Prepared points back at the prepare's end", () => {
    const prepare = rowsOf(messages, "prepare")[1];
    const rollback = rowsOf(messages, "rollback_prepared")[0];
    assert.equal(rollback.gid, "gid_rollback");
    assert.equal(rollback.prepareEndLsn, prepare.endLsn);
    assert.equal(rollback.prepareTime, prepare.prepareTime);
    assert.ok(rollback.rollbackEndLsn > rollback.prepareEndLsn);
  });
  await t.step("a large prepared transaction arrives as a Stream Prepare", () => {
    const [streamPrepare] = rowsOf(messages, "stream_prepare");
    assert.equal(streamPrepare.gid, "gid_streamed");
    assert.equal(rowsOf(messages, "commit_prepared")[1].gid, "gid_streamed");
  });
}, { everyVersion: true });

pgTest("decodeMessage() reads the Origin of a replayed transaction", async (t, cluster) => {
  const sql = cluster.connect();
  await sql`create table o (id int primary key)`;
  await sql`create publication p for table o`;
  const { messages } = await collect(cluster, sql, async () => {
    const reserved = await sql.reserve();
    try {
      await reserved`select pg_replication_origin_create('node_a')`;
      await reserved`select pg_replication_origin_session_setup('node_a')`;
      await reserved`begin`;
      await reserved`select pg_replication_origin_xact_setup('0/AB12CD', '2026-01-02 03:04:05.123456+00')`;
      await reserved`insert into o values (1)`;
      await reserved`commit`;
      await reserved`select pg_replication_origin_session_reset()`;
    } finally {
      reserved.release();
    }
  }, { until: commitCount(1) });
  await t.step("Origin names the origin and its commit LSN", () => {
    const [origin] = rowsOf(messages, "origin");
    assert.equal(origin.originName, "node_a");
    assert.equal(origin.originLsn, 0xAB12CDn);
    const [begin] = rowsOf(messages, "begin");
    // 2026-01-02 03:04:05.123456 UTC in microseconds since 2000-01-01: the origin's commit time.
    assert.equal(begin.commitTime, 820_638_245_123_456n);
  });
}, { everyVersion: true });

pgTest(
  "decodeMessage() reads binary values exactly as the types' send functions",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe(`
    create type mood as enum ('sad', 'happy');
    create type pair as (a int, b text);
    create table b (
      id int primary key, i2 int2, i8 int8, num numeric, t text, ba bytea, bo bool,
      ts timestamptz, d date, u uuid, j jsonb, arr int[], m mood, c pair, r int4range, ip inet);
    create publication p for table b;
  `);
    const insert =
      `insert into b values (1, -2, 9007199254740993, 12345.678901, 'héllo', '\\x00ff10',
    true, '2026-11-26 07:04:14.123456+00', '2026-11-26', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{"k": [1, 2]}', '{1,2,3}', 'happy', '(7,"x")', '[1,10)', '192.168.0.1/24')`;
    const sends = [
      "int4send(id)",
      "int2send(i2)",
      "int8send(i8)",
      "numeric_send(num)",
      "textsend(t)",
      "byteasend(ba)",
      "boolsend(bo)",
      "timestamptz_send(ts)",
      "date_send(d)",
      "uuid_send(u)",
      "jsonb_send(j)",
      "array_send(arr)",
      "enum_send(m)",
      "record_send(c)",
      "range_send(r)",
      "inet_send(ip)",
    ];
    const sendSql = `select ${
      sends.map((f, i) => `encode(${f}, 'hex') as c${i}`).join(", ")
    } from b`;
    const hex = (bytes: Uint8Array) =>
      Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
    const { messages, decoder } = await collect(cluster, sql, () => sql.unsafe(insert), {
      binary: true,
      until: commitCount(1),
    });
    const expected = Object.values((await sql.unsafe(sendSql))[0]) as string[];
    await t.step("every column arrives in binary and equals typsend output", () => {
      const [row] = rowsOf(messages, "insert");
      assert.equal(row.newTuple.length, expected.length);
      row.newTuple.forEach((column, i) => {
        assert.equal(column.kind, "binary", `column ${i}`);
        if (column.kind === "binary") assert.equal(hex(column.bytes), expected[i], sends[i]);
      });
    });
    await t.step("user-defined types are described by Type messages", () => {
      const types = rowsOf(messages, "type");
      assert.deepEqual(types.map((ty) => ty.typeName).sort(), ["mood", "pair"]);
      assert.ok(types.every((ty) => ty.namespace === "public"));
      const relation = decoder.relations.get(rowsOf(messages, "insert")[0].relationId)!;
      const mood = types.find((ty) => ty.typeName === "mood")!;
      assert.equal(relation.columns[12].typeOid, mood.typeOid);
    });
    const textMode = await collect(cluster, sql, () => sql`update b set t = 'again'`, {
      until: commitCount(1),
    });
    await t.step("in text mode the same columns arrive as their text output", async () => {
      const [row] = rowsOf(textMode.messages, "update");
      const [out] = await sql.unsafe(`select b::text as t from b`);
      const fromServer = row.newTuple.map((_, i) => text(row.newTuple, i));
      assert.equal(fromServer[4], "again");
      assert.ok(String(out.t).includes(fromServer[12]!));
      assert.equal(fromServer[14], "[1,10)");
      assert.equal(fromServer[15], "192.168.0.1/24");
    });
  },
  { everyVersion: true },
);
