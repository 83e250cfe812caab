/**
 * `spock status` against a real catalog: one node with two subscriptions
 * recorded locally (no provider runs, so both are "down"), a progress row for
 * the lag, and apply counters written by hand, as the engine's workers would.
 */
import assert from "node:assert/strict";
import { pgTest, runSpock } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";

pgTest("spock status shows subscriptions, lag and counters", async (t, cluster) => {
  const sql = cluster.connect();
  const dsn = cluster.dsn();
  await installCatalog(sql, { programVersion: "test" });
  await sql`SELECT spock.node_create('n1', ${dsn})`;
  for (const [name, provider, id] of [["s1", "p1", 4242], ["s2", "p2", 4343]] as const) {
    await sql`SELECT spock._sub_create_local(${name}, ${`${dsn} application_name=${provider}`},
      ${id}, ${provider}, '{default}', false, false, '{}', '0', false, ${name === "s1"}, '{}')`;
  }
  await sql`UPDATE spock.progress SET remote_commit_ts = now() - interval '90 seconds'
    WHERE remote_node_id = 4242`;
  await sql`INSERT INTO spock._channel_stats (sub_id, nspname, relname, n_tup_ins, n_tup_upd,
      n_tup_del, n_dca, confl_insert_exists, confl_update_origin_differs)
    VALUES (spock._sub_id('s1'), 'public', 'acct', 10, 5, 1, 2, 3, 4),
           (spock._sub_id('s2'), 'public', 'acct', 7, 0, 0, 0, 0, 0)`;

  await t.step("the text has one table of subscriptions and one of counters", async () => {
    const result = await runSpock(["status", "--dsn", dsn]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    assert.equal(lines[0], "Node n1");
    assert.match(lines[2], /^subscription +status +provider +lag +lag_bytes$/);
    assert.match(lines[4], /^s1 +down +p1 +1m 3\ds +0$/);
    assert.match(lines[5], /^s2 +disabled +p2 +\d/);
    const header = lines.findIndex((line) => line.startsWith("subscription  table"));
    assert.match(
      lines[header],
      /^subscription +table +inserts +updates +deletes +delta_applied +conflicts$/,
    );
    assert.match(
      lines[header + 2],
      /^s1 +public\.acct +10 +5 +1 +2 +7 \(insert_exists 3, update_origin_differs 4\)$/,
    );
    assert.match(lines[header + 3], /^s2 +public\.acct +7 +0 +0 +0 +0$/);
  });

  await t.step("--json prints one document with numbers", async () => {
    const result = await runSpock(["status", "--dsn", dsn, "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout);
    assert.equal(status.node, "n1");
    assert.deepEqual(status.subscriptions.map((s: Record<string, unknown>) => s.status), [
      "down",
      "disabled",
    ]);
    assert.ok(status.subscriptions[0].lag_seconds >= 90);
    assert.deepEqual(status.tables[0], {
      subscription: "s1",
      table: "public.acct",
      inserts: 10,
      updates: 5,
      deletes: 1,
      delta_applied: 2,
      conflicts: 7,
      conflicts_by_type: {
        insert_exists: 3,
        update_origin_differs: 4,
        update_exists: 0,
        update_missing: 0,
        delete_origin_differs: 0,
        delete_missing: 0,
        delete_exists: 0,
      },
    });
  });

  await sql.end();
});
