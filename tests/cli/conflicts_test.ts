/**
 * `spock conflicts` against a real catalog: resolutions written by hand, as
 * the apply engine writes them; text and --json output, the --since, --table
 * and --limit filters, and a bad --since as a usage error.
 */
import assert from "node:assert/strict";
import { pgTest, runSpock } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";

pgTest("spock conflicts prints recent resolutions", async (t, cluster) => {
  const sql = cluster.connect();
  const dsn = cluster.dsn();
  await installCatalog(sql, { programVersion: "test" });
  await sql`INSERT INTO spock.resolutions (node_name, log_time, relname, idxname, conflict_type,
      conflict_resolution, local_origin, local_tuple, local_xid, local_timestamp, remote_origin,
      remote_tuple, remote_xid, remote_timestamp, remote_lsn)
    VALUES
      ('n1', now() - interval '2 hours', '"My Schema"."T"', 'T_pkey', 'insert_exists', 'keep_local',
       0, '{"id": 7, "v": "mine"}', '900', now() - interval '2 hours', 4242,
       '{"id": 7, "v": "theirs"}', '1200', now() - interval '3 hours', '0/AB'),
      ('n1', now() - interval '10 minutes', 'public.t', 't_pkey', 'update_origin_differs',
       'apply_remote', 0, '{"id": 1, "v": "old"}', '901', now() - interval '11 minutes', 4242,
       '{"id": 1, "v": "new"}', '1201', now() - interval '10 minutes', '0/1A2B3C'),
      ('n1', now() - interval '1 minute', 'public.t', NULL, 'delete_missing', 'skip',
       NULL, NULL, NULL, NULL, 4242, '{"id": 2}', '1202', now() - interval '1 minute', '0/1A2B40')`;
  const spock = async (args: string[], code = 0) => {
    const result = await runSpock(["conflicts", "--dsn", dsn, ...args]);
    assert.equal(result.code, code, `spock conflicts ${args.join(" ")}:\n${result.stderr}`);
    return result;
  };
  const json = async (args: string[]) =>
    (await spock([...args, "--json"])).stdout.trimEnd().split("\n").map((l) => JSON.parse(l));

  await t.step("the text shows the last hour's conflicts, oldest first", async () => {
    const { stdout } = await spock([]);
    const lines = stdout.trimEnd().split("\n");
    assert.equal(lines.length, 7, stdout);
    assert.match(
      lines[0],
      /^\d{4}-\d\d-\d\dT\S+Z {2}public\.t {2}update_origin_differs {2}resolution apply_remote {2}winner remote {2}index t_pkey$/,
    );
    assert.match(
      lines[1],
      /^ {2}local {2}\{"id": 1, "v": "old"\} {2}origin 0 {2}at \S+Z {2}xid 901$/,
    );
    assert.match(
      lines[2],
      /^ {2}remote \{"id": 1, "v": "new"\} {2}origin 4242 {2}at \S+Z {2}xid 1201 {2}lsn 0\/1A2B3C$/,
    );
    assert.equal(lines[3], "");
    assert.match(lines[4], /public\.t {2}delete_missing {2}resolution skip {2}winner local$/);
    assert.equal(lines[5], "  local  (no row)");
    assert.match(lines[6], /^ {2}remote \{"id": 2\} {2}origin 4242 /);
  });

  await t.step("--json prints every column, one conflict per line", async () => {
    const rows = await json(["--since", "3h"]);
    assert.deepEqual(rows.map((r) => r.conflict_type), [
      "insert_exists",
      "update_origin_differs",
      "delete_missing",
    ]);
    const [first] = rows;
    assert.deepEqual(Object.keys(first), [
      "id",
      "node_name",
      "log_time",
      "relname",
      "idxname",
      "conflict_type",
      "conflict_resolution",
      "local_origin",
      "local_tuple",
      "local_xid",
      "local_timestamp",
      "remote_origin",
      "remote_tuple",
      "remote_xid",
      "remote_timestamp",
      "remote_lsn",
    ]);
    assert.deepEqual(first.local_tuple, { id: 7, v: "mine" });
    assert.deepEqual([first.relname, first.remote_xid, first.remote_lsn], [
      '"My Schema"."T"',
      "1200",
      "0/AB",
    ]);
    assert.equal(rows[2].local_tuple, null);
  });

  await t.step("--table, --since and --limit narrow the list", async () => {
    const [byTable, qualified, quoted, newest] = await Promise.all([
      json(["--since", "1d", "--table", "t"]),
      json(["--since", "1d", "--table", "public.t"]),
      json(["--since", "2h1m", "--table", '"My Schema"."T"']),
      json(["--since", "1d", "--limit", "1"]),
    ]);
    assert.deepEqual(byTable.map((r) => r.conflict_type), [
      "update_origin_differs",
      "delete_missing",
    ]);
    assert.deepEqual(qualified.map((r) => r.id), byTable.map((r) => r.id));
    assert.deepEqual(quoted.map((r) => r.conflict_type), ["insert_exists"]);
    assert.deepEqual(newest.map((r) => r.conflict_type), ["delete_missing"]);
    const none = await spock(["--since", "30s", "--table", "public.t"]);
    assert.equal(none.stdout, "No conflicts logged in the last 30s on public.t\n");
  });

  await t.step("a bad --since or --limit exits 2 naming the flag", async () => {
    const [since, limit] = await Promise.all([
      spock(["--since", "5x"], 2),
      spock(["--limit", "0"], 2),
    ]);
    assert.equal(since.stdout, "");
    assert.match(since.stderr, /^spock: Invalid --since "5x": expected a duration such as 30s/);
    assert.match(limit.stderr, /^spock: Invalid --limit "0": expected a positive integer/);
  });

  await sql.end();
});
