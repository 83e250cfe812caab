/**
 * The conflict SQL API (mod/catalog/sql/api/18_conflicts.sql, and sub_alter_options'
 * conflict keys) against a real server: one node database whose subscriptions
 * are recorded locally through spock._sub_create_local, so no provider runs;
 * resolutions and channel counters are written by hand, as the engine would.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { createDatabase, errorOf, makeNode } from "./_sub_fixture.ts";

pgTest("the conflict SQL API records settings and reads counters", async (t, cluster) => {
  const db = await createDatabase(cluster, "n1");
  await makeNode(db, "n1");
  const sql = db.sql;
  for (const name of ["s1", "s2"]) {
    await sql`SELECT spock._sub_create_local(${name}, ${db.dsn}, 4242, 'p1',
      '{default}', false, false, '{}', '0', false, false, '{}')`;
  }
  const payloads: string[] = [];
  await sql.listen("spock_catalog", (payload) => payloads.push(payload));

  await t.step("cleanup_resolutions() deletes rows older than the given days", async () => {
    await sql`INSERT INTO spock.resolutions (node_name, log_time, relname, conflict_type)
      SELECT 'n1', now() - make_interval(days => d), 'public.t', 'insert_exists'
      FROM unnest(ARRAY[1, 10, 40, 50]) AS d`;
    const [kept] = await sql`SELECT spock.cleanup_resolutions(0) AS n`;
    assert.equal(Number(kept.n), 0);
    const [byDefault] = await sql`SELECT spock.cleanup_resolutions() AS n`;
    assert.equal(Number(byDefault.n), 2);
    const [five] = await sql`SELECT spock.cleanup_resolutions(5) AS n`;
    assert.equal(Number(five.n), 1);
    const [left] = await sql`SELECT count(*)::int AS n FROM spock.resolutions`;
    assert.equal(left.n, 1);
    const bad = await errorOf(sql`SELECT spock.cleanup_resolutions(-1)`);
    assert.equal(bad.code, "22023");
    assert.match(bad.message, /argument "days".*-1 is negative/);
  });

  await t.step("delta_apply() registers a column and sets REPLICA IDENTITY FULL", async () => {
    await sql`CREATE TABLE public.acct (id int PRIMARY KEY, balance numeric NOT NULL,
      hits int, label text NOT NULL, c1 int NOT NULL)`;
    await sql`CREATE TABLE public.nopk (v int NOT NULL)`;
    await sql`CREATE SCHEMA "My Schema"`;
    await sql`CREATE TABLE "My Schema"."T" (id int PRIMARY KEY, n int8 NOT NULL)`;
    const [first] = await sql`SELECT spock.delta_apply('public.acct', 'balance') AS changed`;
    const [again] = await sql`SELECT spock.delta_apply('public.acct', 'balance', true) AS changed`;
    assert.deepEqual([first.changed, again.changed], [true, false]);
    const [quoted] = await sql`SELECT spock.delta_apply('"My Schema"."T"', 'n') AS changed`;
    assert.equal(quoted.changed, true);
    const identities = await sql`SELECT relname, relreplident FROM pg_class
      WHERE relname IN ('acct', 'T') ORDER BY relname`;
    assert.deepEqual(identities.map((r) => r.relreplident), ["f", "f"]);
    // a registered column on a table that is already FULL changes only the registry
    const [second] = await sql`SELECT spock.delta_apply('public.acct', 'c1') AS changed`;
    assert.equal(second.changed, true);
    const rows =
      await sql`SELECT nspname, relname, attname FROM spock._delta_apply ORDER BY 1, 2, 3`;
    assert.deepEqual(rows.map((r) => `${r.nspname}.${r.relname}.${r.attname}`), [
      "My Schema.T.n",
      "public.acct.balance",
      "public.acct.c1",
    ]);
    const [off] = await sql`SELECT spock.delta_apply('public.acct', 'c1', false) AS a,
      spock.delta_apply('public.acct', 'c1', false) AS b`;
    assert.deepEqual([off.a, off.b], [true, false]);
    await pollUntil(() =>
      payloads.some((p) => {
        const n = JSON.parse(p);
        return n.object === "delta_apply" && n.name === '"My Schema"."T"' && n.action === "enable";
      }), { what: "the delta_apply notification" });
  });

  await t.step("delta_apply() refuses columns it cannot apply deltas to", async () => {
    for (
      const [table, column, code, message] of [
        ["public.acct", "nope", "42703", /column "nope" of table acct .*does not exist/],
        [
          "public.acct",
          "label",
          "42804",
          /column "label" of table acct .*type text is not numeric/,
        ],
        ["public.acct", "hits", "55000", /column "hits" of table acct .*nullable/],
        ["public.acct", "id", "55000", /column "id" of table acct .*part of the primary key/],
        ["public.nopk", "v", "55000", /table nopk .*has no primary key/],
      ] as const
    ) {
      const error = await errorOf(sql`SELECT spock.delta_apply(${table}, ${column})`);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
    }
    const [identity] = await sql`SELECT relreplident FROM pg_class WHERE relname = 'nopk'`;
    assert.equal(identity.relreplident, "d");
  });

  await t.step("sub_alter_options() stores conflict overrides per subscription", async () => {
    const options = async (sub: string, value: unknown) => {
      const [row] = await sql`SELECT spock.sub_alter_options(${sub}, ${
        JSON.stringify(value)
      }::text::jsonb) AS changed`;
      return row.changed;
    };
    const stored = async () => {
      const rows = await sql`SELECT s.sub_name, o.options FROM spock._sub_option o
        JOIN spock.subscription s USING (sub_id) ORDER BY 1`;
      return Object.fromEntries(rows.map((r) => [r.sub_name, r.options]));
    };
    assert.equal(await options("s1", {}), false);
    assert.deepEqual(await stored(), {});
    assert.equal(
      await options("s1", { conflict_resolution: "keep_local", apply_delay: "2 seconds" }),
      true,
    );
    assert.equal(await options("s1", { update_missing: "insert" }), true);
    assert.equal(await options("s2", { update_missing: "error" }), true);
    assert.deepEqual(await stored(), {
      s1: { conflict_resolution: "keep_local", update_missing: "insert" },
      s2: { update_missing: "error" },
    });
    const [delay] = await sql`SELECT sub_apply_delay::text FROM spock.subscription
      WHERE sub_name = 's1'`;
    assert.equal(delay.sub_apply_delay, "00:00:02");
    assert.equal(await options("s1", { conflict_resolution: null }), true);
    assert.equal(await options("s2", { update_missing: null }), true);
    assert.deepEqual(await stored(), { s1: { update_missing: "insert" } });
    for (
      const [value, message] of [
        [
          { conflict_resolution: "newest" },
          'invalid value "newest" for option "conflict_resolution"',
        ],
        [{ update_missing: 1 }, 'invalid value 1 for option "update_missing"'],
        [{ forward_origins: ["all"], bogus: true }, 'unrecognized subscription option "bogus"'],
        [["conflict_resolution"], "subscription options must be a JSON object"],
        [{ apply_delay: 5 }, 'option "apply_delay" must be a string'],
      ] as const
    ) {
      const error = await errorOf(options("s1", value));
      assert.equal(error.code, "22023");
      assert.equal(error.message, message);
    }
    // a failed call changes nothing, not even the keys before the bad one
    assert.deepEqual(await stored(), { s1: { update_missing: "insert" } });
    const [row] = await sql`SELECT sub_forward_origins FROM spock.subscription
      WHERE sub_name = 's1'`;
    assert.equal(row.sub_forward_origins, null);
    const missing = await errorOf(options("nope", { update_missing: "insert" }));
    assert.equal(missing.message, "subscriber nope not found");
  });

  await t.step("channel stats views show the counters the engine wrote", async () => {
    await sql`INSERT INTO spock._channel_stats (sub_id, nspname, relname, n_tup_ins, n_tup_upd,
        n_tup_del, n_dca, confl_insert_exists, confl_update_origin_differs, confl_delete_missing)
      VALUES (spock._sub_id('s1'), 'public', 'acct', 10, 5, 1, 2, 3, 4, 1),
             (spock._sub_id('s1'), 'My Schema', 'T', 1, 0, 0, 0, 0, 0, 0),
             (spock._sub_id('s1'), 'public', 'gone', 2, 0, 0, 0, 0, 0, 0),
             (spock._sub_id('s2'), 'public', 'acct', 7, 0, 0, 0, 0, 1, 0)`;
    const tables = await sql`SELECT sub_name::text, table_name, relid = 'public.acct'::regclass
        AS acct, relid IS NULL AS gone, n_tup_ins::int, n_conflict::int, n_dca::int,
        confl_update_origin_differs::int AS uod
      FROM spock.channel_table_stats ORDER BY sub_name, table_name`;
    assert.deepEqual(tables.map((r) => ({ ...r })), [
      {
        sub_name: "s1",
        table_name: '"My Schema"."T"',
        acct: false,
        gone: false,
        n_tup_ins: 1,
        n_conflict: 0,
        n_dca: 0,
        uod: 0,
      },
      {
        sub_name: "s1",
        table_name: "public.acct",
        acct: true,
        gone: false,
        n_tup_ins: 10,
        n_conflict: 8,
        n_dca: 2,
        uod: 4,
      },
      {
        sub_name: "s1",
        table_name: "public.gone",
        acct: null,
        gone: true,
        n_tup_ins: 2,
        n_conflict: 0,
        n_dca: 0,
        uod: 0,
      },
      {
        sub_name: "s2",
        table_name: "public.acct",
        acct: true,
        gone: false,
        n_tup_ins: 7,
        n_conflict: 1,
        n_dca: 0,
        uod: 1,
      },
    ]);
    const summary = await sql`SELECT sub_name::text, n_tup_ins, n_tup_upd, n_tup_del, n_conflict,
        n_dca FROM spock.channel_summary_stats ORDER BY sub_name`;
    assert.deepEqual(summary.map((r) => Object.values(r).map(String)), [
      ["s1", "13", "5", "1", "8", "2"],
      ["s2", "7", "0", "0", "1", "0"],
    ]);
  });

  await t.step("reset_channel_stats() deletes one subscription's counters or all", async () => {
    const [one] = await sql`SELECT spock.reset_channel_stats('s2') AS n`;
    assert.equal(Number(one.n), 1);
    const missing = await errorOf(sql`SELECT spock.reset_channel_stats('nope')`);
    assert.equal(missing.message, "subscriber nope not found");
    const [all] = await sql`SELECT spock.reset_channel_stats() AS n`;
    assert.equal(Number(all.n), 3);
    const [left] = await sql`SELECT count(*)::int AS n FROM spock.channel_table_stats`;
    assert.equal(left.n, 0);
  });

  await sql.end();
});
