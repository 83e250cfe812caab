/**
 * Exactly-once across crashes: `spock run` is SIGKILLed at random moments
 * while the provider commits numbered transactions, and restarted each time;
 * then the server itself restarts mid-stream. The subscriber ends with every
 * transaction exactly once, and the daemon resumes by itself.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  subscribe,
  type TestNode,
  waitForSync,
} from "./_mesh.ts";

// No primary key: a transaction applied twice shows up as duplicate rows.
const TABLES = `
create table ledger (n int not null, part int not null, payload text);
`;
const PARTS = 3;

/**
 * Commits transactions numbered from `from` until `stop()` is called or
 * `limit` were written; resolves the last number.
 */
function writer(node: TestNode, from: number, limit = 20_000): { stop(): Promise<number> } {
  let stopping = false;
  let n = from;
  const done = (async () => {
    while (!stopping && n < from + limit) {
      await node.sql`insert into ledger select ${n}::int, p, repeat('x', 50)
        from generate_series(1, ${PARTS}::int) p`;
      n++;
    }
    return n - 1;
  })();
  done.catch(() => {}); // Awaited by stop(); a test that fails first must not leave it unhandled.
  return {
    async stop() {
      stopping = true;
      return await done;
    },
  };
}

async function appliedCount(node: TestNode): Promise<number> {
  const [row] = await node.sql`select count(*)::int as n from ledger`;
  return row.n;
}

function startDaemon(subscriber: TestNode): SpockProcess {
  return new SpockProcess(["run", "--dsn", subscriber.dsn, "--log-level", "debug"]);
}

pgTest(
  "spock run survives SIGKILL at random moments without losing or repeating a transaction",
  async (_t, cluster) => {
    const nodes = await createNodes(cluster, ["prov", "subs"], TABLES);
    const [provider, subscriber] = nodes;
    await provider.sql`select spock.repset_add_table('default_insert_only', 'ledger')`;
    await addAllTables([]);
    const sub = await subscribe(subscriber, provider, { sets: ["default_insert_only"] });
    let daemon = startDaemon(subscriber);
    try {
      await waitForSync(subscriber, sub);
      const load = writer(provider, 1);
      for (let kill = 0; kill < 4; kill++) {
        const before = await appliedCount(subscriber);
        await pollUntil(async () => await appliedCount(subscriber) > before + 30, {
          timeoutMs: 30_000,
          what: `the daemon to apply more transactions (round ${kill})`,
        });
        // A random moment within the next few hundred transactions.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 300));
        await daemon.kill();
        daemon = startDaemon(subscriber);
      }
      const last = await load.stop();
      await pollUntil(async () => await appliedCount(subscriber) >= last * PARTS, {
        timeoutMs: 60_000,
        what: "every transaction to be applied",
      });
      const [check] = await subscriber.sql`
      select count(*)::int as rows, count(distinct (n, part))::int as distinct_rows,
        min(n) as first, max(n) as last from ledger`;
      assert.deepEqual(check, { rows: last * PARTS, distinct_rows: last * PARTS, first: 1, last });

      // The server restarts under the daemon (provider and subscriber alike).
      const second = writer(provider, last + 1, 500);
      await pollUntil(async () => await appliedCount(subscriber) > (last + 20) * PARTS, {
        what: "apply to go on after the crashes",
      });
      const stopped = await second.stop();
      await closeNodes(nodes);
      await cluster.restart();
      provider.sql = cluster.connect({ database: "prov", max: 3 });
      subscriber.sql = cluster.connect({ database: "subs", max: 3 });
      const third = writer(provider, stopped + 1, 500);
      await pollUntil(async () => await appliedCount(subscriber) > (stopped + 20) * PARTS, {
        timeoutMs: 60_000,
        what: "replication to resume after the server restart",
      });
      const end = await third.stop();
      await pollUntil(async () => await appliedCount(subscriber) === end * PARTS, {
        timeoutMs: 60_000,
        what: `every transaction after the restart (up to ${end})`,
      }).catch(async (error) => {
        const [seen] = await subscriber.sql`select count(*)::int as rows,
          count(distinct (n, part))::int as distinct_rows, max(n) as last from ledger`;
        throw new Error(`${error.message}: ${JSON.stringify(seen)}`);
      });
      const [final] = await subscriber.sql`
      select count(distinct (n, part))::int as distinct_rows from ledger`;
      assert.equal(final.distinct_rows, end * PARTS);
      const result = await daemon.interrupt("SIGTERM");
      assert.equal(result.code, 0, result.stderr.slice(-2000));
    } catch (error) {
      // The last lines but the per-transaction ones.
      const lines = daemon.stderr.split("\n").filter((line) =>
        !line.includes("Applied remote transaction")
      );
      console.error(`--- spock run (last) ---\n${lines.slice(-80).join("\n")}`);
      throw error;
    } finally {
      await daemon.kill();
      await closeNodes(nodes).catch(() => {});
    }
  },
  { everyVersion: true },
);
