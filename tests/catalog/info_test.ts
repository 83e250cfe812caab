/**
 * The info and misc SQL API (mod/catalog/sql/api/04_info.sql, 05_info_ddl.sql) against
 * real servers: versions, slot names checked against Spock's own regression
 * output, commit-timestamp origins, sync events, slot waits, replicate_ddl's
 * queue rows and statement checks, and delta_apply.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { CATALOG_VERSION } from "../../mod/catalog/mod.ts";
import { catalogCounts, createDatabase, errorOf, makeNode } from "./_sub_fixture.ts";

pgTest("spock info and misc functions behave as Spock's", async (t, cluster) => {
  const node = await createDatabase(cluster, "n1");
  const sql = node.sql;
  await sql`SET statement_timeout = '20s'`; // every wait below ends, one way or another
  // The harness runs with synchronous_commit off; decoding only sees flushed WAL.
  await sql`SET synchronous_commit = on`;

  await t.step("version functions report the program, API level and schema", async () => {
    const [row] = await sql`SELECT spock.spock_version() AS v, spock.spock_version_num() AS n,
      spock.catalog_version() AS c, spock.spock_max_proto_version() AS max,
      spock.spock_min_proto_version() AS min, spock.get_country() AS country`;
    assert.deepEqual({ ...row }, {
      v: "test",
      n: 50000,
      c: CATALOG_VERSION,
      max: 4,
      min: 3,
      country: "??",
    });
    await sql`SET spock.country = 'de'`;
    const [country] = await sql`SELECT spock.get_country() AS c`;
    assert.equal(country.c, "de");
    await sql`RESET spock.country`;
  });

  await t.step("spock_gen_slot_name() shortens and cleans names as Spock does", async () => {
    const cases: [string, string, string, string][] = [
      // Spock's regression output (tests/regress/expected/parallel.out) and docs.
      [
        "postgres",
        "test_provider",
        "test_subscription",
        "spk_postgres_test_provider_test_sube55bf37",
      ],
      [
        "postgres",
        "test_provider",
        "test_subscription_parallel",
        "spk_postgres_test_provider_test_subf1783d2",
      ],
      ["postgres", "n1", "sub_n2n1", "spk_postgres_n1_sub_n2n1"],
      ["Db-1", "Node.A", "s", "spk__b_1__ode___s"],
      ["exactly16chars__", "n", "s", "spk_exactly16chars___n_s"],
    ];
    for (const [db, provider, sub, expected] of cases) {
      const [row] = await sql`SELECT spock.spock_gen_slot_name(${db}, ${provider}, ${sub}) AS s`;
      assert.equal(row.s, expected);
    }
    // A long part is 8 bytes plus 7 hex digits of hash_any(); bytes of a
    // multibyte letter each become "_".
    const [long] =
      await sql`SELECT spock.spock_gen_slot_name('database_with_a_long_name', 'é', 'x') AS s,
      substr(lpad(to_hex(hashtext('database_with_a_long_name')), 8, '0'), 1, 7) AS h`;
    assert.equal(long.s, `spk_database${long.h}____x`);
    assert.ok(long.s.length <= 63);
    const [nul] = await sql`SELECT spock.spock_gen_slot_name(NULL, 'a', 'b') AS s`;
    assert.equal(nul.s, null);
  });

  const nodeId = await makeNode(node, "n1");

  await t.step("xact_commit_timestamp_origin() maps origins to spock node ids", async () => {
    await sql`CREATE TABLE public.t (id int PRIMARY KEY)`;
    await sql`INSERT INTO public.t VALUES (1)`;
    const [local] = await sql`SELECT o.roident, o."timestamp" IS NOT NULL AS has_ts
      FROM public.t, spock.xact_commit_timestamp_origin(t.xmin) o WHERE t.id = 1`;
    assert.deepEqual({ ...local, roident: Number(local.roident) }, { roident: 0, has_ts: true });
    // Rows applied under an origin named spk_node_<id> carry that node id; a
    // subscription's slot-named origin (or a table-sync origin) its provider.
    await sql`INSERT INTO spock.node (node_id, node_name) VALUES (4242, 'remote')`;
    await sql`INSERT INTO spock.node_interface VALUES (7, 'remote', 4242, 'dbname=x')`;
    await sql`SELECT spock._sub_create_local('from_remote', 'dbname=x', 4242, 'remote', '{}',
      false, false, '{}', '0', false, false, '{}')`;
    const [slot] = await sql`SELECT sub_slot_name FROM spock.subscription`;
    const origins = [["spk_node_77", 77], [slot.sub_slot_name, 4242], [
      `${slot.sub_slot_name}_0123abcd`,
      4242,
    ]] as const;
    let id = 10;
    for (const [origin, expected] of origins) {
      id += 1;
      await sql.begin(async (tx) => {
        await tx`SELECT pg_replication_origin_create(${origin})
          WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = ${origin})`;
        await tx`SELECT pg_replication_origin_session_setup(${origin})`;
        await tx`SELECT pg_replication_origin_xact_setup('0/1', '2020-01-01 00:00:00+00')`;
        await tx`INSERT INTO public.t VALUES (${id})`;
      });
      await sql`SELECT pg_replication_origin_session_reset()`;
      const [row] = await sql`SELECT o.roident, o."timestamp"
        FROM public.t, spock.xact_commit_timestamp_origin(t.xmin) o WHERE t.id = ${id}`;
      assert.equal(Number(row.roident), expected, origin);
      assert.equal(row.timestamp.toISOString(), "2020-01-01T00:00:00.000Z");
    }
    const [unknown] = await sql`SELECT * FROM spock.xact_commit_timestamp_origin('3'::xid)`;
    assert.deepEqual({ ...unknown }, { timestamp: null, roident: null });
  });

  await t.step("sync_event() emits Spock's transactional message and returns its LSN", async () => {
    await sql`SELECT pg_create_logical_replication_slot('watch', 'test_decoding')`;
    const [event] = await sql`SELECT spock.sync_event() AS lsn`;
    const changes = await sql`SELECT lsn, data FROM pg_logical_slot_get_changes('watch', NULL, NULL)
      WHERE data LIKE 'message:%'`;
    assert.equal(changes.length, 1);
    assert.match(changes[0].data, /^message: transactional: 1 prefix: Spock, sz: 72 content:/);
    const [cmp] = await sql`SELECT ${event.lsn}::pg_lsn >= ${changes[0].lsn}::pg_lsn AS after`;
    assert.equal(cmp.after, true);
    await sql`SELECT pg_drop_replication_slot('watch')`;
  });

  await t.step("wait_for_sync_event() polls spock.progress with a timeout in seconds", async () => {
    await sql`INSERT INTO spock.progress VALUES (${nodeId}, 4242, now(), '0/100', '0/100', now(), true)
      ON CONFLICT (node_id, remote_node_id) DO UPDATE SET remote_lsn = '0/100'`;
    const [reached] = await sql`CALL spock.wait_for_sync_event(NULL, 'remote', '0/100'::pg_lsn, 5)`;
    assert.equal(reached.result, true);
    const [byId] = await sql`CALL spock.wait_for_sync_event(NULL, 4242::oid, '0/100'::pg_lsn)`;
    assert.equal(byId.result, true);
    const started = performance.now();
    const [late] = await sql`CALL spock.wait_for_sync_event(NULL, 'remote', '1/0'::pg_lsn, 1)`;
    assert.equal(late.result, false);
    assert.ok(performance.now() - started >= 700);
    const error = await errorOf(sql`CALL spock.wait_for_sync_event(NULL, 'nope', '0/1'::pg_lsn)`);
    assert.equal(error.message, "Origin node 'nope' not found");
  });

  await t.step("wait_slot_confirm_lsn() waits for the slots' confirmed_flush_lsn", async () => {
    const [slot] =
      await sql`SELECT lsn FROM pg_create_logical_replication_slot('waiter', 'pgoutput')`;
    await sql`SELECT spock.wait_slot_confirm_lsn(NULL, ${slot.lsn})`;
    await sql`SELECT spock.wait_slot_confirm_lsn('waiter', '0/0')`;
    await sql`SELECT pg_logical_emit_message(false, 'test', 'WAL past the slot')`;
    await sql`SET statement_timeout = '500ms'`;
    const error = await errorOf(sql`SELECT spock.wait_slot_confirm_lsn('waiter', NULL)`);
    assert.equal(error.code, "57014");
    await sql`SET statement_timeout = '20s'`;
    await sql`SELECT pg_drop_replication_slot('waiter')`;
  });

  await t.step("replicate_ddl() queues a 'Q' message and runs the DDL here", async () => {
    await sql`SELECT spock.replicate_ddl('CREATE TABLE public.d1 (id int PRIMARY KEY); ALTER TABLE public.d1 ADD COLUMN v text')`;
    const [queued] = await sql`SELECT role, replication_sets, message_type, message
      FROM spock.queue ORDER BY queued_at DESC LIMIT 1`;
    assert.deepEqual({ ...queued }, {
      role: "postgres",
      replication_sets: ["ddl_sql"],
      message_type: "Q",
      message:
        'SET search_path TO "$user",public; CREATE TABLE public.d1 (id int PRIMARY KEY); ALTER TABLE public.d1 ADD COLUMN v text',
    });
    const [columns] = await sql`SELECT count(*)::int AS n FROM information_schema.columns
      WHERE table_name = 'd1'`;
    assert.equal(columns.n, 2);
    // Quotes, dollar quotes and comments hide semicolons and keywords.
    await sql`SELECT spock.replicate_ddl(${`CREATE TABLE d2 (a text DEFAULT '; DELETE FROM t; --');
      -- DELETE FROM t;
      /* nested /* ; */ DELETE FROM t; */
      CREATE FUNCTION d3() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;`},
      '{default}', 'public, "Odd Schema"')`;
    const [message] = await sql`SELECT message #>> '{}' AS m, replication_sets
      FROM spock.queue ORDER BY queued_at DESC LIMIT 1`;
    assert.ok(message.m.startsWith('SET search_path TO public,"Odd Schema"; CREATE TABLE d2'));
    assert.deepEqual(message.replication_sets, ["default"]);
    const [kept] = await sql`SELECT count(*)::int AS n FROM public.t`;
    assert.equal(kept.n, 4);
    const many =
      await sql`SELECT * FROM spock.replicate_ddl(ARRAY['CREATE TABLE d4 ()', 'CREATE TABLE d5 ()'])`;
    assert.equal(many.length, 2);
    const [empty] =
      await sql`SELECT spock.replicate_ddl('CREATE TABLE public.d6 ()', '{ddl_sql}', '')`;
    assert.equal(empty.replicate_ddl, true);
    const [emptyPath] =
      await sql`SELECT message #>> '{}' AS m FROM spock.queue ORDER BY queued_at DESC LIMIT 1`;
    assert.equal(emptyPath.m, "SET search_path TO ''; CREATE TABLE public.d6 ()");
  });

  await t.step(
    "spock._split_sql() and _command_tag() split and classify like the parser",
    async () => {
      const text = `create table a (x text default 'a;b'); -- c;
      insert into t values (E'\\';', $$;$$, $x$ $$ ; $x$, "q;""");
      /* a /* nested ; */ comment */ select 1 into y; with d as (delete from t) select 1;;
      grant select on a to public; vacuum`;
      const rows = await sql`SELECT s.statement, c.tag, c.is_ddl
      FROM spock._split_sql(${text}) s, spock._command_tag(s.skeleton) c`;
      assert.deepEqual(rows.map((r) => [r.tag, r.is_ddl]), [
        ["CREATE", true],
        ["INSERT", false],
        ["SELECT INTO", true],
        ["SELECT", false],
        ["GRANT", true],
        ["VACUUM", false],
      ]);
      assert.equal(rows[1].statement.split("\n").at(-1).trim().slice(0, 6), "insert");
    },
  );

  await t.step("replicate_ddl() runs as the given role", async () => {
    await sql`CREATE ROLE ddl_owner`;
    await sql`GRANT CREATE ON SCHEMA public TO ddl_owner`;
    await sql`SELECT spock.replicate_ddl('CREATE TABLE public.owned ()', '{ddl_sql}', 'public', 'ddl_owner')`;
    const [owner] =
      await sql`SELECT tableowner, current_user AS me FROM pg_tables WHERE tablename = 'owned'`;
    assert.deepEqual({ ...owner }, { tableowner: "ddl_owner", me: "postgres" });
    const [queued] = await sql`SELECT role FROM spock.queue ORDER BY queued_at DESC LIMIT 1`;
    assert.equal(queued.role, "ddl_owner");
  });

  await t.step("replicate_ddl() refuses non-DDL and bad arguments, changing nothing", async () => {
    const before = await catalogCounts(sql);
    const refused: [string, string][] = [
      ["CREATE TABLE x1 (); DELETE FROM t", "DELETE"],
      ["INSERT INTO t VALUES (99)", "INSERT"],
      ["WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT"],
      ["TRUNCATE t", "TRUNCATE TABLE"],
      ["UPDATE t SET id = id", "UPDATE"],
      ["COMMIT", "COMMIT"],
      ["SET ROLE ddl_owner", "SET"],
      ["VACUUM t", "VACUUM"],
    ];
    for (const [command, tag] of refused) {
      const error = await errorOf(sql`SELECT spock.replicate_ddl(${command})`);
      assert.equal(error.message, `spock.replicate_ddl() cannot execute ${tag} statement`, command);
    }
    const bad: [string[], string][] = [
      [["CREATE TABLE x2 ()", "{nope}", "public", "postgres"], "replication set nope not found"],
      [
        ["CREATE TABLE x2 ()", "{ddl_sql}", '"public', "postgres"],
        "provided search path is not valid",
      ],
      [["CREATE TABLE x2 ()", "{ddl_sql}", "public", "nobody"], 'role "nobody" does not exist'],
    ];
    for (const [[command, sets, path, role], message] of bad) {
      const error = await errorOf(
        sql`SELECT spock.replicate_ddl(${command}, ${sets}::text::text[], ${path}, ${role})`,
      );
      assert.equal(error.message, message);
    }
    assert.deepEqual(await catalogCounts(sql), before);
    const [tables] =
      await sql`SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('x1', 'x2')`;
    assert.equal(tables.n, 0);
    const [rows] = await sql`SELECT count(*)::int AS n FROM public.t`;
    assert.equal(rows.n, 4);
  });

  await t.step("delta_apply() adds the remote delta to the local value", async () => {
    const [row] = await sql`SELECT spock.delta_apply(1, 5, 10) AS i4,
      spock.delta_apply(1::int8, 5::int8, 10::int8) AS i8, spock.delta_apply(1.5, 2.5, 10.0) AS n,
      spock.delta_apply(1::float8, 2::float8, 3::float8) AS f, spock.delta_apply(1::int2, NULL, 3::int2) AS z`;
    assert.deepEqual({ ...row }, { i4: 14, i8: "14", n: "11.0", f: 4, z: null });
  });

  await t.step(
    "get_lsn_from_commit_ts() finds the end of the last commit at or before a time",
    async () => {
      await sql`CREATE TABLE lsn_ts (k int PRIMARY KEY)`;
      await sql`CREATE PUBLICATION lsn_ts_pub FOR TABLE lsn_ts`;
      await sql`SELECT pg_create_logical_replication_slot('lsn_ts_slot', 'pgoutput')`;
      await sql`INSERT INTO lsn_ts VALUES (1)`;
      await sql`INSERT INTO lsn_ts VALUES (2)`;
      const [{ ts }] = await sql`SELECT clock_timestamp()::text AS ts`;
      await sql`INSERT INTO lsn_ts VALUES (3)`;
      const [{ lsn }] =
        await sql`SELECT spock.get_lsn_from_commit_ts('lsn_ts_slot', ${ts}::text::timestamptz)::text AS lsn`;
      await sql`SELECT pg_replication_slot_advance('lsn_ts_slot', ${lsn}::pg_lsn)`;
      // From there on the slot sends only the insert made after ts.
      const [{ inserts }] = await sql`SELECT count(*)::int AS inserts
      FROM pg_logical_slot_peek_binary_changes('lsn_ts_slot', NULL, NULL,
        'proto_version', '1', 'publication_names', 'lsn_ts_pub')
      WHERE get_byte(data, 0) = 73`;
      assert.equal(inserts, 1);
      const missing = await errorOf(
        sql`SELECT spock.get_lsn_from_commit_ts('no_such_slot', now())`,
      );
      assert.equal(missing.message, 'logical replication slot "no_such_slot" does not exist');
      await sql`SELECT pg_drop_replication_slot('lsn_ts_slot')`;
      await sql`DROP PUBLICATION lsn_ts_pub`;
      await sql`DROP TABLE lsn_ts`;
    },
  );

  await t.step("functions that need a node say so on a database that is not one", async () => {
    const plain = await createDatabase(cluster, "plain");
    for (
      const call of [
        plain.sql`SELECT spock.sync_event()`,
        plain.sql`SELECT spock.replicate_ddl('CREATE TABLE x ()')`,
        plain.sql`CALL spock.wait_for_sync_event(NULL, 1::oid, '0/1'::pg_lsn, 1)`,
      ]
    ) {
      const error = await errorOf(call);
      assert.equal(error.message, "current database is not configured as spock node");
    }
  });
});
