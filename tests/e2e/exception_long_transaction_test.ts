/**
 * A long remote transaction with one failing row goes through exception
 * handling like a short one: 50,000 operations, one of which a subscriber
 * CHECK rejects, under each exception_behaviour (each operation's savepoint
 * is released, so its subtransactions do not pile up), and the transaction
 * after it arrives.
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

const OPERATIONS = 50_000;
/** How long a replay of OPERATIONS in exception mode may take. */
const LONG_MS = 180_000;

/** One transaction of OPERATIONS inserts from `first` on, the one at `first + 1000` failing. */
function longTransaction(first: number): string {
  return `insert into t select g, case when g = ${first + 1_000} then 500 else 1 end
    from generate_series(${first}, ${first + OPERATIONS - 1}) g`;
}

async function count(node: TestNode, from: number): Promise<number> {
  const [row] = await node.sql`select count(*)::int as n from t
    where k between ${from} and ${from + OPERATIONS - 1}`;
  return row.n;
}

pgTest(
  "50,000 operations with one failing row under each exception_behaviour",
  async (_t, cluster) => {
    const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["lp", "ls"]);
    try {
      await withDaemon([subscriber], {}, async () => {
        await waitForSync(subscriber, sub);
        await provider.sql.unsafe(longTransaction(1));
        await provider.sql`insert into t values (1000001, 1)`;
        await waitForRow(subscriber, "t", "k", 1_000_001, LONG_MS);
        assert.equal(await count(subscriber, 1), 0, "transdiscard discards it whole");
      });

      await withDaemon([subscriber], {
        exception_behaviour: "discard",
        exception_logging: "discard",
      }, async () => {
        await provider.sql.unsafe(longTransaction(100_001));
        await provider.sql`insert into t values (1000002, 1)`;
        await waitForRow(subscriber, "t", "k", 1_000_002, LONG_MS);
        assert.equal(await count(subscriber, 100_001), OPERATIONS - 1, "discard keeps the others");
      });

      await withDaemon([subscriber], { exception_behaviour: "sub_disable" }, async () => {
        const xid = await remoteTransaction(provider, longTransaction(200_001));
        await provider.sql`insert into t values (1000003, 1)`;
        const message = await pollUntil(async () => {
          const [row] = await subscriber.sql`select error_message from spock.exception_log
          where remote_xid = ${xid}::int8 and operation = 'SUB_DISABLE'`;
          return row?.error_message as string | undefined;
        }, { timeoutMs: 120_000, what: "the subscription to be disabled" });
        assert.equal(await count(subscriber, 200_001), 0);
        const lsn = /skip_lsn = (\S+)$/.exec(message)![1];
        await subscriber.sql`select spock.sub_alter_skiplsn(${sub}, ${lsn}::pg_lsn)`;
        await subscriber.sql`select spock.sub_enable(${sub})`;
        await waitForRow(subscriber, "t", "k", 1_000_003, LONG_MS);
        assert.equal(await count(subscriber, 200_001), 0, "skipped");
      });
    } finally {
      await closeNodes(nodes);
    }
  },
);
