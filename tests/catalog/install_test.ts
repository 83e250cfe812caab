import assert from "node:assert/strict";
import { insertSubscriptionRows, pgTest } from "../_harness/mod.ts";
import {
  API_SOURCE_HASH,
  CATALOG_VERSION,
  CatalogError,
  catalogMismatch,
  checkServer,
  installCatalog,
  installedVersion,
  uninstallCatalog,
  workerLockKey,
} from "../../mod/catalog/mod.ts";

pgTest(
  "installCatalog() installs, reinstalls without change, upgrades and uninstalls",
  async (t, cluster) => {
    const sql = cluster.connect();
    await t.step("a fresh install creates the catalog at the newest version", async () => {
      const result = await installCatalog(sql, { programVersion: "test" });
      assert.deepEqual({ ...result, warnings: [] }, {
        from: null,
        to: CATALOG_VERSION,
        changed: true,
        warnings: [],
      });
      assert.equal(await installedVersion(sql), CATALOG_VERSION);
      const tables =
        await sql`select tablename from pg_tables where schemaname = 'spock' order by 1`;
      for (
        const name of [
          "node",
          "node_interface",
          "local_node",
          "subscription",
          "local_sync_status",
          "replication_set",
          "replication_set_table",
          "replication_set_seq",
          "sequence_state",
          "queue",
          "resolutions",
          "exception_log",
          "progress",
        ]
      ) {
        assert.ok(tables.some((r) => r.tablename === name), `table spock.${name}`);
      }
      const views = await sql`select viewname from pg_views where schemaname = 'spock' order by 1`;
      assert.deepEqual(views.map((v) => v.viewname), [
        "channel_summary_stats",
        "channel_table_stats",
        "lag_tracker",
        "tables",
      ]);
    });
    await t.step("installing the same version again changes nothing", async () => {
      const [before] = await sql`select xmin::text, installed_at from spock._catalog`;
      const result = await installCatalog(sql, { programVersion: "test" });
      assert.equal(result.changed, false);
      const [after] = await sql`select xmin::text, installed_at from spock._catalog`;
      assert.deepEqual(after, before);
    });
    await t.step("a function changed by hand is seen and put back", async () => {
      assert.equal(await catalogMismatch(sql), undefined);
      const [recorded] = await sql`select api_source from spock._catalog`;
      assert.equal(recorded.api_source, API_SOURCE_HASH);
      await sql.unsafe(
        "create or replace function spock._local_node_id() returns oid language sql as 'select 0::oid'",
      );
      assert.deepEqual(await catalogMismatch(sql), { kind: "api_modified" });
      const result = await installCatalog(sql, { programVersion: "test" });
      assert.deepEqual([result.changed, result.apiReinstalled], [true, "api_modified"]);
      const [definition] =
        await sql`select pg_get_functiondef('spock._local_node_id'::regproc) as d`;
      assert.match(definition.d, /current database is not configured as spock node/);
      assert.equal(await catalogMismatch(sql), undefined);
      assert.equal((await installCatalog(sql, { programVersion: "test" })).changed, false);
    });
    await t.step("a function an older API had is dropped; one a trigger uses stays", async () => {
      await sql.unsafe(`
        create function spock._remote_wins(xid, timestamptz) returns boolean language sql
          as 'select true';
        create function spock._old_trigger() returns trigger language plpgsql
          as 'begin return null; end';
        create table public.kept (id int);
        create trigger kept_old after insert on public.kept
          for each row execute function spock._old_trigger()`);
      assert.deepEqual(await catalogMismatch(sql), { kind: "api_modified" });
      const result = await installCatalog(sql, { programVersion: "test" });
      assert.deepEqual([result.changed, result.apiReinstalled], [true, "api_modified"]);
      const left = await sql`select proname::text as name from pg_proc
        where pronamespace = 'spock'::regnamespace and proname in ('_remote_wins', '_old_trigger')`;
      assert.deepEqual(left.map((row) => row.name), ["_old_trigger"]);
      assert.equal(await catalogMismatch(sql), undefined);
      await sql.unsafe("drop table public.kept; drop function spock._old_trigger()");
      await installCatalog(sql, { programVersion: "test" });
      assert.equal(await catalogMismatch(sql), undefined);
    });
    await t.step("the checksum does not depend on the session's output settings", async () => {
      await sql`alter database postgres set intervalstyle = 'iso_8601'`;
      await sql`alter database postgres set datestyle = 'SQL, DMY'`;
      const skewed = cluster.connect();
      try {
        const [style] = await skewed`select current_setting('intervalstyle') as s`;
        assert.equal(style.s, "iso_8601");
        assert.equal(await catalogMismatch(skewed), undefined);
      } finally {
        await skewed.end();
        await sql`alter database postgres reset intervalstyle`;
        await sql`alter database postgres reset datestyle`;
      }
    });
    await t.step("uninstall removes the schema", async () => {
      const result = await uninstallCatalog(sql);
      assert.equal(result.removed, true);
      assert.equal(await installedVersion(sql), null);
    });
    await t.step("an older catalog upgrades in place, keeping its rows", async () => {
      await installCatalog(sql, { programVersion: "old", targetVersion: 1 });
      assert.equal(await installedVersion(sql), 1);
      await sql`insert into spock.node (node_id, node_name) values (42, 'kept')`;
      const result = await installCatalog(sql, { programVersion: "new" });
      assert.deepEqual([result.from, result.to, result.changed], [1, CATALOG_VERSION, true]);
      const [node] = await sql`select node_name from spock.node where node_id = 42`;
      assert.equal(node.node_name, "kept");
      const [column] = await sql`select 1 as present from information_schema.columns
      where table_schema = 'spock' and table_name = 'subscription' and column_name = 'sub_skip_schema'`;
      assert.equal(column.present, 1);
      await uninstallCatalog(sql);
    });
    await t.step("a foreign spock schema is not taken over", async () => {
      await sql`create schema spock`;
      await assert.rejects(installCatalog(sql, { programVersion: "test" }), CatalogError);
      await sql`drop schema spock`;
    });
    await t.step("uninstall refuses while spock slots exist, and --force drops them", async () => {
      await installCatalog(sql, { programVersion: "test" });
      await sql`select pg_create_logical_replication_slot('spk_postgres_n1_sub1', 'pgoutput')`;
      await assert.rejects(uninstallCatalog(sql), /spk_postgres_n1_sub1/);
      assert.equal(await installedVersion(sql), CATALOG_VERSION, "nothing was removed");
      const result = await uninstallCatalog(sql, { force: true });
      assert.deepEqual(result.droppedSlots, ["spk_postgres_n1_sub1"]);
      const slots = await sql`select 1 from pg_replication_slots`;
      assert.equal(slots.length, 0);
    });
  },
);

pgTest(
  "checkServer() says what to change on a server without logical decoding",
  async (_t, cluster) => {
    const sql = cluster.connect();
    const report = await checkServer(sql);
    assert.deepEqual(report.errors, [
      'wal_level is "replica": set wal_level = logical in postgresql.conf and restart PostgreSQL',
      "track_commit_timestamp is off: set track_commit_timestamp = on in postgresql.conf and restart PostgreSQL (conflict resolution needs commit timestamps)",
    ]);
    await assert.rejects(installCatalog(sql, { programVersion: "test" }), /wal_level = logical/);
    const [schema] = await sql`select to_regnamespace('spock') is null as absent`;
    assert.equal(schema.absent, true);
  },
  { conf: { wal_level: "replica", track_commit_timestamp: false } },
);

pgTest("checkServer() names the grants a non-superuser role lacks", async (_t, cluster) => {
  const admin = cluster.connect();
  await admin`create role app login`;
  const sql = cluster.connect({ user: "app" });
  const report = await checkServer(sql);
  assert.equal(report.errors.length, 3);
  assert.match(report.errors[0], /ALTER ROLE "app" REPLICATION/);
  assert.match(report.errors[1], /GRANT CREATE ON DATABASE/);
  const grant = /run (GRANT EXECUTE ON FUNCTION .* TO "app")$/.exec(report.errors[2])?.[1];
  assert.ok(grant, report.errors[2]);
  assert.match(grant, /pg_catalog\.pg_replication_origin_session_setup\(text\)/);
  // The statement the message gives runs as it is and grants everything apply needs.
  await admin.unsafe(grant);
  await admin`alter role app replication`;
  await admin`grant create on database postgres to app`;
  assert.deepEqual((await checkServer(sql)).errors, []);
  const [origin] = await sql.unsafe(
    `select pg_replication_origin_create('app_o') is not null as created,
       pg_replication_origin_progress('app_o', false) is null as fresh`,
  );
  assert.deepEqual({ ...origin }, { created: true, fresh: true });
});

pgTest(
  "installCatalog() refuses to change a catalog a daemon applies into",
  async (_t, cluster) => {
    const sql = cluster.connect();
    await installCatalog(sql, { programVersion: "test" });
    await insertSubscriptionRows(sql, "sub_n2");
    // A worker's seat: the subscription's advisory lock, held by another session.
    const worker = cluster.connect();
    await worker`select pg_advisory_lock(${workerLockKey(21)}::int8)`;
    const [{ pid }] = await worker`select pg_backend_pid() as pid`;
    await sql.unsafe(
      "create or replace function spock._local_node_id() returns oid language sql as 'select 0::oid'",
    );
    await assert.rejects(installCatalog(sql, { programVersion: "test" }), (error: Error) => {
      assert.ok(error instanceof CatalogError);
      assert.equal(
        error.message,
        `Cannot change the catalog while spock run applies into this database: subscription ` +
          `sub_n2 (backend pid ${pid}). Stop spock run on this node and wait for it to exit, ` +
          "then install again",
      );
      return true;
    });
    assert.deepEqual(await catalogMismatch(sql), { kind: "api_modified" }, "nothing was changed");
    // Without the daemon the same install goes through.
    await worker.end();
    const result = await installCatalog(sql, { programVersion: "test" });
    assert.equal(result.apiReinstalled, "api_modified");
    assert.equal(await catalogMismatch(sql), undefined);
  },
);
