/**
 * Lag means work not yet applied: a caught-up link that stays idle for 30 s
 * reports a lag under 2 s in spock.lag_tracker and in `spock status` (the
 * provider's keepalives tell the subscriber it is caught up), and a disabled
 * link's lag grows while the provider writes.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  type TestNode,
  waitForRow,
  waitForSync,
} from "./_mesh.ts";

async function lagSeconds(node: TestNode, provider: string): Promise<number> {
  const [row] = await node.sql`select extract(epoch from replication_lag)::float8 as s
    from spock.lag_tracker where origin_name = ${provider}`;
  return row.s;
}

pgTest("lag stays near 0 on an idle link and grows on a disabled one", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["gp", "gs"], "create table t (k int primary key)");
  const [provider, subscriber] = nodes;
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider);
  const daemon = runDaemon([subscriber]);
  try {
    await waitForSync(subscriber, sub);
    await provider.sql`insert into t values (1)`;
    await waitForRow(subscriber, "t", "k", 1);

    const idleSince = performance.now();
    const samples: number[] = [];
    await pollUntil(async () => {
      samples.push(await lagSeconds(subscriber, provider.name));
      return performance.now() - idleSince >= 30_000 || undefined;
    }, { timeoutMs: 40_000, intervalMs: 500, what: "30 s of an idle link" });
    const worst = Math.max(...samples.slice(4));
    assert.ok(worst < 2, `lag up to ${worst.toFixed(2)} s on an idle, caught-up link`);
    const status = await runSpock(["status", "--dsn", subscriber.dsn, "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const [reported] = JSON.parse(status.stdout).subscriptions;
    assert.ok(reported.lag_seconds < 2, `spock status reports ${reported.lag_seconds} s`);

    await subscriber.sql`select spock.sub_disable(${sub})`;
    await pollUntil(async () => {
      const [row] = await subscriber.sql`select status from spock.sub_show_status(${sub})`;
      return row.status === "disabled" || undefined;
    }, { what: "the subscription to stop" });
    const before = await lagSeconds(subscriber, provider.name);
    const writing = performance.now();
    await pollUntil(async () => {
      await provider.sql`insert into t select coalesce(max(k), 0) + 1 from t`;
      return performance.now() - writing >= 3_000 || undefined;
    }, { intervalMs: 100, what: "three seconds of provider writes" });
    const after = await lagSeconds(subscriber, provider.name);
    assert.ok(after - before >= 2.5, `lag went from ${before} s to ${after} s`);
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
