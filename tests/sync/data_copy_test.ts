/**
 * The initial data copy (mod/sync/data_copy.ts) against real servers: a
 * provider and a subscriber database in one cluster, a real slot exporting
 * the snapshot, and the copied contents compared row by row through md5.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type Cluster, pgTest, pollUntil } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import { resolveConnectOptions } from "../../mod/pg/mod.ts";
import { ReplicationConnection } from "../../mod/transport/mod.ts";
import {
  copyTables,
  type CopyTablesOptions,
  DataCopyError,
  listSubscribedTables,
  type TableCopyResult,
} from "../../mod/sync/mod.ts";

const APPLICATION_NAME = "spock_copy_test";

/** A provider database with a spock node and a subscriber database, same DDL unless told. */
interface Fixture {
  cluster: Cluster;
  provider: postgres.Sql;
  subscriber: postgres.Sql;
}

async function setup(cluster: Cluster, ddl: string, subscriberDdl = ddl): Promise<Fixture> {
  const admin = cluster.connect();
  await admin.unsafe("create database prov");
  await admin.unsafe("create database sub");
  await admin.end();
  const provider = cluster.connect({ database: "prov", max: 2 });
  const subscriber = cluster.connect({ database: "sub", max: 4 });
  await provider.unsafe(ddl);
  await subscriber.unsafe(subscriberDdl);
  await installCatalog(provider, { programVersion: "test" });
  await provider`select spock.node_create('prov', ${cluster.dsn({ dbname: "prov" })})`;
  // A copy always goes into a spock node: its catalog creates the copy's origins.
  await installCatalog(subscriber, { programVersion: "test" });
  return { cluster, provider, subscriber };
}

/** Creates a slot exporting a snapshot, runs `fn` while it is held, then drops the slot. */
async function withSnapshot<T>(
  cluster: Cluster,
  fn: (snapshotName: string, slot: string) => Promise<T>,
): Promise<T> {
  const slot = `copy_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const conn = await ReplicationConnection.open(
    resolveConnectOptions(cluster.dsn({ dbname: "prov" })),
  );
  try {
    const created = await conn.createSlot(slot, { snapshot: "export" });
    assert.ok(created.snapshotName);
    try {
      return await fn(created.snapshotName, slot);
    } finally {
      await conn.dropSlot(slot);
    }
  } finally {
    await conn.close();
  }
}

/** The options every test passes, for the sets `setNames` of the provider. */
async function copyOptions(
  fixture: Fixture,
  snapshotName: string,
  slot: string,
  setNames: string[],
): Promise<CopyTablesOptions> {
  return {
    providerOptions: resolveConnectOptions(fixture.cluster.dsn({ dbname: "prov" }), {
      applicationName: APPLICATION_NAME,
    }),
    snapshotName,
    localOptions: resolveConnectOptions(fixture.cluster.dsn({ dbname: "sub" }), {
      applicationName: APPLICATION_NAME,
    }),
    tables: await listSubscribedTables(fixture.provider, setNames),
    connections: 2,
    originNames: [`${slot}_c0`, `${slot}_c1`],
  };
}

/** md5 over a table's rows in text order: equal digests mean equal contents. */
async function digest(sql: postgres.Sql, table: string): Promise<string | null> {
  const [row] = await sql.unsafe(
    `select md5(string_agg(t::text, E'\\n' order by t::text)) as digest from ${table} t`,
  );
  return row.digest;
}

/** Asserts the copy left no origin and no session, on either side. */
async function assertCleanedUp(fixture: Fixture, slot: string): Promise<void> {
  const origins = await fixture.subscriber`select roname from pg_replication_origin
    where roname like ${slot + "%"}`;
  assert.equal(origins.length, 0, "the copy's origins were dropped");
  await pollUntil(async () => {
    const [row] = await fixture.provider`select count(*)::int as n from pg_stat_activity
      where application_name = ${APPLICATION_NAME}`;
    return row.n === 0;
  }, { what: "the copy's provider and local sessions to end" });
  const [open] = await fixture.provider`select count(*)::int as n from pg_stat_activity
    where datname = 'sub' and state like 'idle in transaction%'`;
  assert.equal(open.n, 0, "no local transaction was left open");
}

const TYPES_DDL = `
  create table t_types (id int primary key, b bytea, j jsonb, ts timestamptz, tx text,
    f float8, iv interval, n numeric, arr int[]);
  create table t_big (id int primary key, v text);
  create schema "Odd";
  create table "Odd"."Mixed Case" (id int primary key, "Val" text);
  create table parted (id int, region text, v int, primary key (id, region))
    partition by list (region);
  create table parted_eu partition of parted for values in ('eu');
  create table parted_us partition of parted for values in ('us');
`;

pgTest(
  "copyTables() copies every type exactly, in parallel, under an origin",
  async (_t, cluster) => {
    const fixture = await setup(cluster, TYPES_DDL);
    const { provider, subscriber } = fixture;
    await provider.unsafe(`
    insert into t_types values
      (1, '\\x00ff10', '{"a": [1, 2.50, null], "b": {"c": "é"}}', '2024-02-29 12:34:56.123456+05:30',
       E'tab\\there\\nnew line \\\\ backslash', 0.1, '1 year -2 days 03:04:05.678901', 1e-30,
       '{1,NULL,3}'),
      (2, null, null, null, null, null, null, null, null),
      (3, '', '[]', '-infinity', '', 'NaN', '-1 days', 'NaN', '{}');
    insert into t_big select g, md5(g::text) from generate_series(1, 20000) g;
    insert into "Odd"."Mixed Case" values (1, 'one'), (2, null);
    insert into parted select g, case when g % 2 = 0 then 'eu' else 'us' end, g
      from generate_series(1, 50) g;
    select spock.repset_add_all_tables('default', array['public', 'Odd']);
  `);
    const seen: TableCopyResult[] = [];
    const results = await withSnapshot(cluster, async (snapshotName, slot) => {
      const options = await copyOptions(fixture, snapshotName, slot, ["default"]);
      assert.deepEqual(
        options.tables.map((t) => `${t.nspname}.${t.relname}`),
        ["Odd.Mixed Case", "public.parted", "public.t_big", "public.t_types"],
        "partitions are copied through their parent",
      );
      const sizes = options.tables.map((t) => t.sizeBytes ?? 0);
      assert.ok(sizes.every((size) => size > 0), "a partitioned table's size is its partitions'");
      assert.equal(Math.max(...sizes), sizes[2], "t_big is the largest");
      const results = await copyTables({
        ...options,
        connections: 1,
        onTableCopied: (r) => void seen.push(r),
      });
      assert.equal(seen[0].relname, "t_big", "the largest table is copied first");
      await assertCleanedUp(fixture, slot);
      return results;
    });

    assert.deepEqual(
      results.map((r) => [r.relname, r.rows]),
      [["Mixed Case", 2], ["parted", 50], ["t_big", 20000], ["t_types", 3]],
    );
    assert.equal(seen.length, 4);
    assert.ok(results.every((r) => r.bytes > 0 && r.ms >= 0));
    for (const table of ['"Odd"."Mixed Case"', "parted", "parted_eu", "t_big", "t_types"]) {
      assert.equal(await digest(subscriber, table), await digest(provider, table), table);
    }
    if (cluster.install.major >= 16) {
      const [row] = await subscriber`select count(*)::int as local_rows from t_big
      where (pg_xact_commit_timestamp_origin(xmin)).roident = 0`;
      assert.equal(row.local_rows, 0, "copied rows carry a replication origin");
    }
    // PG15 has no pg_xact_commit_timestamp_origin(); the origin binding is checked there
    // only through its creation and drop (assertCleanedUp).
  },
);

pgTest("copyTables() copies the slot's snapshot, not later changes", async (_t, cluster) => {
  const fixture = await setup(cluster, "create table t (id int primary key, v text);");
  const { provider, subscriber } = fixture;
  await provider.unsafe(`
    insert into t select g, 'v' || g from generate_series(1, 100) g;
    select spock.repset_add_table('default', 't');
  `);
  const before = await digest(provider, "t");
  await withSnapshot(cluster, async (snapshotName, slot) => {
    await provider.unsafe(`
      insert into t select g, 'late' from generate_series(101, 200) g;
      update t set v = 'changed' where id = 1;
      delete from t where id = 2;
      create table t2 (id int primary key);
      select spock.repset_add_table('default', 't2');
    `);
    const inSnapshot = await provider.begin("isolation level repeatable read", async (tx) => {
      await tx.unsafe(`set transaction snapshot '${snapshotName}'`);
      return await listSubscribedTables(tx, ["default", "no_such_set"]);
    });
    assert.deepEqual(inSnapshot.map(({ sizeBytes: _, ...table }) => table), [{
      nspname: "public",
      relname: "t",
      columns: null,
      rowFilters: [],
    }]);
    assert.ok((inSnapshot[0].sizeBytes ?? 0) > 0, "the table's size is listed");
    const options = await copyOptions(fixture, snapshotName, slot, ["default"]);
    assert.equal(options.tables.length, 2, "outside the snapshot t2 is listed");
    const results = await copyTables({ ...options, tables: inSnapshot });
    assert.equal(results[0].rows, 100);
  });
  assert.equal(await digest(subscriber, "t"), before);
});

pgTest(
  "copyTables() copies only listed columns of rows passing every set's filter",
  async (_t, cluster) => {
    const fixture = await setup(
      cluster,
      "create table t (id int primary key, a int, b text, c int default 7);",
    );
    const { provider, subscriber } = fixture;
    await provider.unsafe(`
    insert into t select g, g, case when g % 5 = 0 then 'skip' else 'keep' end, 100
      from generate_series(1, 40) g;
    select spock.repset_create('s1');
    select spock.repset_create('s2');
    select spock.repset_add_table('s1', 't', false, array['id', 'b'], 'a > 10');
    select spock.repset_add_table('s2', 't', false, array['a', 'id'], $$b <> 'skip'$$);
  `);
    await withSnapshot(cluster, async (snapshotName, slot) => {
      const options = await copyOptions(fixture, snapshotName, slot, ["s1", "s2"]);
      assert.equal(options.tables.length, 1);
      assert.deepEqual(options.tables[0].columns, ["id", "a", "b"]);
      assert.equal(options.tables[0].rowFilters.length, 2);
      const [result] = await copyTables(options);
      assert.equal(result.rows, 24);
    });
    const rows =
      await subscriber`select count(*)::int as n, min(id) as lo, bool_and(c = 7) as defaults,
    bool_and(b = 'keep') as kept, bool_and(a = id) as same from t`;
    assert.deepEqual({ ...rows[0] }, { n: 24, lo: 11, defaults: true, kept: true, same: true });
  },
);

pgTest("copyTables() with truncate replaces what the subscriber had", async (_t, cluster) => {
  const fixture = await setup(
    cluster,
    `create table t (id int primary key, v text);
     create table parted (id int primary key, v int) partition by range (id);
     create table parted_lo partition of parted for values from (0) to (100);
     create table parted_hi partition of parted for values from (100) to (10000);`,
  );
  const { provider, subscriber } = fixture;
  await provider.unsafe(`
    insert into t select g, 'p' || g from generate_series(1, 30) g;
    insert into parted select g, g from generate_series(1, 200) g;
    select spock.repset_add_all_tables('default', array['public']);
  `);
  await subscriber.unsafe(`
    insert into t values (1, 'stale'), (500, 'extra');
    insert into parted values (1, -1), (5000, -1);
  `);
  await withSnapshot(cluster, async (snapshotName, slot) => {
    const options = await copyOptions(fixture, snapshotName, slot, ["default"]);
    await copyTables({ ...options, truncate: true });
  });
  for (const table of ["t", "parted"]) {
    assert.equal(await digest(subscriber, table), await digest(provider, table), table);
  }
});

pgTest("copyTables() rejects naming the table and leaves nothing behind", async (t, cluster) => {
  const fixture = await setup(
    cluster,
    `create table t_ok (id int primary key, v text);
     create table t_bad (id int primary key, v text, extra int);
     create table t_dup (id int primary key);`,
    `create table t_ok (id int primary key, v text);
     create table t_bad (id int primary key, v text);
     create table t_dup (id int primary key);
     insert into t_dup values (300);`,
  );
  const { provider, subscriber } = fixture;
  await provider.unsafe(`
    insert into t_ok select g, 'x' from generate_series(1, 1000) g;
    insert into t_bad select g, 'y', g from generate_series(1, 1000) g;
    insert into t_dup select g from generate_series(1, 300) g;
    select spock.repset_create('bad');
    select spock.repset_create('dup');
    select spock.repset_add_table('bad', 't_ok');
    select spock.repset_add_table('bad', 't_bad');
    select spock.repset_add_table('dup', 't_dup');
  `);
  const count = async (table: string) =>
    (await subscriber.unsafe(`select count(*)::int as n from ${table}`))[0].n;

  await t.step("a column missing locally", async () => {
    await withSnapshot(cluster, async (snapshotName, slot) => {
      const options = await copyOptions(fixture, snapshotName, slot, ["bad"]);
      await assert.rejects(copyTables(options), (error: Error) => {
        assert.match(error.message, /^Cannot copy table "public"\."t_bad": column "extra"/);
        assert.equal((error.cause as postgres.PostgresError).code, "42703");
        assert.ok(error instanceof DataCopyError);
        assert.deepEqual([error.code, error.table, error.sqlState, error.operatorMustAct], [
          "ERR_COPY_TABLE",
          '"public"."t_bad"',
          "42703",
          true,
        ]);
        return true;
      });
      await assertCleanedUp(fixture, slot);
    });
    assert.equal(await count("t_bad"), 0);
  });

  await t.step("a duplicate key in the last row, reported after CopyDone", async () => {
    await withSnapshot(cluster, async (snapshotName, slot) => {
      const options = await copyOptions(fixture, snapshotName, slot, ["dup"]);
      await assert.rejects(copyTables(options), (error: Error) => {
        assert.match(error.message, /^Cannot copy table "public"\."t_dup": duplicate key/);
        assert.equal((error.cause as postgres.PostgresError).code, "23505");
        assert.ok(error instanceof DataCopyError);
        assert.deepEqual([error.code, error.sqlState], ["ERR_COPY_TABLE", "23505"]);
        return true;
      });
      await assertCleanedUp(fixture, slot);
    });
    assert.equal(await count("t_dup"), 1, "the failed table's transaction rolled back");
  });

  await t.step("a table gone from the provider, and a snapshot that is not exported", async () => {
    await withSnapshot(cluster, async (snapshotName, slot) => {
      const options = await copyOptions(fixture, snapshotName, slot, ["dup"]);
      options.tables = [{ nspname: "public", relname: "gone", columns: null, rowFilters: [] }];
      await assert.rejects(copyTables(options), (error: Error) => {
        assert.ok(error instanceof DataCopyError);
        assert.equal(
          error.message,
          'Cannot copy table "public"."gone": the table does not exist on the provider',
        );
        assert.deepEqual([error.code, error.operatorMustAct], ["ERR_COPY_NO_TABLE", true]);
        return true;
      });
      await assertCleanedUp(fixture, slot);
      options.snapshotName = "00000003-000000FF-1";
      await assert.rejects(copyTables(options), (error: Error) => {
        assert.ok(error instanceof DataCopyError);
        assert.match(
          error.message,
          /^Cannot import snapshot '00000003-000000FF-1' on the provider: /,
        );
        assert.deepEqual([error.code, error.operatorMustAct], ["ERR_COPY_SNAPSHOT", false]);
        return true;
      });
      await assertCleanedUp(fixture, slot);
    });
  });

  await t.step("an abort stops after the current table with the signal's reason", async () => {
    await subscriber.unsafe("truncate t_dup, t_ok");
    await withSnapshot(cluster, async (snapshotName, slot) => {
      const controller = new AbortController();
      const reason = new Error("shutting down");
      const options = await copyOptions(fixture, snapshotName, slot, ["bad", "dup"]);
      const tables = options.tables.filter((table) => table.relname !== "t_bad");
      await assert.rejects(
        copyTables({
          ...options,
          tables,
          connections: 1,
          signal: controller.signal,
          onTableCopied: () => controller.abort(reason),
        }),
        (error) => error === reason,
      );
      await assertCleanedUp(fixture, slot);
    });
    assert.equal(await count("t_ok"), 1000, "the first (largest) table was copied");
    assert.equal(await count("t_dup"), 0, "the second table was not copied");
  });
});

pgTest("copyTables() on one session goes on after a large table", async (_t, cluster) => {
  // A big COPY OUT fills the stream's buffer, so postgres.js pauses the socket;
  // the session must still answer for the tables after it.
  const fixture = await setup(
    cluster,
    `create table a_big (id int primary key, v text);
     create table b_small (id int primary key);
     create table c_small (id int primary key);`,
  );
  const { provider, subscriber } = fixture;
  await provider.unsafe(`
    insert into a_big select g, repeat('v', 90) from generate_series(1, 150000) g;
    insert into b_small select generate_series(1, 3);
    insert into c_small select generate_series(1, 5);
    select spock.repset_add_all_tables('default', array['public']);
  `);
  await withSnapshot(cluster, async (snapshotName, slot) => {
    const options = await copyOptions(fixture, snapshotName, slot, ["default"]);
    const results = await copyTables({ ...options, connections: 1 });
    assert.deepEqual(results.map((r) => [r.relname, r.rows]), [
      ["a_big", 150000],
      ["b_small", 3],
      ["c_small", 5],
    ]);
  });
  for (const table of ["a_big", "b_small", "c_small"]) {
    assert.equal(await digest(subscriber, table), await digest(provider, table), table);
  }
});
