/**
 * spock.snowflake_nextval() (mod/catalog/sql/api/21_sequence_ids.sql) against
 * real servers: two databases with their own spock.snowflake_node as two
 * nodes, concurrent sessions, a clock behind the sequence, and the errors.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { createDatabase, errorOf } from "./_sub_fixture.ts";

/** 2023-01-01 UTC in Unix milliseconds: the ids' epoch. */
const EPOCH_MS = 1_672_531_200_000n;

pgTest("snowflake_nextval() gives each node disjoint, increasing ids", async (t, cluster) => {
  const databases = [await createDatabase(cluster, "a"), await createDatabase(cluster, "b")];
  for (const db of databases) await db.sql`CREATE SEQUENCE ids`;
  await t.step("without spock.snowflake_node it says how to set it", async () => {
    const error = await errorOf(databases[0].sql`SELECT spock.snowflake_nextval('ids')`);
    assert.deepEqual([error.code, error.message], ["55000", "spock.snowflake_node is not set"]);
    assert.match(error.hint ?? "", /ALTER DATABASE <db> SET spock\.snowflake_node = <n>/);
  });
  // Node numbers 1 and 1023, seen by sessions opened after they were set.
  const admin = cluster.connect();
  const nodes = [];
  for (const [db, number] of [[databases[0], 1n], [databases[1], 1023n]] as const) {
    await db.sql.end();
    await admin.unsafe(`ALTER DATABASE ${db.name} SET spock.snowflake_node = ${number}`);
    nodes.push({ number, sql: cluster.connect({ database: db.name, max: 2 }) });
  }
  await admin.end();
  const [a, b] = nodes;
  const ids = async (sql: typeof a.sql, count: number) =>
    (await sql`SELECT spock.snowflake_nextval('ids')::text AS id FROM generate_series(1, ${count})`)
      .map((row) => BigInt(row.id));
  const increasing = (list: bigint[]) => list.every((id, i) => i === 0 || id > list[i - 1]);

  await t.step(
    "ids carry the node's number and the time; nodes and sessions never collide",
    async () => {
      const started = BigInt(Date.now()) - EPOCH_MS;
      // Two sessions on each node at once: each session's ids increase.
      const batches = await Promise.all([a, a, b, b].map((node) => ids(node.sql, 2000)));
      for (const batch of batches) assert.ok(increasing(batch), "a session's ids increase");
      const all = batches.flat();
      assert.equal(new Set(all).size, all.length, "no id given twice");
      for (const [i, node] of [a, a, b, b].entries()) {
        for (const id of batches[i]) assert.equal((id >> 12n) & 1023n, node.number);
      }
      const millis = all.map((id) => id >> 22n);
      const finished = BigInt(Date.now()) - EPOCH_MS;
      assert.ok(millis.every((ms) => ms >= started - 5n && ms <= finished + 5n), "the clock's ms");
    },
  );

  await t.step("ids keep increasing while the clock is behind the last one", async () => {
    const [before] = await ids(a.sql, 1);
    // The sequence an hour ahead is the clock stepped back an hour.
    const ahead = ((BigInt(Date.now()) - EPOCH_MS + 3_600_000n) << 12n).toString();
    await a.sql`SELECT setval('ids', ${ahead})`;
    const after = await ids(a.sql, 3);
    assert.ok(increasing([before, ...after]));
    assert.equal(after[0] >> 22n, BigInt(ahead) >> 12n, "the timestamp the sequence holds");
  });

  await t.step("a bad node number or sequence is refused, and the lock is let go", async () => {
    for (const bad of ["1024", "-1", "x"]) {
      const error = await errorOf(a.sql.begin(async (tx) => {
        await tx`SELECT set_config('spock.snowflake_node', ${bad}, true)`;
        await tx`SELECT spock.snowflake_nextval('ids')`;
      }));
      assert.deepEqual([error.code, error.message], [
        "22023",
        `spock.snowflake_node must be a number from 0 to 1023, got "${bad}"`,
      ]);
    }
    await a.sql`CREATE SEQUENCE cached CACHE 10; CREATE SEQUENCE small AS integer;
      CREATE TABLE t (id bigint)`.simple();
    for (const seq of ["cached", "small"]) {
      const error = await errorOf(a.sql`SELECT spock.snowflake_nextval(${seq})`);
      assert.equal(
        error.message,
        `sequence "${seq}" cannot give snowflake ids: it needs INCREMENT 1, CACHE 1 and a MAXVALUE of at least 2^53`,
      );
      assert.equal(error.hint, `ALTER SEQUENCE ${seq} AS bigint NO MAXVALUE INCREMENT 1 CACHE 1`);
    }
    const table = await errorOf(a.sql`SELECT spock.snowflake_nextval('t')`);
    assert.equal(table.message, '"t" is not a sequence');
    // nextval() fails in a read-only transaction, after the lock was taken.
    const readOnly = await errorOf(a.sql.begin("read only", async (tx) => {
      await tx`SELECT spock.snowflake_nextval('ids')`;
    }));
    assert.equal(readOnly.code, "25006");
    const [held] = await a.sql`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`;
    assert.equal(held.n, 0);
  });

  await Promise.all(nodes.map((node) => node.sql.end()));
});
