/**
 * `spock status` against a real catalog: one node with two subscriptions
 * recorded locally (no provider runs, so the enabled one is "down"), a
 * progress row for the lag, and apply counters and a last error written by
 * hand, as the engine's workers would. It exits 1 while a subscription is
 * down or stopped by an error: a health check.
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
      n_tup_del, n_dca, n_discarded, confl_insert_exists, confl_update_origin_differs)
    VALUES (spock._sub_id('s1'), 'public', 'acct', 10, 5, 1, 2, 6, 3, 4),
           (spock._sub_id('s2'), 'public', 'acct', 7, 0, 0, 0, 0, 0, 0)`;
  await sql`INSERT INTO spock._sub_error (sub_id, error_message, sqlstate, remote_lsn, attempt,
      retry_at)
    VALUES (spock._sub_id('s1'), 'connect ECONNREFUSED 127.0.0.1:1', NULL, '0/1A', 3,
      now() + interval '4 seconds')`;

  await t.step("the text has one table of subscriptions and one of counters", async () => {
    const result = await runSpock(["status", "--dsn", dsn]);
    assert.equal(result.code, 1, "s1 is down");
    const lines = result.stdout.split("\n");
    assert.equal(lines[0], "Node n1");
    assert.match(lines[2], /^subscription +status +provider +lag +lag_bytes$/);
    assert.match(lines[4], /^s1 +down +p1 +1m 3\ds +0$/);
    assert.match(lines[5], /^s2 +disabled +p2 +\d/);
    const error = lines.findIndex((line) => line.startsWith("s1: last error"));
    assert.match(lines[error], /^s1: last error \S+ at remote LSN 0\/1A, retrying at \S+:$/);
    assert.equal(lines[error + 1], "  connect ECONNREFUSED 127.0.0.1:1");
    const header = lines.findIndex((line) => line.startsWith("subscription  table"));
    assert.match(
      lines[header],
      /^subscription +table +inserts +updates +deletes +delta_applied +discarded +conflicts$/,
    );
    assert.match(
      lines[header + 2],
      /^s1 +public\.acct +10 +5 +1 +2 +6 +7 \(insert_exists 3, update_origin_differs 4\)$/,
    );
    assert.match(lines[header + 3], /^s2 +public\.acct +7 +0 +0 +0 +0 +0$/);
  });

  await t.step("it exits 0 when every subscription runs or was disabled on purpose", async () => {
    await sql`INSERT INTO spock._apply_worker (sub_id, daemon, pid, state)
      VALUES (spock._sub_id('s1'), 'test', 1, 'replicating')`;
    const result = await runSpock(["status", "--dsn", dsn]);
    assert.equal(result.code, 0, result.stdout);
    // Disabled by exception handling (an error it does not retry): an operator must act.
    await sql`INSERT INTO spock._sub_error (sub_id, error_message, attempt)
      VALUES (spock._sub_id('s2'), 'Subscription "s2" disabled by exception_behaviour sub_disable', 1)`;
    const stopped = await runSpock(["status", "--dsn", dsn]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stdout, /^s2 +disabled by an error +p2/m);
    assert.match(stopped.stdout, /^s2: last error \S+, not retrying: an operator must act:$/m);
    await sql`DELETE FROM spock._apply_worker`;
    await sql`DELETE FROM spock._sub_error WHERE sub_id = spock._sub_id('s2')`;
  });

  await t.step("--json prints one document with numbers", async () => {
    const result = await runSpock(["status", "--dsn", dsn, "--json"]);
    assert.equal(result.code, 1);
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
      discarded: 6,
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
