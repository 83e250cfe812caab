/**
 * Exception handling: a remote transaction with one row that violates a
 * CHECK constraint only the subscriber has, under each exception_behaviour;
 * sub_disable then sub_alter_skiplsn then sub_enable skips exactly that
 * transaction; an UPDATE of a missing row (update_missing = error) goes the
 * same way.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  checkedPair,
  closeNodes,
  remoteTransaction,
  type TestNode,
  waitForRow,
  waitForSync,
  withDaemon,
} from "./_mesh.ts";

async function keys(node: TestNode, from: number, to: number): Promise<number[]> {
  const rows = await node.sql`select k from t where k between ${from} and ${to} order by k`;
  return rows.map((row) => row.k);
}

interface LogRow {
  table_name: string;
  operation: string;
  error_message: string;
  remote_new_tup: Record<string, string> | null;
  local_tup: Record<string, unknown> | null;
}

async function exceptionLog(node: TestNode, xid: string): Promise<LogRow[]> {
  return await node.sql`
    select table_name, operation, error_message, remote_new_tup, local_tup
    from spock.exception_log where remote_xid = ${xid}::int8
    order by command_counter` as unknown as LogRow[];
}

pgTest("exception_behaviour discards, keeps or disables as configured", async (_t, cluster) => {
  const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["xp", "xs"]);
  try {
    // transdiscard (the default): nothing of the transaction, every operation logged.
    await withDaemon([subscriber], {}, async () => {
      await waitForSync(subscriber, sub);
      const xid = await remoteTransaction(
        provider,
        "insert into t values (1, 1); insert into t values (2, 500); insert into t values (3, 3)",
      );
      await provider.sql`insert into t values (10, 1)`;
      await waitForRow(subscriber, "t", "k", 10);
      assert.deepEqual(await keys(subscriber, 1, 3), []);
      const logged = await exceptionLog(subscriber, xid);
      assert.deepEqual(logged.map((row) => [row.operation, row.error_message.slice(0, 6)]), [
        ["INSERT", "discar"],
        ["INSERT", "23514:"],
        ["INSERT", "discar"],
      ]);
      assert.match(logged[1].error_message, /violates check constraint "small"/);
      assert.deepEqual(logged[1].remote_new_tup, { k: "2", v: "500" });
      assert.equal(logged[1].table_name, "t");
    });

    // discard: the good rows stay; only the failed one is logged (exception_logging discard).
    await withDaemon([subscriber], {
      exception_behaviour: "discard",
      exception_logging: "discard",
    }, async () => {
      const xid = await remoteTransaction(
        provider,
        "insert into t values (4, 4); insert into t values (5, 500); update t set v = v + 1 where k = 10",
      );
      await provider.sql`insert into t values (11, 1)`;
      await waitForRow(subscriber, "t", "k", 11);
      assert.deepEqual(await keys(subscriber, 4, 5), [4]);
      const [row] = await subscriber.sql`select v from t where k = 10`;
      assert.equal(row.v, 2);
      const logged = await exceptionLog(subscriber, xid);
      assert.deepEqual(logged.map((entry) => entry.operation), ["INSERT"]);
      assert.match(logged[0].error_message, /^23514:/);
    });

    // update_missing = error: the update of a row the subscriber lacks is an exception.
    await withDaemon([subscriber], {}, async () => {
      await subscriber.sql`delete from t where k = 4`;
      const xid = await remoteTransaction(provider, "update t set v = 40 where k = 4");
      await provider.sql`insert into t values (12, 1)`;
      await waitForRow(subscriber, "t", "k", 12);
      const logged = await exceptionLog(subscriber, xid);
      assert.equal(logged.length, 1);
      assert.match(logged[0].error_message, /^SP002: logical replication did not find row/);
    });

    // sub_disable: the subscription stops before the transaction; skip LSN gets past it.
    await withDaemon([subscriber], { exception_behaviour: "sub_disable" }, async () => {
      const xid = await remoteTransaction(
        provider,
        "insert into t values (6, 6); insert into t values (7, 700)",
      );
      await provider.sql`insert into t values (13, 1)`;
      const disabled = await pollUntil(async () => {
        const [row] = await subscriber.sql`
          select error_message from spock.exception_log
          where remote_xid = ${xid}::int8 and operation = 'SUB_DISABLE'`;
        return row?.error_message as string | undefined;
      }, { what: "the SUB_DISABLE entry" });
      const lsn = /skip_lsn = (\S+)$/.exec(disabled)![1];
      await pollUntil(async () => {
        const [row] = await subscriber.sql`select status from spock.sub_show_status(${sub})`;
        return row.status === "disabled" || undefined;
      }, { what: "the subscription to show as disabled" });
      assert.deepEqual(await keys(subscriber, 6, 13), [10, 11, 12]);

      await subscriber.sql`select spock.sub_alter_skiplsn(${sub}, ${lsn}::pg_lsn)`;
      await subscriber.sql`select spock.sub_enable(${sub})`;
      await waitForRow(subscriber, "t", "k", 13);
      assert.deepEqual(await keys(subscriber, 6, 7), []);
      await provider.sql`insert into t values (8, 8)`;
      await waitForRow(subscriber, "t", "k", 8);
      const [cleared] = await subscriber.sql`
        select sub_skip_lsn::text as lsn from spock.subscription where sub_name = ${sub}`;
      assert.equal(cleared.lsn, "0/0");
    });
  } finally {
    await closeNodes(nodes);
  }
});
