/**
 * Automatic DDL replication on one node (mod/catalog/sql/api/20_auto_ddl.sql):
 * which statements the event trigger queues as 'D' commands and with what
 * text, role and sets; what it refuses and why; include_ddl_repset; and that
 * neither spock's own DDL nor replicate_ddl's is queued twice.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { createDatabase, makeNode } from "./_sub_fixture.ts";

pgTest("automatic DDL queues the statements Spock's rules replicate", async (t, cluster) => {
  const node = await createDatabase(cluster, "n1");
  await makeNode(node, "n1");
  // One session, so that SET applies to every statement below.
  const sql = await node.sql.reserve();
  const queued = async () => {
    const rows = await sql`SELECT message_type, role, replication_sets,
      message #>> '{}' AS command FROM spock.queue ORDER BY queued_at`;
    await sql`DELETE FROM spock.queue`;
    return rows.map((r) => ({ ...r }));
  };
  const setsOf = async (table: string) => {
    const rows = await sql`SELECT s.set_name FROM spock.replication_set_table r
      JOIN spock.replication_set s USING (set_id) WHERE r.set_reloid = ${table}::regclass
      ORDER BY 1`;
    return rows.map((r) => r.set_name);
  };
  try {
    await t.step("off unless spock.enable_ddl_replication is on", async () => {
      await sql`CREATE TABLE quiet (id int)`;
      assert.deepEqual(await queued(), []);
    });

    await sql`SET spock.enable_ddl_replication = on`;
    await t.step("a top-level statement is queued with the session's path and role", async () => {
      await sql`SET search_path = public`;
      await sql`CREATE TABLE a (id int PRIMARY KEY)`;
      assert.deepEqual(await queued(), [{
        message_type: "D",
        role: "postgres",
        replication_sets: ["default_insert_only"],
        command: "SET search_path TO public; CREATE TABLE a (id int PRIMARY KEY)",
      }]);
      // Not in a set without include_ddl_repset.
      assert.deepEqual(await setsOf("a"), []);
    });

    await t.step("each statement of a multi-statement query string alone", async () => {
      await sql.unsafe(
        "CREATE TABLE b (id int); /* two */ ALTER TABLE b ADD COLUMN c text; INSERT INTO b VALUES (1)",
      );
      assert.deepEqual((await queued()).map((r) => r.command), [
        "SET search_path TO public; CREATE TABLE b (id int)",
        "SET search_path TO public; /* two */ ALTER TABLE b ADD COLUMN c text",
      ]);
    });

    await t.step("DDL in a function only with spock.allow_ddl_from_functions", async () => {
      await sql`CREATE FUNCTION make(name text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN EXECUTE format('CREATE TABLE %I (id int)', name); END $$`;
      await sql`CREATE FUNCTION make_sql() RETURNS void LANGUAGE sql AS
        $$ CREATE TABLE from_sql (id int) $$`;
      await queued();
      await sql`SELECT make('f1')`;
      assert.deepEqual(await queued(), []);
      await sql`SET spock.allow_ddl_from_functions = on`;
      await sql`SELECT make('f2')`;
      await sql`DO $$ BEGIN CREATE TABLE f3 (id int); END $$`;
      assert.deepEqual((await queued()).map((r) => r.command), [
        "SET search_path TO public; CREATE TABLE f2 (id int)",
        "SET search_path TO public; CREATE TABLE f3 (id int)",
      ]);
      // An SQL-language function shows no statement text: not replicated.
      await sql`SELECT make_sql()`;
      assert.deepEqual(await queued(), []);
      // Spock's own functions run DDL (publications): never queued.
      await sql`SELECT spock.repset_add_table('default', 'a')`;
      await sql`SELECT spock.repset_remove_table('default', 'a')`;
      assert.deepEqual(await queued(), []);
      await sql`RESET spock.allow_ddl_from_functions`;
    });

    await t.step("temporary objects and CONCURRENTLY are not replicated", async () => {
      await sql`CREATE TEMP TABLE tmp (id int)`;
      await sql`DROP TABLE tmp`;
      await sql`CREATE INDEX CONCURRENTLY a_id ON a (id)`;
      assert.deepEqual(await queued(), []);
      await sql`DROP INDEX a_id`;
      assert.deepEqual((await queued()).map((r) => r.command), [
        "SET search_path TO public; DROP INDEX a_id",
      ]);
    });

    await t.step("replicate_ddl's statements are queued once, as 'Q'", async () => {
      await sql`SELECT spock.replicate_ddl('CREATE TABLE once (id int)')`;
      assert.deepEqual((await queued()).map((r) => r.message_type), ["Q"]);
    });

    await t.step("a role without rights on the spock schema is queued as itself", async () => {
      await sql`CREATE ROLE app LOGIN`;
      await sql`GRANT CREATE ON SCHEMA public TO app`;
      // GRANT is DDL; CREATE ROLE is global, and event triggers do not see it.
      assert.deepEqual((await queued()).map((r) => r.command), [
        "SET search_path TO public; GRANT CREATE ON SCHEMA public TO app",
      ]);
      await sql`SET ROLE app`;
      await sql`CREATE TABLE app_table (id int)`;
      // The trigger runs as its owner: objects of the caller's search_path
      // that shadow pg_catalog's must not run there.
      await sql`CREATE FUNCTION public.trap(text, text) RETURNS boolean LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'trap ran as %', current_user; END $$`;
      await sql`CREATE OPERATOR public.= (leftarg = text, rightarg = text, function = public.trap)`;
      await sql`CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text
        LANGUAGE sql AS $$ SELECT public.trap($1, $2)::text $$`;
      await sql`SET search_path = public, pg_catalog`;
      await sql`CREATE TABLE app_shadowed (id int)`;
      await sql`RESET ROLE`;
      await sql`SET search_path = public`;
      const rows = await queued();
      assert.deepEqual(rows.map((r) => r.role), ["app", "app", "app", "app", "app"]);
      assert.equal(
        rows.at(-1)!.command,
        "SET search_path TO public,pg_catalog; CREATE TABLE app_shadowed (id int)",
      );
    });

    await t.step("the daemon's defaults count where nothing set the setting", async () => {
      await sql`RESET spock.enable_ddl_replication`;
      await sql`CREATE TABLE before_default (id int)`;
      await sql`SELECT spock._set_setting_defaults('{"spock.enable_ddl_replication": "on"}')`;
      await sql`CREATE TABLE by_default (id int)`;
      await sql`SET spock.enable_ddl_replication = off`;
      await sql`CREATE TABLE set_off (id int)`;
      await sql`SET spock.enable_ddl_replication = on`;
      assert.deepEqual((await queued()).map((r) => r.command), [
        "SET search_path TO public; CREATE TABLE by_default (id int)",
      ]);
    });

    await t.step("include_ddl_repset puts new tables in a set that suits them", async () => {
      await sql`SET spock.include_ddl_repset = on`;
      await sql`CREATE TABLE keyed (id int PRIMARY KEY)`;
      await sql`CREATE TABLE unkeyed (id int)`;
      await sql`CREATE UNLOGGED TABLE unlogged (id int PRIMARY KEY)`;
      assert.deepEqual(await setsOf("keyed"), ["default"]);
      assert.deepEqual(await setsOf("unkeyed"), ["default_insert_only"]);
      assert.deepEqual(await setsOf("unlogged"), []);
      // Losing its key moves a table out of sets that replicate UPDATE and DELETE.
      await sql`ALTER TABLE keyed DROP CONSTRAINT keyed_pkey`;
      assert.deepEqual(await setsOf("keyed"), ["default_insert_only"]);
      // A table already in a set that suits it stays there.
      await sql`ALTER TABLE unkeyed ADD PRIMARY KEY (id)`;
      assert.deepEqual(await setsOf("unkeyed"), ["default_insert_only"]);
      await sql`DROP TABLE unkeyed`;
      const [left] = await sql`SELECT count(*)::int AS n FROM spock.replication_set_table r
        WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = r.set_reloid)`;
      assert.equal(left.n, 0);
      assert.equal((await queued()).length, 6);
    });
  } finally {
    sql.release();
    await node.sql.end();
  }
});
