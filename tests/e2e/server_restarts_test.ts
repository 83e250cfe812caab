/**
 * The subscriber's server restarts (fast shutdown) again and again under a
 * steady stream of transactions. A shutdown that terminates the apply session
 * inside a COMMIT aborts it, and PostgreSQL 16+ moves the origin past it all
 * the same, often before its answer reached the daemon: every transaction
 * must still arrive exactly once.
 */
import assert from "node:assert/strict";
import { Cluster, pgTest, pollUntil } from "../_harness/mod.ts";
import { createNodes, runDaemon, subscribe, type TestNode, waitForSync } from "./_mesh.ts";

const RESTARTS = 8;
const PARTS = 3;
const TABLE = "create table ledger (n int not null, part int not null)";

async function rowsOf(node: TestNode): Promise<number> {
  const [row] = await node.sql`select count(*)::int as c from ledger`;
  return row.c;
}

pgTest("every transaction arrives once across repeated subscriber restarts", async (
  _t,
  cluster,
) => {
  const other = await Cluster.start(cluster.install);
  const [provider] = await createNodes(other, ["rp"], TABLE);
  const [subscriber] = await createNodes(cluster, ["rs"], TABLE);
  await provider.sql`select spock.repset_add_table('default_insert_only', 'ledger')`;
  const sub = await subscribe(subscriber, provider, { sets: ["default_insert_only"] });
  const daemon = runDaemon([subscriber], { restart_delay_default: 300 });
  let stopping = false;
  let written = 0;
  let writing: Promise<void> | undefined;
  try {
    await waitForSync(subscriber, sub);
    writing = (async () => {
      while (!stopping) {
        await provider.sql`insert into ledger select ${written + 1}::int, p
          from generate_series(1, ${PARTS}::int) p`;
        written++;
      }
    })();
    for (let round = 0; round < RESTARTS; round++) {
      const before = written;
      await pollUntil(async () => await rowsOf(subscriber) > (before - 5) * PARTS || undefined, {
        timeoutMs: 60_000,
        what: `apply to catch up before restart ${round + 1}`,
      });
      await cluster.restart();
      subscriber.sql = cluster.connect({ database: "rs", max: 3 });
    }
    stopping = true;
    await writing;
    await pollUntil(async () => await rowsOf(subscriber) >= written * PARTS || undefined, {
      timeoutMs: 60_000,
      what: `all ${written} transactions`,
    }).catch(() => {});
    const gaps = await subscriber.sql`select n, next from (select n, lead(n) over (order by n) next
      from (select distinct n from ledger) d) x where next <> n + 1`;
    const [seen] = await subscriber.sql`select count(*)::int as rows,
      count(distinct n)::int as transactions, min(n) as first, max(n) as last from ledger`;
    assert.deepEqual([...gaps], [], `transactions missing after these: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen, {
      rows: written * PARTS,
      transactions: written,
      first: 1,
      last: written,
    });
  } finally {
    stopping = true;
    await writing?.catch(() => {});
    await daemon.stop();
    await other.stop();
  }
});
