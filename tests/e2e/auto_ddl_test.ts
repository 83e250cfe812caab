/**
 * Automatic DDL replication between two nodes that subscribe to each other,
 * with spock.enable_ddl_replication set the way users set it (ALTER DATABASE
 * … SET) and spock.include_ddl_repset from the daemon's config (the nodes'
 * default of it): a table created on one node reaches
 * the other with its rows and joins its sets there, so writes flow both
 * ways; ALTER TABLE and DROP TABLE follow; a DDL inside a function only with
 * spock.allow_ddl_from_functions; nothing comes back (no loops).
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { closeNodes, createNodes, runDaemon, subscribeMesh, waitForSync } from "./_mesh.ts";

pgTest("automatic DDL replication between two writing nodes", async (t, cluster) => {
  const nodes = await createNodes(cluster, ["n1", "n2"], "");
  const admin = cluster.connect();
  for (const { name } of nodes) {
    await admin.unsafe(`alter database ${name} set spock.enable_ddl_replication = on`);
  }
  await admin.end();
  // Sessions opened after the setting, as the daemon's are.
  const [s1, s2] = nodes.map(({ name }) => cluster.connect({ database: name, max: 1 }));
  // include_ddl_repset comes from the daemon's config, the nodes' default of it.
  const daemon = runDaemon(nodes, { include_ddl_repset: true });
  const has = (sql: postgres.Sql, query: string) =>
    pollUntil(async () => (await sql.unsafe(query)).length > 0 || undefined, { what: query });
  try {
    const subs = await subscribeMesh(nodes);
    for (const [node, sub] of subs) await waitForSync(node, sub);

    await t.step("CREATE TABLE and its rows reach the other node", async () => {
      await s1`create table items (id int primary key, v text)`;
      await s1`insert into items select g, 'n1' from generate_series(1, 3) g`;
      await has(s2, "select from items having count(*) = 3");
      const sets = await s2`select set_name from spock.tables where relname = 'items'`;
      assert.deepEqual(sets.map((r) => r.set_name), ["default"]);
      // It is in n2's sets too: n2's rows come back to n1.
      await s2`insert into items values (4, 'n2')`;
      await has(s1, "select from items where id = 4");
    });

    await t.step("ALTER TABLE on the other node replicates back", async () => {
      await s2`alter table items add column c int default 7`;
      await has(
        s1,
        "select from information_schema.columns where table_name = 'items' and column_name = 'c'",
      );
      await s1`insert into items (id, v, c) values (5, 'n1', 42)`;
      await has(s2, "select from items where id = 5 and c = 42");
    });

    await t.step("a DDL in a function only with allow_ddl_from_functions", async () => {
      await s1`create function make(name text) returns void language plpgsql as $$
        begin execute format('create table %I (id int primary key)', name); end $$`;
      await has(s2, "select from pg_proc where proname = 'make'");
      await s1`select make('local_only')`;
      await s1.begin(async (tx) => {
        await tx`set local spock.allow_ddl_from_functions = on`;
        await tx`select make('from_function')`;
      });
      await has(s2, "select from pg_class where relname = 'from_function'");
      const [local] = await s2`select to_regclass('local_only') as r`;
      assert.equal(local.r, null);
    });

    await t.step("DROP TABLE replicates and leaves no set membership behind", async () => {
      await s1`drop table items`;
      await has(s2, "select where to_regclass('items') is null");
      const [left] = await s2`select count(*)::int as n from spock.replication_set_table r
        where not exists (select from pg_class c where c.oid = r.set_reloid)`;
      assert.equal(left.n, 0);
    });

    await t.step("nothing loops back: each node queued only its own statements", async () => {
      const [n1] = await s1`select count(*)::int as n from spock.queue where message_type = 'D'`;
      const [n2] = await s2`select count(*)::int as n from spock.queue where message_type = 'D'`;
      // n1: CREATE TABLE, CREATE FUNCTION, the function's CREATE TABLE, DROP TABLE.
      assert.equal(n1.n, 4);
      // n2: the ALTER TABLE.
      assert.equal(n2.n, 1);
      for (const sql of [s1, s2]) {
        const [log] = await sql`select count(*)::int as n from spock.exception_log`;
        assert.equal(log.n, 0);
      }
      for (const [node, sub] of subs) {
        const [status] = await node.sql`select status from spock.sub_show_status(${sub})`;
        assert.equal(status.status, "replicating", `${sub} on ${node.name}`);
      }
    });
  } finally {
    await daemon.stop();
    await Promise.all([s1.end(), s2.end()]);
    await closeNodes(nodes);
  }
});
