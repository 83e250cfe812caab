/**
 * The subcommands for the SQL functions outside the node/repset/sub groups
 * (delta-apply, sync-event, replicate-ddl), sub alter-options, the
 * `--timeout` of sub wait-for-sync and `spock --version`, against a real
 * catalog.
 */
import assert from "node:assert/strict";
import { pgTest, runSpock } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import denoJson from "../../deno.json" with { type: "json" };

pgTest(
  "delta-apply, sync-event, replicate-ddl, sub alter-options, --timeout",
  async (t, cluster) => {
    const sql = cluster.connect();
    const dsn = cluster.dsn();
    await installCatalog(sql, { programVersion: "test" });
    await sql`SELECT spock.node_create('n1', ${dsn})`;
    await sql`CREATE TABLE acct (id int PRIMARY KEY, balance numeric NOT NULL)`;
    await sql`SELECT spock._sub_create_local('s1', ${`${dsn} application_name=p1`}, 4242, 'p1',
    '{default}', false, false, '{}', '0', false, true, '{}')`;
    const spock = async (...args: string[]) => {
      const result = await runSpock([...args, "--dsn", dsn]);
      assert.equal(result.code, 0, `spock ${args.join(" ")}: ${result.stderr}`);
      return result.stdout;
    };

    await t.step("spock --version prints the version", async () => {
      const result = await runSpock(["--version"]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `spock ${denoJson.version}\n`);
    });

    await t.step("delta-apply registers and unregisters a column", async () => {
      assert.equal(
        await spock("delta-apply", "--relation", "acct", "--column-name", "balance"),
        "true\n",
      );
      const [row] =
        await sql`SELECT count(*)::int AS n FROM spock._delta_apply WHERE attname = 'balance'`;
      assert.equal(row.n, 1);
      await spock("delta-apply", "--relation", "acct", "--column-name", "balance", "--no-enable");
      const [gone] = await sql`SELECT count(*)::int AS n FROM spock._delta_apply`;
      assert.equal(gone.n, 0);
    });

    await t.step("sync-event prints the event's LSN", async () => {
      assert.match(await spock("sync-event"), /^[0-9A-F]+\/[0-9A-F]+\n$/);
    });

    await t.step("replicate-ddl runs the command here", async () => {
      assert.equal(
        await spock("replicate-ddl", "--command", "CREATE TABLE made (id int)"),
        "true\n",
      );
      const [row] = await sql`SELECT to_regclass('public.made') IS NOT NULL AS present`;
      assert.equal(row.present, true);
    });

    await t.step("sub alter-options changes the subscription", async () => {
      assert.equal(
        await spock(
          "sub",
          "alter-options",
          "--subscription-name",
          "s1",
          "--options",
          '{"apply_delay": "1 minute"}',
        ),
        "true\n",
      );
      const [row] = await sql`SELECT sub_apply_delay::text AS d FROM spock.subscription`;
      assert.equal(row.d, "00:01:00");
      const bad = await runSpock([
        "sub",
        "alter-options",
        "--dsn",
        dsn,
        "--subscription-name",
        "s1",
        "--options",
        "{nope",
      ]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /Invalid --options "\{nope"/);
    });

    await t.step("sub wait-for-sync --timeout gives up", async () => {
      const started = performance.now();
      const result = await runSpock([
        "sub",
        "wait-for-sync",
        "--dsn",
        dsn,
        "--subscription-name",
        "s1",
        "--timeout",
        "1",
      ]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, "spock sub wait-for-sync: Timed out after 1 s (--timeout)\n");
      assert.ok(performance.now() - started < 9_000, "before the server's own 10 s");
      const bad = await runSpock([
        "sub",
        "wait-for-sync",
        "--dsn",
        dsn,
        "--subscription-name",
        "s1",
        "--timeout",
        "soon",
      ]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /Invalid --timeout "soon": expected a number of seconds/);
    });
    await sql.end();
  },
);
