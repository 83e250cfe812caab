/**
 * The subscription SQL API (mod/catalog/sql/api/1[2-6]_subscription*.sql) against real
 * servers: two nodes are two databases of one cluster, and sub_create reaches
 * the provider through dblink. No engine runs, so statuses stay "down" unless a
 * test writes a heartbeat, and sync rows move only when a test sets them.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { catalogCounts, createDatabase, errorOf, makeNode } from "./_sub_fixture.ts";

pgTest("spock.sub_* functions record subscriptions as Spock does", async (t, cluster) => {
  const provider = await createDatabase(cluster, "prov");
  const subscriber = await createDatabase(cluster, "subs");
  const providerId = await makeNode(provider, "provider1");
  const subscriberId = await makeNode(subscriber, "subscriber1");
  for (const db of [provider, subscriber]) {
    await db.sql`CREATE TABLE public.t1 (id int PRIMARY KEY, v text)`;
  }
  const sub = subscriber.sql;
  await sub`SET statement_timeout = '20s'`; // every wait below ends, one way or another
  const payloads: string[] = [];
  await sub.listen("spock_catalog", (payload) => payloads.push(payload));

  await t.step("sub_create() reads the provider over dblink and writes Spock's rows", async () => {
    await provider
      .sql`UPDATE spock.node SET location = 'Lisbon', country = 'pt', info = '{"a": 1}'`;
    const [row] = await sub`SELECT spock.sub_create(subscription_name := 'subscription1',
      provider_dsn := ${provider.dsn}) AS id`;
    const [expected] = await sub`SELECT spock._sub_id('subscription1') AS id,
      spock.spock_gen_slot_name('subs', 'provider1', 'subscription1') AS slot`;
    assert.equal(row.id, expected.id);
    const [s] = await sub`SELECT * FROM spock.subscription`;
    assert.equal(s.sub_name, "subscription1");
    assert.equal(Number(s.sub_origin), providerId);
    assert.equal(Number(s.sub_target), subscriberId);
    assert.equal(s.sub_slot_name, "spk_subs_provider1_subscription1");
    assert.equal(s.sub_slot_name, expected.slot);
    assert.deepEqual(s.sub_replication_sets, ["default", "default_insert_only", "ddl_sql"]);
    assert.equal(s.sub_forward_origins, null);
    assert.equal(s.sub_skip_schema, null);
    assert.equal(s.sub_enabled, true);
    assert.equal(s.sub_skip_lsn, "0/0");
    assert.ok(s.sub_created_at instanceof Date);
    const [origin] = await sub`SELECT n.node_id, n.location, n.country, n.info,
      i.if_id = spock._pair_id(n.node_id, n.node_name) AS if_ok,
      i.if_name, i.if_dsn, i.if_id = ${s.sub_origin_if} AS used
      FROM spock.node n JOIN spock.node_interface i ON i.if_nodeid = n.node_id
      WHERE n.node_name = 'provider1'`;
    assert.deepEqual({ ...origin, node_id: Number(origin.node_id) }, {
      node_id: providerId,
      location: "Lisbon",
      country: "pt",
      info: { a: 1 },
      if_ok: true,
      if_name: "provider1",
      if_dsn: provider.dsn,
      used: true,
    });
    const sync = await sub`SELECT sync_kind, sync_nspname, sync_relname, sync_status, sync_statuslsn
      FROM spock.local_sync_status`;
    assert.deepEqual(sync.map((r) => ({ ...r })), [{
      sync_kind: "i",
      sync_nspname: null,
      sync_relname: null,
      sync_status: "i",
      sync_statuslsn: "0/0",
    }]);
    const [progress] = await sub`SELECT node_id, remote_node_id, remote_lsn, updated_by_decode
      FROM spock.progress`;
    assert.deepEqual([Number(progress.node_id), Number(progress.remote_node_id)], [
      subscriberId,
      providerId,
    ]);
    assert.equal(progress.remote_lsn, "0/0");
    const [status] = await sub`SELECT * FROM spock.sub_show_status()`;
    assert.equal(status.status, "down");
    assert.equal(status.provider_node, "provider1");
    await pollUntil(() => payloads.some((p) => JSON.parse(p).action === "create"), {
      what: "the create notification",
    });
  });

  await t.step(
    "sub_create() refuses bad input with Spock's errors and changes nothing",
    async () => {
      const before = await catalogCounts(sub);
      const cases: [string, string, string][] = [
        ["subscription1", provider.dsn, "subscription subscription1 already exists"],
        ["Sub2", provider.dsn, 'subscription name "Sub2" contains invalid character'],
        ["sub-2", provider.dsn, 'subscription name "sub-2" contains invalid character'],
        ["süb", provider.dsn, 'subscription name "süb" contains invalid character'],
        ["x'); DROP TABLE t1; --", provider.dsn, "contains invalid character"],
        ["", provider.dsn, 'subscription  name "" is too short'],
        [
          "sub2",
          `${provider.dsn} password=secret`,
          `dsn "${provider.dsn} password=********" points to existing node "provider1" with different dsn "${provider.dsn}"`,
        ],
        ["sub2", cluster.dsn({ dbname: "postgres" }), "could not fetch remote node info: "],
        ["sub2", "host=127.0.0.1 port=1 dbname=x", "could not connect to the postgresql server: "],
      ];
      for (const origins of ["{foo}", "{all,foo}", "{NULL}"]) {
        const error = await errorOf(
          sub`SELECT spock.sub_create('sub2', ${provider.dsn}, forward_origins := ${origins})`,
        );
        assert.equal(error.code, "22023");
        assert.match(error.message, /^Only "all" is allowed in forward origin name list, not /);
      }
      for (const [name, dsn, message] of cases) {
        const error = await errorOf(sub`SELECT spock.sub_create(${name}, ${dsn})`);
        assert.ok(error.message.includes(message), `${name}: ${error.message}`);
        assert.doesNotMatch(error.message, /secret/);
      }
      const disabled = await errorOf(sub`SELECT spock.sub_create('sub2', ${provider.dsn},
      synchronize_data := true, enabled := false)`);
      assert.equal(
        disabled.message,
        'subscription "sub2" in disabled state is not allowed to synchronize structure or data',
      );
      assert.deepEqual(await catalogCounts(sub), before);
      const [t1] = await sub`SELECT to_regclass('public.t1') IS NOT NULL AS present`;
      assert.equal(t1.present, true);
      assert.ok(subscriber.notices.some((n) =>
        n.includes(
          'existing subscription "subscription1" to node "provider1" already subscribes to replication set "default"',
        )
      ));
    },
  );

  await t.step("a disabled subscription is ready at once and has its origin (ZODAN)", async () => {
    await sub`SELECT spock.sub_create('zodan', ${provider.dsn}, '{default}', enabled := false,
      forward_origins := '{all}', apply_delay := '1 minute', skip_schema := '{s1}')`;
    const [row] = await sub`SELECT s.sub_enabled, s.sub_forward_origins, s.sub_apply_delay::text,
      s.sub_skip_schema, y.sync_kind, y.sync_status,
      EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = s.sub_slot_name) AS has_origin
      FROM spock.subscription s JOIN spock.local_sync_status y ON y.sync_subid = s.sub_id
      WHERE s.sub_name = 'zodan'`;
    assert.deepEqual({ ...row }, {
      sub_enabled: false,
      sub_forward_origins: ["all"],
      sub_apply_delay: "00:01:00",
      sub_skip_schema: ["s1"],
      sync_kind: "i",
      sync_status: "r",
      has_origin: true,
    });
    const [status] = await sub`SELECT status FROM spock.sub_show_status('zodan')`;
    assert.equal(status.status, "disabled");
  });

  await t.step("spock._sub_create_local() is the CLI's path and rejects NULLs", async () => {
    const [row] = await sub`SELECT spock._sub_create_local('local1', ${provider.dsn},
      ${providerId}, 'provider1', '{ddl_sql}', true, true, '{}', '0', false, true, '{}') AS id`;
    assert.ok(Number(row.id) > 0);
    const [sync] = await sub`SELECT sync_kind, sync_status FROM spock.local_sync_status
      WHERE sync_subid = ${row.id}`;
    assert.deepEqual({ ...sync }, { sync_kind: "f", sync_status: "i" });
    const error = await errorOf(sub`SELECT spock._sub_create_local('local2', NULL,
      ${providerId}, 'provider1', '{}', false, false, '{}', '0', false, true, '{}')`);
    assert.equal(error.code, "22004");
  });

  await t.step("sub_show_status() reports a worker only while its heartbeat is fresh", async () => {
    const [s] = await sub`SELECT sub_id FROM spock.subscription WHERE sub_name = 'subscription1'`;
    const statusOf = async () =>
      (await sub`SELECT status FROM spock.sub_show_status('subscription1')`)[0].status;
    await sub`INSERT INTO spock._apply_worker (sub_id, daemon, pid, state)
      VALUES (${s.sub_id}, 'test', 1, 'running')`;
    assert.equal(await statusOf(), "initializing");
    await sub`UPDATE spock.local_sync_status SET sync_status = 'r'
      WHERE sync_subid = ${s.sub_id} AND sync_relname IS NULL`;
    assert.equal(await statusOf(), "replicating");
    await sub`UPDATE spock._apply_worker SET heartbeat_at = now() - interval '1 minute'`;
    assert.equal(await statusOf(), "down");
    await sub`DELETE FROM spock._apply_worker`;
    const all = await sub`SELECT subscription_name FROM spock.sub_show_status()`;
    assert.deepEqual(all.map((r) => r.subscription_name), ["local1", "subscription1", "zodan"]);
    const error = await errorOf(sub`SELECT * FROM spock.sub_show_status('nope')`);
    assert.equal(error.message, "subscriber nope not found");
  });

  await t.step(
    "sub_enable() and sub_disable() flip sub_enabled; immediate refuses a block",
    async () => {
      const enabled = async () =>
        (await sub`SELECT sub_enabled FROM spock.subscription WHERE sub_name = 'zodan'`)[0]
          .sub_enabled;
      await sub`SELECT spock.sub_enable('zodan', immediate := true)`;
      assert.equal(await enabled(), true);
      await sub`SELECT spock.sub_disable('zodan')`;
      assert.equal(await enabled(), false);
      const error = await errorOf(sub.begin(async (tx) => {
        await tx`SELECT pg_current_xact_id()`;
        await tx`SELECT spock.sub_disable('zodan', true)`;
      }));
      assert.equal(
        error.message,
        "alter_subscription_disable with immediate = true cannot be run inside a transaction block",
      );
      const missing = await errorOf(sub`SELECT spock.sub_enable('nope')`);
      assert.equal(missing.message, "subscriber nope not found");
    },
  );

  await t.step("sub_alter_interface(), sets, skip LSN and options alter the row", async () => {
    await sub`INSERT INTO spock.node_interface (if_id, if_name, if_nodeid, if_dsn)
      VALUES (spock._pair_id(${providerId}, 'alt'), 'alt', ${providerId}, ${provider.dsn})`;
    const [r] = await sub`SELECT spock.sub_alter_interface('zodan', 'alt') AS a,
      spock.sub_alter_interface('zodan', 'alt') AS b`;
    assert.deepEqual([r.a, r.b], [true, false]);
    const bad = await errorOf(sub`SELECT spock.sub_alter_interface('zodan', 'nope')`);
    assert.equal(bad.message, `node interface "nope" not found for nod ${providerId}`);
    const [sets] = await sub`SELECT spock.sub_add_repset('zodan', 'extra') AS a,
      spock.sub_add_repset('zodan', 'extra') AS b, spock.sub_remove_repset('zodan', 'default') AS c,
      spock.sub_remove_repset('zodan', 'default') AS d`;
    assert.deepEqual({ ...sets }, { a: true, b: false, c: true, d: false });
    await sub`SELECT spock.sub_remove_repset('zodan', 'extra')`;
    await sub`SELECT spock.sub_alter_skiplsn('zodan', '0/ABCDEF')`;
    const [options] = await sub`SELECT spock.sub_alter_options('zodan',
      '{"apply_delay": "5 minutes", "forward_origins": [], "skip_schema": ["a", "b"]}') AS a,
      spock.sub_alter_options('zodan', '{}') AS b`;
    assert.deepEqual([options.a, options.b], [true, false]);
    const [row] = await sub`SELECT sub_replication_sets, sub_skip_lsn, sub_apply_delay::text,
      sub_forward_origins, sub_skip_schema FROM spock.subscription WHERE sub_name = 'zodan'`;
    assert.deepEqual({ ...row }, {
      sub_replication_sets: null,
      sub_skip_lsn: "0/ABCDEF",
      sub_apply_delay: "00:05:00",
      sub_forward_origins: null,
      sub_skip_schema: ["a", "b"],
    });
    for (
      const [options, message] of [
        ["[]", "subscription options must be a JSON object"],
        ['{"x": 1}', 'unrecognized subscription option "x"'],
        ['{"forward_origins": ["n1"]}', 'invalid value "n1" for option "forward_origins"'],
        ['{"forward_origins": "all"}', 'option "forward_origins" must be a JSON array of strings'],
        ['{"skip_schema": [1]}', 'option "skip_schema" must contain only strings'],
        ['{"apply_delay": 5}', 'option "apply_delay" must be a string'],
      ]
    ) {
      const error = await errorOf(
        sub`SELECT spock.sub_alter_options('zodan', ${options}::text::jsonb)`,
      );
      assert.equal(error.message, message);
    }
  });

  await t.step("sub_alter_sync() lists the provider's tables and adds sync rows", async () => {
    await provider.sql`INSERT INTO spock.replication_set_table (set_id, set_reloid)
      VALUES (spock._pair_id(${providerId}, 'default'), 'public.t1'::regclass)`;
    await sub`INSERT INTO public.t1 VALUES (1, 'a')`;
    await sub`INSERT INTO spock.local_sync_status VALUES ('d', spock._sub_id('subscription1'),
      'public', 'gone', 'r', '0/0')`;
    await sub`SELECT spock.sub_alter_sync('subscription1', truncate := true)`;
    const rows = await sub`SELECT sync_kind, sync_nspname, sync_relname, sync_status
      FROM spock.local_sync_status WHERE sync_subid = spock._sub_id('subscription1')
        AND sync_relname IS NOT NULL`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { sync_kind: "d", sync_nspname: "public", sync_relname: "t1", sync_status: "i" },
    ]);
    const [count] = await sub`SELECT count(*)::int AS n FROM public.t1`;
    assert.equal(count.n, 0);
  });

  await t.step("sub_resync_table() and sub_show_table() use Spock's states", async () => {
    const error = await errorOf(sub`SELECT spock.sub_resync_table('subscription1', 'public.t1')`);
    assert.equal(error.message, "table public.t1 is already being synchronized");
    const names: Record<string, string> = {
      i: "sync_init",
      s: "sync_structure",
      d: "sync_data",
      c: "sync_constraints",
      w: "sync_waiting",
      u: "catchup",
      y: "synchronized",
      r: "replicating",
      x: "unknown",
    };
    for (const [letter, name] of Object.entries(names)) {
      await sub`UPDATE spock.local_sync_status SET sync_status = ${letter} WHERE sync_relname = 't1'`;
      const [row] = await sub`SELECT * FROM spock.sub_show_table('subscription1', 'public.t1')`;
      assert.deepEqual({ ...row }, { nspname: "public", relname: "t1", status: name });
    }
    await sub`UPDATE spock.local_sync_status SET sync_status = 'r' WHERE sync_relname = 't1'`;
    await sub`INSERT INTO public.t1 VALUES (2, 'b')`;
    await sub`SELECT spock.sub_resync_table('subscription1', 'public.t1', truncate := false)`;
    const [kept] = await sub`SELECT count(*)::int AS n FROM public.t1`;
    assert.equal(kept.n, 1);
    await sub`UPDATE spock.local_sync_status SET sync_status = 'y' WHERE sync_relname = 't1'`;
    await sub`SELECT spock.sub_resync_table('subscription1', 'public.t1')`;
    const [emptied] = await sub`SELECT count(*)::int AS n FROM public.t1`;
    assert.equal(emptied.n, 0);
    const [unknown] = await sub`SELECT status FROM spock.sub_show_table('zodan', 'public.t1')`;
    assert.equal(unknown.status, "unknown");
  });

  await t.step("sub_wait_for_sync() does not wait for what cannot come", async () => {
    const started = performance.now();
    const none = await errorOf(sub`SELECT spock.sub_wait_for_sync('subscription1')`);
    assert.equal(none.message, 'no spock daemon is serving subscription "subscription1"');
    assert.match(none.hint!, /^Start one for this node \(spock run --dsn/);
    assert.ok(performance.now() - started >= 10_000, "after 10 s without a daemon");
    await sub`INSERT INTO spock._sub_error (sub_id, error_message, attempt)
      VALUES (spock._sub_id('subscription1'), 'Cannot apply: replication origin is missing', 1)`;
    const stopped = await errorOf(sub`SELECT spock.sub_wait_for_sync('subscription1')`);
    assert.equal(
      stopped.message,
      'subscription "subscription1" stopped on an error: Cannot apply: replication origin is missing',
    );
    await sub`UPDATE spock.subscription SET sub_enabled = false WHERE sub_name = 'subscription1'`;
    const disabled = await errorOf(sub`SELECT spock.table_wait_for_sync('subscription1', 't1')`);
    assert.equal(disabled.message, 'subscription "subscription1" is disabled');
    assert.equal(disabled.detail, "Last error: Cannot apply: replication origin is missing");
    await sub`UPDATE spock.subscription SET sub_enabled = true WHERE sub_name = 'subscription1'`;
    await sub`DELETE FROM spock._sub_error`;
  });

  await t.step("sub_wait_for_sync() and table_wait_for_sync() wait for ready rows", async () => {
    await sub`SET statement_timeout = '500ms'`;
    const timedOut = await errorOf(sub`SELECT spock.sub_wait_for_sync('subscription1')`);
    assert.equal(timedOut.code, "57014");
    await sub`SET statement_timeout = '20s'`;
    await sub`UPDATE spock.local_sync_status SET sync_status = 'r'
      WHERE sync_subid = spock._sub_id('subscription1')`;
    await sub`SELECT spock.sub_wait_for_sync('subscription1')`;
    await sub`SELECT spock.table_wait_for_sync('subscription1', 'public.t1')`;
    const missing = await errorOf(sub`SELECT spock.table_wait_for_sync('zodan', 'public.t1')`);
    assert.match(missing.message, /^subscription \d+ table public\.t1 status not found$/);
    const isolation = await errorOf(
      sub.begin(
        "isolation level repeatable read",
        (tx) => tx`SELECT spock.sub_wait_for_sync('subscription1')`,
      ),
    );
    assert.equal(
      isolation.message,
      "cannot wait for sync in REPEATABLE READ or SERIALIZABLE isolation",
    );
    const unknown = await errorOf(sub`SELECT spock.sub_wait_for_sync('nope')`);
    assert.equal(unknown.message, "subscriber nope not found");
  });

  await t.step(
    "sub_drop() drops the provider's slot, the origin and an unused provider node",
    async () => {
      const [s] = await sub`SELECT sub_slot_name FROM spock.subscription WHERE sub_name = 'zodan'`;
      await provider.sql`SELECT pg_create_logical_replication_slot(${s.sub_slot_name}, 'pgoutput')`;
      const [dropped] = await sub`SELECT spock.sub_drop('zodan') AS r`;
      assert.equal(Number(dropped.r), 1);
      const slots = await provider
        .sql`SELECT 1 FROM pg_replication_slots WHERE slot_name = ${s.sub_slot_name}`;
      assert.equal(slots.length, 0);
      const [origin] =
        await sub`SELECT count(*)::int AS n FROM pg_replication_origin WHERE roname = ${s.sub_slot_name}`;
      assert.equal(origin.n, 0);
      const [absent] = await sub`SELECT spock.sub_drop('zodan', true) AS r`;
      assert.equal(Number(absent.r), 0);
      const error = await errorOf(sub`SELECT spock.sub_drop('zodan')`);
      assert.equal(error.message, "subscriber zodan not found");
      // An unreachable provider leaves a WARNING, not an error.
      await sub`UPDATE spock.node_interface SET if_dsn = 'host=127.0.0.1 port=1 dbname=x'
      WHERE if_name = 'provider1'`;
      await sub`SELECT spock.sub_drop('local1')`;
      assert.ok(
        subscriber.notices.some((n) =>
          n.startsWith("WARNING: could not drop slot") && n.includes("drop it manually")
        ),
      );
      await sub`SELECT spock.sub_drop('subscription1')`;
      const nodes = await sub`SELECT node_name FROM spock.node ORDER BY 1`;
      assert.deepEqual(
        nodes.map((n) => n.node_name),
        ["subscriber1"],
      );
      const [left] = await sub`SELECT count(*)::int AS n FROM spock.local_sync_status`;
      assert.equal(left.n, 0);
      const [progress] = await sub`SELECT count(*)::int AS n FROM spock.progress`;
      assert.equal(progress.n, 1, "Spock 5.0 keeps the progress row");
    },
  );

  await t.step("without dblink, calls that reach the provider point to the CLI", async () => {
    await sub`SELECT spock._sub_create_local('nolink', ${provider.dsn}, ${providerId}, 'provider1',
      '{}', false, false, '{}', '0', false, true, '{}')`;
    await sub`DROP EXTENSION dblink`;
    const create = await errorOf(sub`SELECT spock.sub_create('s9', ${provider.dsn})`);
    assert.equal(create.code, "0A000");
    assert.match(create.hint ?? "", /spock sub create/);
    const sync = await errorOf(sub`SELECT spock.sub_alter_sync('nolink')`);
    assert.match(sync.hint ?? "", /spock sub alter-sync/);
    await sub`SELECT spock.sub_drop('nolink')`;
    assert.ok(
      subscriber.notices.some((n) => n.includes('could not drop slot "spk_subs_provider1_nolink"')),
    );
  });

  await t.step("a database that is not a node is told so", async () => {
    const other = await createDatabase(cluster, "plain");
    const error = await errorOf(other.sql`SELECT spock.sub_create('s', ${provider.dsn})`);
    assert.equal(error.message, "current database is not configured as spock node");
    const status = await errorOf(other.sql`SELECT * FROM spock.sub_show_status()`);
    assert.equal(status.message, "current database is not configured as spock node");
  });

  await t.step({
    name: "the seed README's calls run verbatim against two installed nodes",
    fn: async () => {
      const p = await createDatabase(cluster, "seed_p");
      const s = await createDatabase(cluster, "seed_s");
      for (const db of [p, s]) await db.sql`CREATE TABLE public.items (id int PRIMARY KEY)`;
      await p.sql`SELECT spock.node_create(
        node_name := 'provider1',
        dsn := ${p.dsn}
      )`;
      await p.sql`SELECT spock.repset_add_all_tables('default', ARRAY['public'])`;
      await s.sql`SELECT spock.node_create(
        node_name := 'subscriber1',
        dsn := ${s.dsn}
      )`;
      await s.sql`SELECT spock.sub_create(
        subscription_name := 'subscription1',
        provider_dsn := ${p.dsn}
      )`;
      // No engine runs yet: the wait cannot finish until the sync rows are ready.
      await s.sql`SET statement_timeout = '300ms'`;
      assert.equal(
        (await errorOf(s.sql`SELECT spock.sub_wait_for_sync('subscription1')`)).code,
        "57014",
      );
      await s.sql`SET statement_timeout = '20s'`;
      await s.sql`UPDATE spock.local_sync_status SET sync_status = 'r'`;
      await s.sql`SELECT spock.sub_wait_for_sync('subscription1')`;
      const [row] = await s.sql`SELECT sub_slot_name, sub_replication_sets, sub_enabled,
        (SELECT node_name FROM spock.node WHERE node_id = sub_origin) AS origin
        FROM spock.subscription`;
      assert.deepEqual({ ...row }, {
        sub_slot_name: "spk_seed_s_provider1_subscription1",
        sub_replication_sets: ["default", "default_insert_only", "ddl_sql"],
        sub_enabled: true,
        origin: "provider1",
      });
      const tables = await p
        .sql`SELECT relname, set_name FROM spock.tables WHERE relname = 'items'`;
      assert.deepEqual(tables.map((r) => ({ ...r })), [{ relname: "items", set_name: "default" }]);
      await p.sql.end();
      await s.sql.end();
    },
  });

  await sub.end();
});
