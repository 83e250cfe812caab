/**
 * The commit window end to end: a backlog of single-row transactions is
 * applied with hundreds of COMMITs in flight. A subscriber CHECK rejects one
 * of them (the ones before it stay applied once, it follows
 * exception_behaviour, the ones after it are sent again and applied once);
 * conflicts inside the window are recorded against their own remote
 * transaction; `spock run` is SIGKILLed with a full window and still applies
 * every transaction exactly once; progress and lag_tracker are right.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import {
  addAllTables,
  checkedPair,
  closeNodes,
  createNodes,
  subscribe,
  type TestNode,
  waitForSync,
  withDaemon,
} from "./_mesh.ts";

const WINDOW = { apply_window_transactions: 500 };

/** Commits `count` single-row transactions into t on `node`, row k with value `value(k)`. */
async function commitMany(node: TestNode, count: number, value: (k: number) => number) {
  const values = Array.from({ length: count }, (_, i) => value(i + 1)).join(",");
  await node.sql.unsafe(
    `do $$ declare v int[] := '{${values}}'; begin
       for i in 1..${count} loop insert into t values (i, v[i]); commit; end loop;
     end $$`,
  );
}

pgTest(
  "a failure inside a window of 500 transactions applies the others exactly once",
  async (_t, cluster) => {
    const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["wprov", "wsub"]);
    try {
      // Synchronized first, then the backlog builds up while no daemon runs.
      await withDaemon(nodes, WINDOW, () => waitForSync(subscriber, sub));
      const failing = 700;
      await commitMany(provider, 1500, (k) => (k === failing ? 100 : k % 50));
      const [xid] = await provider.sql`
      select xmin::text as xid from t where k = ${failing}`;
      await withDaemon(nodes, WINDOW, async () => {
        await pollUntil(async () => {
          const [row] = await subscriber.sql`select count(*)::int as n from t`;
          return row.n === 1499 || undefined;
        }, { timeoutMs: 60_000, what: "1,499 rows on the subscriber" });
      });
      const [rows] = await subscriber.sql`
      select count(*)::int as n, count(*) filter (where k = ${failing})::int as failed,
        min(k)::int as first, max(k)::int as last from t`;
      assert.deepEqual(rows, { n: 1499, failed: 0, first: 1, last: 1500 });
      const log = await subscriber.sql`
      select remote_xid::text as xid, operation, table_name::text as table from spock.exception_log`;
      assert.deepEqual([...log], [{ xid: xid.xid, operation: "INSERT", table: "t" }]);
      const [stats] = await subscriber.sql`
      select n_tup_ins::int as ins, n_discarded::int as discarded,
        confl_insert_exists::int as insert_exists
      from spock.channel_table_stats where table_name = 'public.t'`;
      // Applied once each (a second apply of a row would be an insert_exists conflict).
      assert.deepEqual(stats, { ins: 1499, discarded: 1, insert_exists: 0 });
    } finally {
      await closeNodes(nodes);
    }
  },
);

pgTest(
  "conflicts inside the commit window are recorded against their own transaction",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["cprov", "csub"],
      "create table t (k int primary key, v int)",
    );
    const [provider, subscriber] = nodes;
    try {
      await addAllTables([provider]);
      const sub = await subscribe(subscriber, provider);
      const engine = { ...WINDOW, save_resolutions: true };
      await withDaemon(nodes, engine, () => waitForSync(subscriber, sub));
      // Rows the subscriber has already (older than the provider's): insert_exists, remote wins.
      const taken = [111, 222, 333];
      for (const k of taken) await subscriber.sql`insert into t values (${k}, -1)`;
      await commitMany(provider, 400, (k) => k);
      const xids = await provider.sql`
      select k, xmin::text as xid from t where k in ${provider.sql(taken)} order by k`;
      await withDaemon(nodes, engine, async () => {
        await pollUntil(async () => {
          const [row] = await subscriber.sql`select count(*)::int as n, min(v)::int as low from t`;
          return (row.n === 400 && row.low === 1) || undefined;
        }, { timeoutMs: 60_000, what: "400 rows with the provider's values" });
        let counted: unknown;
        await pollUntil(async () => {
          const [row] = await subscriber.sql`
          select confl_insert_exists::int as n from spock.channel_table_stats
          where table_name = 'public.t'`;
          counted = row?.n;
          return row?.n === taken.length || undefined;
        }, { what: "the conflict counters to be written" }).catch((error) => {
          throw new Error(`${error.message} (counted ${counted})`);
        });
      });
      // Each resolution carries the xid of the provider transaction that wrote its row.
      const resolutions = await subscriber.sql`
      select remote_xid::text as xid, conflict_type, conflict_resolution
      from spock.resolutions order by remote_xid::text::bigint`;
      assert.deepEqual(
        resolutions.map((r) => [r.xid, r.conflict_type, r.conflict_resolution]),
        xids.map((x) => [x.xid, "insert_exists", "apply_remote"]),
      );
    } finally {
      await closeNodes(nodes);
    }
  },
);

// No primary key: a transaction applied twice shows up as duplicate rows.
const LEDGER = "create table ledger (n int not null, payload text)";

async function ledgerCount(node: TestNode): Promise<number> {
  const [row] = await node.sql`select count(*)::int as n from ledger`;
  return row.n;
}

pgTest(
  "spock run SIGKILLed with a full commit window applies every transaction exactly once",
  async (_t, cluster) => {
    const nodes = await createNodes(cluster, ["kprov", "ksub"], LEDGER);
    const [provider, subscriber] = nodes;
    await provider.sql`select spock.repset_add_table('default_insert_only', 'ledger')`;
    const sub = await subscribe(subscriber, provider, { sets: ["default_insert_only"] });
    const start = () => new SpockProcess(["run", "--dsn", subscriber.dsn, "--log-level", "info"]);
    let daemon = start();
    try {
      await waitForSync(subscriber, sub);
      await daemon.kill();
      const total = 30_000;
      await provider.sql.unsafe(
        `do $$ begin for i in 1..${total} loop
         insert into ledger values (i, repeat('x', 40)); commit;
       end loop; end $$`,
      );
      for (let round = 0; round < 3; round++) {
        daemon = start();
        const before = await ledgerCount(subscriber);
        const target = before + 1000 + Math.floor(Math.random() * 4000);
        await pollUntil(async () => await ledgerCount(subscriber) >= target || undefined, {
          timeoutMs: 60_000,
          what: `the daemon to pass ${target} rows (round ${round})`,
        });
        await daemon.kill();
      }
      daemon = start();
      await pollUntil(async () => await ledgerCount(subscriber) >= total || undefined, {
        timeoutMs: 120_000,
        what: "every transaction",
      });
      const [check] = await subscriber.sql`
      select count(*)::int as rows, count(distinct n)::int as distinct_rows from ledger`;
      assert.deepEqual(check, { rows: total, distinct_rows: total });
      const result = await daemon.interrupt("SIGTERM");
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      // Written at most once a second while applying, and at shutdown: the last commit.
      const [last] = await provider.sql`
      select max(pg_xact_commit_timestamp(xmin))::text as ts from ledger`;
      const [progress] = await subscriber
        .sql`select remote_commit_ts::text as ts from spock.progress`;
      assert.equal(progress.ts, last.ts);
    } catch (error) {
      console.error(`--- spock run (last) ---\n${daemon.stderr.slice(-4000)}`);
      throw error;
    } finally {
      await daemon.kill();
      await closeNodes(nodes).catch(() => {});
    }
  },
);
