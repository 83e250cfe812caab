/**
 * A table or a column the subscriber lacks goes to exception handling like
 * any other failure: under transdiscard and discard the operations are
 * logged in spock.exception_log and the transactions after them arrive (also
 * later transactions on the same table, whose Relation message came earlier);
 * under sub_disable the subscription is disabled at the first one, with its
 * skip LSN logged. Creating the missing column lets the next change apply.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  remoteTransaction,
  subscribe,
  type TestNode,
  waitForRow,
  waitForSync,
  withDaemon,
} from "./_mesh.ts";

const PROVIDER_DDL = `
create table t (k int primary key);
create table gone (k int primary key);
create table narrow (k int primary key, extra int)`;
const SUBSCRIBER_DDL = `
create table t (k int primary key);
create table narrow (k int primary key)`;

async function keys(node: TestNode): Promise<number[]> {
  return (await node.sql`select k from t order by k`).map((row) => row.k);
}

async function logged(node: TestNode, xid: string): Promise<string[]> {
  const rows = await node.sql`select table_name, operation, error_message from spock.exception_log
    where remote_xid = ${xid}::int8 order by command_counter`;
  return rows.map((row) => `${row.operation} ${row.table_name ?? "-"}: ${row.error_message}`);
}

pgTest("a missing table or column goes to exception handling", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["mp", "ms"], "");
  const [provider, subscriber] = nodes;
  await provider.sql.unsafe(PROVIDER_DDL);
  await subscriber.sql.unsafe(SUBSCRIBER_DDL);
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider);
  try {
    await withDaemon([subscriber], {}, async () => {
      await waitForSync(subscriber, sub);
      const missingTable = await remoteTransaction(
        provider,
        "insert into t values (1); insert into gone values (1)",
      );
      const missingColumn = await remoteTransaction(
        provider,
        "insert into t values (2); insert into narrow values (1, 1)",
      );
      // The Relation messages came with the first transactions: these find them broken.
      const again = await remoteTransaction(
        provider,
        "insert into t values (3); insert into gone values (2); insert into narrow values (2, 2)",
      );
      await provider.sql`insert into t values (4)`;
      await waitForRow(subscriber, "t", "k", 4);
      assert.deepEqual(await keys(subscriber), [4], "transdiscard discards them whole");
      const [discarded, gone] = await logged(subscriber, missingTable);
      assert.equal(discarded, "INSERT t: discarded with its transaction");
      assert.match(
        gone,
        /^INSERT gone: Cannot map remote relation "public\.gone": no local table "public\.gone"; create it on the subscriber/,
      );
      const [, narrow] = await logged(subscriber, missingColumn);
      assert.match(
        narrow,
        /^INSERT narrow: Cannot map remote relation "public\.narrow": local table is missing column "extra"/,
      );
      assert.equal((await logged(subscriber, again)).length, 3);
      const [row] = await subscriber.sql`select status, last_error from spock.sub_show_status()`;
      assert.equal(row.status, "replicating");
    });
    // Applied rows and discarded operations are counted apart (written when the worker stops).
    const counters = await subscriber.sql`select table_name, n_tup_ins::int, n_discarded::int
      from spock.channel_table_stats order by table_name`;
    assert.deepEqual(counters.map((row) => ({ ...row })), [
      { table_name: "public.gone", n_tup_ins: 0, n_discarded: 2 },
      { table_name: "public.narrow", n_tup_ins: 0, n_discarded: 2 },
      { table_name: "public.t", n_tup_ins: 1, n_discarded: 3 },
    ]);

    await withDaemon([subscriber], { exception_behaviour: "discard" }, async () => {
      const xid = await remoteTransaction(
        provider,
        "insert into t values (5); insert into gone values (3); insert into narrow values (3, 3)",
      );
      const later = await remoteTransaction(
        provider,
        "insert into narrow values (4, 4); insert into t values (6)",
      );
      await provider.sql`insert into t values (7)`;
      await waitForRow(subscriber, "t", "k", 7);
      assert.deepEqual(await keys(subscriber), [4, 5, 6, 7], "discard keeps what applies");
      assert.deepEqual((await logged(subscriber, xid)).map((entry) => entry.split(":")[0]), [
        "INSERT t", // applied, and logged: exception_logging is "all"
        "INSERT gone",
        "INSERT narrow",
      ]);
      assert.match((await logged(subscriber, later))[0], /^INSERT narrow: Cannot map/);

      // The column is added: the next change to the table applies.
      await subscriber.sql`alter table narrow add column extra int`;
      await provider.sql`insert into narrow values (5, 5)`;
      await waitForRow(subscriber, "narrow", "k", 5);
    });

    await withDaemon([subscriber], { exception_behaviour: "sub_disable" }, async () => {
      const xid = await remoteTransaction(
        provider,
        "insert into t values (8); insert into gone values (4)",
      );
      await provider.sql`insert into t values (9)`;
      const disabled = await pollUntil(async () => {
        const [row] = await subscriber.sql`select error_message from spock.exception_log
          where remote_xid = ${xid}::int8 and operation = 'SUB_DISABLE'`;
        return row?.error_message as string | undefined;
      }, { what: "the SUB_DISABLE entry" });
      assert.match(disabled, /skip_lsn = \S+$/);
      // A worker whose seat was not released in time counts as running until its heartbeat is
      // 30 s old.
      const status = await pollUntil(async () => {
        const [row] = await subscriber.sql`select * from spock.sub_show_status(${sub})`;
        return row.status === "disabled" && row.last_error !== null ? row : undefined;
      }, { timeoutMs: 45_000, what: "the subscription to be disabled, with its error" });
      assert.match(
        status.last_error,
        /disabled by exception_behaviour sub_disable: remote transaction \d+ failed \(skip_lsn = /,
      );
      assert.match(status.last_error, /sub_alter_skiplsn\('sub_ms_mp', '[0-9A-F]+\/[0-9A-F]+'\)/);
      assert.deepEqual(await keys(subscriber), [4, 5, 6, 7]);

      const health = await runSpock(["status", "--dsn", subscriber.dsn]);
      assert.equal(health.code, 1, "a subscription stopped by an error fails the health check");
      assert.match(health.stdout, /^sub_ms_mp +disabled by an error +mp/m);
      assert.match(health.stdout, /not retrying: an operator must act/);
      const listed = await runSpock(["exceptions", "--dsn", subscriber.dsn, "--table", "gone"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stdout.match(/ INSERT +public\.gone\n/g)?.length, 4);
      assert.match(listed.stdout, /^ {2}error {3}Cannot map remote relation "public\.gone"/m);
      assert.match(listed.stdout, /^ {2}new {5}\{"k":"4"\}$/m);
      const json = await runSpock(["exceptions", "--dsn", subscriber.dsn, "--json"]);
      const entries = json.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assert.ok(entries.some((entry) => entry.operation === "SUB_DISABLE"));
      assert.ok(entries.every((entry) => entry.origin_node === "mp"));
    });
  } finally {
    await closeNodes(nodes);
  }
});
