/**
 * Tests of structure synchronization: finding pg_dump, cleaning its script
 * (with a fake pg_dump that prints a crafted dump), and dumping and restoring
 * a real schema between two databases under an exported snapshot.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import { resolveConnectOptions } from "../../mod/pg/mod.ts";
import {
  dumpSchema,
  findPgDump,
  type PgDumpTool,
  restoreSchema,
  StructureSyncError,
} from "../../mod/sync/mod.ts";
import { ReplicationConnection } from "../../mod/transport/mod.ts";

const DEBIAN_PG_DUMP_15 = "/usr/lib/postgresql/15/bin/pg_dump";
const hasDebianPgDump15 = await Deno.stat(DEBIAN_PG_DUMP_15).then(() => true, () => false);

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
): Promise<StructureSyncError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (error: unknown) => error,
  );
  assert.ok(error instanceof StructureSyncError, `not a StructureSyncError: ${error}`);
  assert.equal(error.code, code, error.message);
  return error;
}

Deno.test({
  name: "findPgDump() finds Debian's pg_dump 15 for a PostgreSQL 15 server",
  ignore: !hasDebianPgDump15,
  fn: async () => {
    const tool = await findPgDump(150010);
    assert.equal(tool.major >= 15, true);
    const withoutPath = await findPgDump(150010, { env: { PATH: "/nonexistent" } });
    assert.deepEqual({ path: withoutPath.path, major: withoutPath.major }, {
      path: DEBIAN_PG_DUMP_15,
      major: 15,
    });
    assert.match(withoutPath.version, /^15\.\d+/);
  },
});

Deno.test({
  name: "findPgDump() searches the install dirs when PG_BIN and PATH have no pg_dump",
  ignore: !hasDebianPgDump15,
  fn: async () => {
    const empty = await Deno.makeTempDir({ prefix: "spock-no-pg-dump-" });
    try {
      const tool = await findPgDump(150000, { env: { PG_BIN: empty, PATH: empty } });
      assert.equal(tool.path, DEBIAN_PG_DUMP_15);
    } finally {
      await Deno.remove(empty, { recursive: true });
    }
  },
});

Deno.test("findPgDump() names the needed major and the fix when none is new enough", async () => {
  const error = await rejectsWith(
    findPgDump(990000, { env: { PATH: "" } }),
    "ERR_SYNC_NO_PG_DUMP",
  );
  assert.match(error.message, /^Cannot find pg_dump 99 or newer for a PostgreSQL 99 server: /);
  assert.match(error.message, /install postgresql-client-99 or set PG_BIN/);
  assert.match(error.message, /looked in PG_BIN, PATH, \/usr\/lib\/postgresql\/<N>\/bin/);
  if (hasDebianPgDump15) assert.match(error.message, /pg_dump 15\.\d+ at \/usr\/lib\/postgresql/);
});

/** A fake pg_dump in a temporary directory, driven by files beside it. */
async function withFakePgDump(
  fn: (tool: PgDumpTool, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spock-fake-pg-dump-" });
  try {
    await Deno.writeTextFile(
      `${dir}/pg_dump`,
      `#!/bin/sh
dir=$(dirname "$0")
if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.1 (fake)"; exit 0; fi
printf '%s\\n' "$@" > "$dir/args"
printf '%s' "\${PGPASSWORD-<unset>}" > "$dir/pgpassword"
if [ -f "$dir/hang" ]; then exec sleep 30; fi
if [ -f "$dir/fail" ]; then cat "$dir/fail" >&2; exit 1; fi
cat "$dir/script.sql"
`,
    );
    await Deno.chmod(`${dir}/pg_dump`, 0o755);
    const tool = await findPgDump(990000, { env: { PG_BIN: dir, PATH: "" } });
    assert.deepEqual(tool, { path: `${dir}/pg_dump`, major: 99, version: "99.1" });
    await fn(tool, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const FAKE_DUMP = `--
-- PostgreSQL database dump
--

\\restrict AbC123xyz

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: f(); Type: FUNCTION; Schema: app; Owner: postgres
--

CREATE FUNCTION app.f() RETURNS text
    LANGUAGE sql
    AS $_$SELECT '
\\not a meta-command $x$'$_$;

COMMENT ON FUNCTION app.f() IS E'it''s \\'
\\still a literal';

/* a block comment
\\inside /* nested */ still inside
*/

--
-- Name: spock_drop_cleanup; Type: EVENT TRIGGER; Schema: -; Owner: postgres
--

CREATE EVENT TRIGGER spock_drop_cleanup ON sql_drop
   EXECUTE FUNCTION spock._drop_cleanup();


--
-- Name: EVENT TRIGGER spock_drop_cleanup; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON EVENT TRIGGER spock_drop_cleanup IS 'spock''s';


--
-- Name: app_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
--

CREATE EVENT TRIGGER app_ddl ON ddl_command_end
   EXECUTE FUNCTION app.on_ddl();


--
-- PostgreSQL database dump complete
--

\\unrestrict AbC123xyz

`;

Deno.test("dumpSchema() strips \\restrict lines and spock's event triggers", async () => {
  await withFakePgDump(async (tool, dir) => {
    await Deno.writeTextFile(`${dir}/script.sql`, FAKE_DUMP);
    const script = await dumpSchema({
      tool,
      dsn: "host=db1 dbname=app user=alice password=s3cret-pw",
      section: "post-data",
      snapshotName: "00000003-00000002-1",
      excludeSchemas: ["Skip Me", "audit"],
    });
    assert.doesNotMatch(script, /restrict/);
    assert.match(script, /^\\not a meta-command \$x\$'\$_\$;$/m);
    assert.match(script, /^\\still a literal';$/m);
    assert.match(script, /^\\inside \/\* nested \*\/ still inside$/m);
    assert.doesNotMatch(script, /spock_drop_cleanup/);
    assert.match(script, /CREATE EVENT TRIGGER app_ddl ON ddl_command_end/);
    assert.match(script, /-- PostgreSQL database dump complete/);
    const args = (await Deno.readTextFile(`${dir}/args`)).trimEnd().split("\n");
    assert.deepEqual(args, [
      "--schema-only",
      "--section=post-data",
      "--format=plain",
      "--encoding=UTF8",
      "--no-publications",
      "--no-subscriptions",
      '--exclude-schema="spock"',
      '--exclude-schema="Skip Me"',
      '--exclude-schema="audit"',
      "--snapshot=00000003-00000002-1",
      "--dbname=host=db1 dbname=app user=alice",
    ]);
    assert.equal(await Deno.readTextFile(`${dir}/pgpassword`), "s3cret-pw");
  });
});

Deno.test("dumpSchema() refuses a psql meta-command other than \\restrict", async () => {
  await withFakePgDump(async (tool, dir) => {
    await Deno.writeTextFile(
      `${dir}/script.sql`,
      "\\restrict k1\nSELECT 1;\n\\! echo owned\n\\unrestrict k1\n",
    );
    const error = await rejectsWith(
      dumpSchema({ tool, dsn: "dbname=app", section: "pre-data" }),
      "ERR_SYNC_DUMP_META",
    );
    assert.match(error.message, /line 3 holds the psql meta-command "\\!"/);
  });
});

Deno.test("dumpSchema() reports pg_dump's error without the password", async () => {
  await withFakePgDump(async (tool, dir) => {
    await Deno.writeTextFile(
      `${dir}/fail`,
      "pg_dump: error: cannot use s3cret-pw (from password=s3cret-pw)\n",
    );
    const error = await rejectsWith(
      dumpSchema({
        tool,
        dsn: "postgresql://alice:s3cret-pw@db1/app",
        section: "pre-data",
      }),
      "ERR_SYNC_DUMP_FAILED",
    );
    assert.doesNotMatch(error.message, /s3cret/);
    assert.match(error.message, /^Cannot dump the pre-data schema of postgresql:\/\/alice:\*+@db1/);
    assert.match(error.message, /pg_dump 99\.1 exited with code 1: pg_dump: error: cannot use/);
    assert.equal(await Deno.readTextFile(`${dir}/pgpassword`), "s3cret-pw");
  });
});

Deno.test("dumpSchema() kills pg_dump when the signal aborts", async () => {
  await withFakePgDump(async (tool, dir) => {
    await Deno.writeTextFile(`${dir}/hang`, "");
    const controller = new AbortController();
    const started = performance.now();
    const dumping = dumpSchema({
      tool,
      dsn: "dbname=app",
      section: "pre-data",
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error("stop")), 100);
    await assert.rejects(dumping, /stop/);
    assert.ok(performance.now() - started < 10_000);
  });
});

const APP_SCHEMA = `
CREATE SCHEMA app;
CREATE TYPE app.status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE app.customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL CONSTRAINT email_has_at CHECK (email LIKE '%@%')
);
CREATE SEQUENCE app.order_no START 1000;
CREATE TABLE app.orders (
  id bigserial PRIMARY KEY,
  no bigint NOT NULL DEFAULT nextval('app.order_no'),
  customer_id bigint NOT NULL REFERENCES app.customers (id),
  status app.status NOT NULL DEFAULT 'new',
  total numeric(12, 2) CHECK (total >= 0)
);
CREATE INDEX orders_customer_idx ON app.orders (customer_id);
CREATE VIEW app.open_orders AS SELECT id, customer_id FROM app.orders WHERE status <> 'shipped';
CREATE FUNCTION app.order_count(c bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT count(*) FROM app.orders WHERE customer_id = c $$;
CREATE FUNCTION app.backslash() RETURNS text LANGUAGE sql IMMUTABLE AS $body$SELECT '
\\not a meta-command'$body$;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER app_ddl ON ddl_command_end EXECUTE FUNCTION app.on_ddl();
CREATE PUBLICATION app_pub FOR TABLE app.customers;
INSERT INTO app.customers (email) VALUES ('a@example.com');
CREATE SCHEMA skipme;
CREATE TABLE skipme.t (id int PRIMARY KEY);
CREATE FUNCTION skipme.audit() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER skip_audit ON ddl_command_end EXECUTE FUNCTION skipme.audit();
`;

pgTest(
  "dumpSchema() and restoreSchema() copy a schema before and after the data",
  async (t, cluster) => {
    const admin = cluster.connect();
    await admin`CREATE DATABASE provider`;
    await admin`CREATE DATABASE subscriber`;
    const provider = cluster.connect({ database: "provider" });
    const subscriber = cluster.connect({ database: "subscriber" });
    const serverVersionNum = Number((await admin`SHOW server_version_num`)[0].server_version_num);
    let tool: PgDumpTool;
    try {
      tool = await findPgDump(serverVersionNum);
    } catch (error) {
      // This machine has pg_dump 15 only; PostgreSQL 17 must get the clear error.
      assert.ok(error instanceof StructureSyncError);
      assert.equal(error.code, "ERR_SYNC_NO_PG_DUMP");
      assert.match(error.message, new RegExp(`pg_dump ${cluster.install.major} or newer`));
      return;
    }
    await installCatalog(provider, { programVersion: "test" });
    await provider.unsafe(APP_SCHEMA);
    await installCatalog(subscriber, { programVersion: "test" });
    const spockTables = () =>
      subscriber`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n
      ON n.oid = c.relnamespace WHERE n.nspname = 'spock'`.then(([row]) => row.n);
    const spockTablesBefore = await spockTables();
    const count = (query: string) =>
      subscriber.unsafe(query).then(([row]) => Number(Object.values(row)[0]));

    const replication = await ReplicationConnection.open(
      resolveConnectOptions(cluster.dsn({ dbname: "provider" })),
    );
    let preData = "";
    let postData = "";
    try {
      const slot = await replication.createSlot("structure_sync_test", { snapshot: "export" });
      assert.ok(slot.snapshotName);
      // Rows added after the snapshot and a table created after it stay out of the dumps.
      await provider`CREATE TABLE app.after_snapshot (id int)`;
      const options = {
        tool,
        dsn: cluster.dsn({ dbname: "provider" }),
        snapshotName: slot.snapshotName,
        excludeSchemas: ["skipme"],
      };
      preData = await dumpSchema({ ...options, section: "pre-data" });
      postData = await dumpSchema({ ...options, section: "post-data" });
      await replication.dropSlot(slot.slotName);
    } finally {
      await replication.close();
    }
    assert.doesNotMatch(preData + postData, /restrict/);
    assert.doesNotMatch(preData, /after_snapshot/);

    await t.step("pre-data creates tables, types, views and functions only", async () => {
      await restoreSchema(subscriber, preData, { section: "pre-data" });
      for (const name of ["app.customers", "app.orders", "app.open_orders", "app.order_no"]) {
        assert.equal(
          await count(`SELECT count(*) FROM pg_class WHERE oid = to_regclass('${name}')`),
          1,
        );
      }
      assert.equal(
        await count("SELECT count(*) FROM pg_type WHERE oid = to_regtype('app.status')"),
        1,
      );
      assert.equal(await count("SELECT app.order_count(1)"), 0);
      assert.equal((await subscriber`SELECT app.backslash() AS b`)[0].b, "\n\\not a meta-command");
      assert.equal(
        await count(`SELECT count(*) FROM pg_attribute WHERE attrelid = 'app.customers'::regclass
        AND attname = 'id' AND attidentity = 'a'`),
        1,
      );
      assert.equal(await count("SELECT count(*) FROM app.customers"), 0);
      assert.equal(
        await count(`SELECT count(*) FROM pg_constraint WHERE conname = 'email_has_at'`),
        1,
      );
      assert.equal(await count("SELECT count(*) FROM pg_indexes WHERE schemaname = 'app'"), 0);
      assert.equal(
        await count(
          `SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'app' AND c.contype IN ('f', 'p')`,
        ),
        0,
      );
      assert.equal(await count("SELECT count(*) FROM pg_namespace WHERE nspname = 'skipme'"), 0);
      assert.equal(await spockTables(), spockTablesBefore);
      // The script's set_config('search_path', '', false) did not stick to the session.
      assert.equal((await subscriber`SHOW search_path`)[0].search_path, '"$user", public');
    });

    await t.step(
      "post-data adds indexes, keys and triggers, not spock's or skipped ones",
      async () => {
        // A daemon started between the sections guards a table already: the provider's guard replaces it.
        await subscriber`SELECT spock._readonly_attach('app.orders')`;
        await restoreSchema(subscriber, postData, { section: "post-data" });
        assert.equal(
          await count(`SELECT count(*) FROM pg_trigger WHERE tgname = 'spock_readonly'
            AND tgrelid IN ('app.orders'::regclass, 'app.customers'::regclass)`),
          2,
        );
        const indexes = await subscriber`SELECT indexname FROM pg_indexes WHERE schemaname = 'app'
      ORDER BY indexname`;
        assert.deepEqual(indexes.map((row) => row.indexname), [
          "customers_pkey",
          "orders_customer_idx",
          "orders_pkey",
        ]);
        assert.equal(
          await count(`SELECT count(*) FROM pg_constraint WHERE conrelid = 'app.orders'::regclass
        AND contype = 'f'`),
          1,
        );
        assert.equal(
          await count("SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_touch'"),
          1,
        );
        const eventTriggers = await subscriber`SELECT evtname FROM pg_event_trigger ORDER BY 1`;
        // The subscriber's own spock triggers, and the provider's app_ddl: not a second copy of spock's.
        assert.deepEqual(eventTriggers.map((row) => row.evtname), [
          "app_ddl",
          "spock_auto_ddl",
          "spock_drop_cleanup",
          "spock_lists_off",
          "spock_lists_on",
          "spock_readonly_ddl",
          "spock_readonly_new_tables",
        ]);
        assert.equal(
          await count("SELECT count(*) FROM pg_publication WHERE pubname = 'app_pub'"),
          0,
        );
        assert.equal(await spockTables(), spockTablesBefore);
      },
    );

    await t.step("restoring pre-data again fails and changes nothing", async () => {
      // Sorted first in the new dump, so it is created before "app" collides.
      await provider`CREATE SCHEMA aaa_added`;
      const again = await dumpSchema({
        tool,
        dsn: cluster.dsn({ dbname: "provider" }),
        section: "pre-data",
        excludeSchemas: ["skipme"],
      });
      assert.ok(again.indexOf("CREATE SCHEMA aaa_added") < again.indexOf("CREATE SCHEMA app"));
      const error = await rejectsWith(
        restoreSchema(subscriber, again, { section: "pre-data" }),
        "ERR_SYNC_RESTORE_FAILED",
      );
      assert.equal(error.sqlState, "42P06");
      assert.match(error.message, /schema "app" already exists/);
      assert.match(error.message, /synchronize_structure := false/);
      assert.equal(await count("SELECT count(*) FROM pg_namespace WHERE nspname = 'aaa_added'"), 0);
    });
  },
  { everyVersion: true },
);

pgTest("restoreSchema() rolls back a failed or cancelled script", async (t, cluster) => {
  const sql = cluster.connect({ max: 2 });
  await sql`CREATE TABLE public.exists_already (id int)`;
  const script = `
SET client_min_messages = warning;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE SCHEMA only_in_script;
CREATE TABLE only_in_script.t (id int);
CREATE TABLE public.exists_already (id int);
`;
  await t.step("a duplicate object rolls back the whole script", async () => {
    const error = await rejectsWith(restoreSchema(sql, script), "ERR_SYNC_RESTORE_FAILED");
    assert.equal(error.sqlState, "42P07");
    assert.match(
      error.message,
      /^Cannot restore a schema script on the subscriber, nothing was changed: relation "exists_already" already exists \(SQLSTATE 42P07\)/,
    );
    assert.ok(error.cause instanceof Error);
    const [row] = await sql`SELECT to_regnamespace('only_in_script') IS NULL AS absent,
      current_setting('search_path') AS path`;
    assert.deepEqual({ ...row }, { absent: true, path: '"$user", public' });
  });
  await t.step("an aborted restore is cancelled and rolled back", async () => {
    const controller = new AbortController();
    const restoring = restoreSchema(
      sql,
      "CREATE SCHEMA cancelled; SELECT pg_sleep(30);",
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error("shutting down")), 200);
    await assert.rejects(restoring, /shutting down/);
    const [row] = await sql`SELECT to_regnamespace('cancelled') IS NULL AS absent`;
    assert.equal(row.absent, true);
  });
  await t.step("a successful script keeps no session setting", async () => {
    await restoreSchema(sql, script.replace(/^CREATE TABLE public.*$/m, ""));
    const rows = await sql`SELECT current_setting('search_path') AS path,
      current_setting('client_min_messages') AS level, to_regclass('only_in_script.t') AS t`;
    assert.deepEqual({ ...rows[0] }, {
      path: '"$user", public',
      level: "notice",
      t: "only_in_script.t",
    });
  });
});

pgTest(
  "dumpSchema() keeps the DSN's password out of the command line and messages",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe("CREATE ROLE pw_user LOGIN SUPERUSER PASSWORD 'Right-Pass-42'");
    let tool: PgDumpTool;
    try {
      tool = await findPgDump(150000);
    } catch {
      return; // no pg_dump at all on this machine
    }
    await t.step("a wrong password fails without showing it", async () => {
      for (
        const dsn of [
          cluster.dsn({ user: "pw_user", password: "Wrong-Secret-17" }),
          `postgresql://pw_user:Wrong-Secret-17@${cluster.host}:${cluster.port}/postgres`,
        ]
      ) {
        const error = await rejectsWith(
          dumpSchema({ tool, dsn, section: "pre-data" }),
          "ERR_SYNC_DUMP_FAILED",
        );
        assert.match(error.message, /password authentication failed for user "pw_user"/);
        assert.doesNotMatch(error.message, /Wrong-Secret/);
      }
    });
    await t.step("the right password reaches pg_dump through PGPASSWORD", async () => {
      const dumping = dumpSchema({
        tool,
        dsn: cluster.dsn({ user: "pw_user", password: "Right-Pass-42" }),
        section: "pre-data",
      });
      if (tool.major >= cluster.install.major) {
        assert.match(await dumping, /PostgreSQL database dump/);
      } else {
        // Authenticated, then refused: pg_dump does not dump newer servers.
        const error = await rejectsWith(dumping, "ERR_SYNC_DUMP_FAILED");
        assert.match(error.message, /server version mismatch/);
        assert.doesNotMatch(error.message, /Right-Pass/);
      }
    });
  },
  { hba: ["host all pw_user 127.0.0.1/32 scram-sha-256"] },
);
