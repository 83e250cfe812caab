/**
 * Every node, repset and sub subcommand against the real SQL API: two nodes
 * in two databases of one cluster, targeted by --dsn and by --node through a
 * config file; table and --json output; server errors exit 1 with Spock's
 * message and change nothing.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";

pgTest("spock node, repset and sub subcommands", async (t, cluster) => {
  const admin = cluster.connect();
  await admin`CREATE DATABASE db1`;
  await admin`CREATE DATABASE db2`;
  const dsn1 = cluster.dsn({ dbname: "db1" });
  const dsn2 = cluster.dsn({ dbname: "db2" });
  const dir = await Deno.makeTempDir();
  const config = `${dir}/spock.yaml`;
  await Deno.writeTextFile(
    config,
    `nodes:\n  - name: n1\n    dsn: "${dsn1}"\n  - name: n2\n    dsn: "${dsn2}"\n`,
  );
  /** Runs spock with the config; fails the step unless the exit code is `code`. */
  const spock = async (args: string[], code = 0) => {
    const result = await runSpock([...args, "--config", config]);
    assert.equal(result.code, code, `spock ${args.join(" ")}:\n${result.stderr}`);
    return result;
  };
  const json = async (args: string[]) => JSON.parse((await spock([...args, "--json"])).stdout);
  const db1 = cluster.connect({ database: "db1" });
  try {
    await Promise.all([spock(["install", "--node", "n1"]), spock(["install", "--node", "n2"])]);
    await db1`CREATE TABLE public.t1 (id int PRIMARY KEY, v text, secret text)`;
    await db1`CREATE TABLE public.nopk (v text)`;
    await db1`CREATE SEQUENCE public.s1`;
    await db1`CREATE TABLE public.parted (id int PRIMARY KEY) PARTITION BY RANGE (id)`;
    await db1`CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES FROM (0) TO (10)`;

    await t.step("node create, info and list", async () => {
      const created = await spock([
        "node",
        "create",
        "--node-name",
        "n1",
        "--dsn",
        dsn1,
        "--location",
        "Lund",
        "--country",
        "SE",
        "--info",
        '{"rack": 7}',
      ]);
      assert.match(created.stdout, /^\d+\n$/);
      const info = await json(["node", "info", "--node", "n1"]);
      assert.equal(info.node_id, Number(created.stdout));
      assert.deepEqual([info.node_name, info.location, info.country], ["n1", "Lund", "SE"]);
      assert.deepEqual(info.info, { rack: 7 });
      const list = await spock(["node", "list", "--dsn", dsn1]);
      assert.match(list.stdout, /^node_id +node_name +local +location +country +interfaces\n/);
      assert.match(list.stdout, /\n\d+ +n1 +true +Lund +SE +n1\n\(1 row\)\n$/);
    });

    await t.step("a second node_create fails with Spock's message and exit 1", async () => {
      const again = await spock(["node", "create", "--node-name", "n1", "--dsn", dsn1], 1);
      assert.match(again.stderr, /^spock node create: node n1 already exists/);
    });

    await t.step("node add-interface and drop-interface", async () => {
      const added = await spock([
        "node",
        "add-interface",
        "--node",
        "n1",
        "--node-name",
        "n1",
        "--interface-name",
        "n1_private",
        "--dsn",
        `${dsn1} application_name=private`,
      ]);
      assert.match(added.stdout, /^\d+\n$/);
      const list = await json(["node", "list", "--node", "n1"]);
      assert.deepEqual(list[0].interfaces, ["n1", "n1_private"]);
      const dropped = await spock([
        "node",
        "drop-interface",
        "--node",
        "n1",
        "--node-name",
        "n1",
        "--interface-name",
        "n1_private",
      ]);
      assert.equal(dropped.stdout, "true\n");
    });

    await t.step("repset create, alter, list and drop", async () => {
      await spock([
        "repset",
        "create",
        "--node",
        "n1",
        "--set-name",
        "s1",
        "--no-replicate-truncate",
      ]);
      let sets = await json(["repset", "list", "--node", "n1"]);
      const s1 = sets.find((s: { set_name: string }) => s.set_name === "s1");
      assert.deepEqual(
        [s1.replicate_insert, s1.replicate_update, s1.replicate_delete, s1.replicate_truncate],
        [true, true, true, false],
      );
      assert.deepEqual(
        sets.map((s: { set_name: string }) => s.set_name).sort(),
        ["ddl_sql", "default", "default_insert_only", "s1"],
      );
      await spock([
        "repset",
        "alter",
        "--node",
        "n1",
        "--set-name",
        "s1",
        "--replicate-truncate",
        "--no-replicate-delete",
      ]);
      sets = await json(["repset", "list", "--node", "n1"]);
      const altered = sets.find((s: { set_name: string }) => s.set_name === "s1");
      assert.deepEqual(
        [altered.replicate_insert, altered.replicate_delete, altered.replicate_truncate],
        [true, false, true],
      );
      const dup = await spock(["repset", "create", "--node", "n1", "--set-name", "s1"], 1);
      assert.match(dup.stderr, /^spock repset create: replication set s1 already exists/);
    });

    await t.step("repset add-table with columns and row filter, show-table, remove", async () => {
      const added = await spock([
        "repset",
        "add-table",
        "--node",
        "n1",
        "--set-name",
        "default",
        "--relation",
        "public.t1",
        "--columns",
        "id,v",
        "--row-filter",
        "id > 0",
      ]);
      assert.equal(added.stdout, "true\n");
      const shown = await json([
        "repset",
        "show-table",
        "--node",
        "n1",
        "--relation",
        "public.t1",
        "--repsets",
        "default",
      ]);
      assert.deepEqual([shown.nspname, shown.relname], ["public", "t1"]);
      assert.deepEqual(shown.att_list, ["id", "v"]);
      assert.equal(shown.has_row_filter, true);
      const noPk = await spock(
        ["repset", "add-table", "--node", "n1", "--set-name", "default", "--relation", "nopk"],
        1,
      );
      assert.match(noPk.stderr, /^spock repset add-table: table .*nopk cannot be added/);
      const bad = await spock([
        "repset",
        "add-table",
        "--node",
        "n1",
        "--set-name",
        "s1",
        "--relation",
        "public.t1",
        "--row-filter",
        "'); DROP TABLE public.t1; --",
      ], 1);
      assert.match(bad.stderr, /^spock repset add-table: /);
      const [t1] = await db1`SELECT to_regclass('public.t1') IS NOT NULL AS present`;
      assert.equal(t1.present, true);
      const removed = await spock([
        "repset",
        "remove-table",
        "--node",
        "n1",
        "--set-name",
        "default",
        "--relation",
        "public.t1",
      ]);
      assert.equal(removed.stdout, "true\n");
    });

    await t.step("repset add-all-tables, partitions and sequences", async () => {
      await spock([
        "repset",
        "add-all-tables",
        "--node",
        "n1",
        "--set-name",
        "default_insert_only",
        "--schema-names",
        "public",
      ]);
      const removed = await spock([
        "repset",
        "remove-partition",
        "--node",
        "n1",
        "--parent",
        "public.parted",
      ]);
      assert.match(removed.stdout, /^\d+\n$/);
      const added = await spock([
        "repset",
        "add-partition",
        "--node",
        "n1",
        "--parent",
        "public.parted",
        "--partition",
        "public.parted_1",
      ]);
      assert.match(added.stdout, /^\d+\n$/);
      await spock(["repset", "add-seq", "--node", "n1", "--set-name", "s1", "--relation", "s1"]);
      await spock(["repset", "remove-seq", "--node", "n1", "--set-name", "s1", "--relation", "s1"]);
      await spock([
        "repset",
        "add-all-seqs",
        "--node",
        "n1",
        "--set-name",
        "s1",
        "--schema-names",
        "public",
      ]);
      const sets = await json(["repset", "list", "--node", "n1"]);
      const s1 = sets.find((s: { set_name: string }) => s.set_name === "s1");
      assert.equal(s1.sequences, 1);
      assert.equal(
        (await spock(["repset", "drop", "--node", "n1", "--set-name", "s1"])).stdout,
        "true\n",
      );
    });

    await t.step("sub create asks the provider, then sub list and show-status", async () => {
      await spock(["node", "create", "--node", "n2", "--node-name", "n2"]);
      const db2 = cluster.connect({ database: "db2" });
      const [iface] = await db2`SELECT if_dsn FROM spock.node_interface WHERE if_name = 'n2'`;
      assert.equal(iface.if_dsn, dsn2, "node create --node takes the dsn from the config file");
      await db2`CREATE TABLE public.t1 (id int PRIMARY KEY, v text, secret text)`;
      const created = await spock([
        "sub",
        "create",
        "--node",
        "n2",
        "--subscription-name",
        "sub_n1_n2",
        "--provider-dsn",
        dsn1,
        "--replication-sets",
        "default,ddl_sql",
        "--no-enabled",
      ]);
      assert.match(created.stdout, /^\d+\n$/);
      const [sub] = await json(["sub", "list", "--node", "n2"]);
      assert.deepEqual(
        [sub.sub_name, sub.provider_node, sub.subscriber_node, sub.enabled],
        ["sub_n1_n2", "n1", "n2", false],
      );
      assert.deepEqual(sub.replication_sets, ["default", "ddl_sql"]);
      const [status] = await json(["sub", "show-status", "--node", "n2"]);
      assert.equal(status.subscription_name, "sub_n1_n2");
      assert.equal(status.status, "disabled");
      const table = await spock([
        "sub",
        "show-status",
        "--node",
        "n2",
        "--subscription-name",
        "sub_n1_n2",
      ]);
      assert.match(table.stdout, /^subscription_name +status +provider_node +provider_dsn/);
    });

    await t.step("sub enable, disable, repsets, skip LSN and tables", async () => {
      const sub = ["--node", "n2", "--subscription-name", "sub_n1_n2"];
      assert.equal((await spock(["sub", "enable", ...sub])).stdout, "true\n");
      assert.equal((await spock(["sub", "disable", ...sub])).stdout, "true\n");
      assert.equal(
        (await spock(["sub", "add-repset", ...sub, "--replication-set", "default_insert_only"]))
          .stdout,
        "true\n",
      );
      assert.equal(
        (await spock(["sub", "remove-repset", ...sub, "--replication-set", "default_insert_only"]))
          .stdout,
        "true\n",
      );
      assert.equal(
        (await spock(["sub", "alter-skiplsn", ...sub, "--lsn", "0/16B3748"])).stdout,
        "true\n",
      );
      const shown = await json(["sub", "show-table", ...sub, "--relation", "public.t1"]);
      assert.deepEqual([shown.nspname, shown.relname], ["public", "t1"]);
      assert.equal(
        (await spock(["sub", "resync-table", ...sub, "--relation", "public.t1", "--no-truncate"]))
          .stdout,
        "true\n",
      );
      await spock([
        "node",
        "add-interface",
        "--node",
        "n2",
        "--node-name",
        "n1",
        "--interface-name",
        "n1_alt",
        "--dsn",
        `${dsn1} application_name=alt`,
      ]);
      assert.equal(
        (await spock(["sub", "alter-interface", ...sub, "--interface-name", "n1_alt"])).stdout,
        "true\n",
      );
      const missing = await spock(
        ["sub", "enable", "--node", "n2", "--subscription-name", "nope"],
        1,
      );
      assert.match(missing.stderr, /^spock sub enable: .*nope/);
    });

    await t.step("sub wait-for-sync waits in the server until Ctrl-C cancels it", async () => {
      const db2 = cluster.connect({ database: "db2" });
      const wait = ["sub", "wait-for-sync", "--dsn", dsn2, "--subscription-name", "sub_n1_n2"];
      // A disabled subscription will not sync: the wait says so at once.
      const disabled = await spock(wait, 1);
      assert.match(
        disabled.stderr,
        /^spock sub wait-for-sync: subscription "sub_n1_n2" is disabled/,
      );
      assert.match(disabled.stderr, /^HINT: Enable it with spock\.sub_enable\('sub_n1_n2'\)\.$/m);
      await spock(["sub", "enable", "--dsn", dsn2, "--subscription-name", "sub_n1_n2"]);
      await using whole = new SpockProcess(wait);
      await using table = new SpockProcess([...wait, "--relation", "public.t1"]);
      await pollUntil(async () => {
        // Sleeping inside the wait: the statement runs (a cancel before it is sent reads otherwise).
        const rows = await db2`SELECT query FROM pg_stat_activity
          WHERE application_name = 'spock sub wait-for-sync' AND state = 'active'
            AND wait_event = 'PgSleep'`;
        return rows.length === 2;
      }, { timeoutMs: 30_000, what: "both spock sub wait-for-sync to wait" });
      for (const waiting of [whole, table]) {
        const result = await waiting.interrupt();
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /^spock sub wait-for-sync: canceling statement due to user request/,
        );
      }
    });

    await t.step("node drop refuses while subscriptions exist; sub drop; node drop", async () => {
      const refused = await spock(["node", "drop", "--node", "n2", "--node-name", "n2"], 1);
      assert.match(refused.stderr, /cannot drop node "n2" because it still has subscriptions/);
      await spock(["sub", "drop", "--node", "n2", "--subscription-name", "sub_n1_n2"]);
      assert.deepEqual(await json(["sub", "list", "--node", "n2"]), []);
      assert.equal(
        (await spock(["node", "drop", "--node", "n2", "--node-name", "n2"])).stdout,
        "true\n",
      );
      const gone = await spock(["node", "drop", "--node", "n2", "--node-name", "n2", "--ifexists"]);
      assert.equal(gone.stdout, "false\n");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
