/**
 * Lag means work not yet applied: a caught-up link that stays idle for 15 s
 * reports a lag under 2 s in spock.lag_tracker and in `spock status` (the
 * provider's keepalives tell the subscriber it is caught up), and a disabled
 * link's lag grows while the provider writes. Under steady writes the lag
 * stays under 2 s (progress is written once a second), and spock.progress
 * reaches the last commit within about a second of the writes ending.
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
      return performance.now() - idleSince >= 15_000 || undefined;
    }, { timeoutMs: 25_000, intervalMs: 500, what: "15 s of an idle link" });
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

pgTest(
  "under steady writes spock.progress and lag_tracker stay within a second or two",
  async (_t, cluster) => {
    const nodes = await createNodes(cluster, ["wp", "ws"], "create table t (k int primary key)");
    const [provider, subscriber] = nodes;
    await addAllTables([provider]);
    const sub = await subscribe(subscriber, provider);
    const daemon = runDaemon([subscriber]);
    try {
      await waitForSync(subscriber, sub);
      // Progress is written at most once a second, so the lag seen while
      // applying is that second at most, plus the apply time itself.
      const lags: number[] = [];
      let k = 0;
      const started = performance.now();
      await pollUntil(async () => {
        await provider.sql`insert into t values (${++k})`;
        if (k % 5 === 0) lags.push(await lagSeconds(subscriber, provider.name));
        return performance.now() - started >= 6_000 || undefined;
      }, { timeoutMs: 20_000, intervalMs: 20, what: "six seconds of provider writes" });
      const worst = Math.max(...lags.slice(5));
      assert.ok(worst < 2, `lag up to ${worst.toFixed(2)} s while applying steady writes`);
      // Once the writes stop, the progress row reaches the last commit at the first idle
      // keepalive: the daemon asks for one after 0.5 s without data.
      const [last] = await provider.sql`select pg_xact_commit_timestamp(xmin)::text as ts
        from t where k = ${k}`;
      const stopped = performance.now();
      await pollUntil(async () => {
        const [row] = await subscriber.sql`select remote_commit_ts::text as ts from spock.progress`;
        return row.ts === last.ts || undefined;
      }, { timeoutMs: 3_000, intervalMs: 50, what: "spock.progress to reach the last commit" });
      const caughtUp = (performance.now() - stopped) / 1000;
      assert.ok(caughtUp < 1.5, `progress caught up ${caughtUp.toFixed(2)} s after the writes`);
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
