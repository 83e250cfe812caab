/**
 * apply_delay: each transaction is applied no earlier than its commit time
 * plus the subscription's delay, and then without further wait.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { addAllTables, closeNodes, createNodes, runDaemon, waitForSync } from "./_mesh.ts";

const DELAY_MS = 1_500;

pgTest(
  "apply_delay holds a transaction until its commit time plus the delay",
  async (_t, cluster) => {
    const nodes = await createNodes(cluster, ["dp", "ds"], "create table t (id int primary key)");
    const [provider, subscriber] = nodes;
    await addAllTables([provider]);
    const daemon = runDaemon(nodes);
    try {
      await subscriber.sql`select spock.sub_create('delayed', ${provider.dsn},
      apply_delay := ${`${DELAY_MS} milliseconds`}::interval)`;
      await waitForSync(subscriber, "delayed");
      const started = performance.now();
      await provider.sql`insert into t values (1)`;
      await pollUntil(async () => {
        const [row] = await subscriber.sql`select count(*)::int as n from t`;
        return row.n === 1;
      }, { intervalMs: 10, what: "the delayed row" });
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= DELAY_MS - 50, `applied after ${elapsed.toFixed(0)} ms`);
      assert.ok(elapsed < DELAY_MS + 5_000, `applied after ${elapsed.toFixed(0)} ms`);
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
