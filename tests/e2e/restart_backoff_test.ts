/**
 * A worker that keeps failing backs off: with the provider stopped, the
 * delays between its attempts double up to restart_delay_default (each one
 * recorded as the subscription's last error with its attempt number), and
 * the connections the daemon opens per second stay few, to the provider and
 * to the local server alike. Once the servers are back, replication resumes.
 */
import assert from "node:assert/strict";
import { Cluster, pgTest, pollUntil, TcpProxy } from "../_harness/mod.ts";
import { createNodeVia, runDaemon, waitForRow, waitForSync } from "./_mesh.ts";

/** The most connections opened within any one second of [from, to). */
function peakPerSecond(proxy: TcpProxy, from: number, to: number): number {
  let peak = 0;
  for (const start of proxy.openedAt.filter((at) => at >= from && at < to)) {
    peak = Math.max(peak, proxy.openedBetween(start, start + 1_000));
  }
  return peak;
}

pgTest("a failing worker backs off and opens few connections", async (_t, cluster) => {
  const other = await Cluster.start(cluster.install);
  const toProvider = TcpProxy.start({ host: other.host, port: other.port });
  const toLocal = TcpProxy.start({ host: cluster.host, port: cluster.port });
  const provider = await createNodeVia(
    other,
    "bp",
    toProvider.port,
    "create table t (k int primary key)",
  );
  const subscriber = await createNodeVia(
    cluster,
    "bs",
    toLocal.port,
    "create table t (k int primary key)",
  );
  const daemon = runDaemon([subscriber], { restart_delay_default: 4_000 });
  try {
    await provider.sql`select spock.repset_add_table('default', 't')`;
    await subscriber.sql`select spock.sub_create('sub_bs_bp', ${provider.dsn})`;
    await waitForSync(subscriber, "sub_bs_bp");
    await provider.sql`insert into t values (1)`;
    await waitForRow(subscriber, "t", "k", 1);

    // The provider stops (its clients with it): each failed attempt is recorded
    // with its attempt number and delay.
    await other.stopServer();
    const stoppedAt = performance.now();
    const delays = new Map<number, number>();
    await pollUntil(async () => {
      const [row] = await subscriber.sql`
        select attempt, extract(epoch from retry_at - errored_at) * 1000 as delay_ms,
          error_message from spock._sub_error`;
      if (row !== undefined) delays.set(row.attempt, Math.round(row.delay_ms));
      return delays.has(5) || undefined;
    }, { timeoutMs: 30_000, intervalMs: 50, what: "five failed attempts" });
    const observed = [1, 2, 3, 4, 5].map((attempt) => delays.get(attempt));
    assert.deepEqual(observed.slice(1), [1_000, 2_000, 4_000, 4_000], `delays ${observed}`);
    const providerPeak = peakPerSecond(toProvider, stoppedAt, performance.now());
    assert.ok(providerPeak <= 4, `${providerPeak} provider connections in one second`);

    // The provider is back: the worker resumes by itself.
    await other.startServer();
    const providerAgain = other.connect({ database: "bp" });
    await providerAgain`insert into t values (2)`;
    await waitForRow(subscriber, "t", "k", 2);

    // The local server stops for a while, then comes back.
    await cluster.stopServer();
    const localStoppedAt = performance.now();
    await pollUntil(() => performance.now() - localStoppedAt > 8_000 || undefined, {
      timeoutMs: 10_000,
      intervalMs: 200,
      what: "eight seconds with the local server down",
    });
    const localPeak = peakPerSecond(toLocal, localStoppedAt, performance.now());
    const localTotal = toLocal.openedBetween(localStoppedAt, performance.now());
    await cluster.startServer();
    assert.ok(localPeak <= 6, `${localPeak} local connections in one second`);
    assert.ok(localTotal <= 30, `${localTotal} local connections in 8 s`);
    const reconnected = cluster.connect({ database: "bs" });
    await providerAgain`insert into t values (3)`;
    await waitForRow({ ...subscriber, sql: reconnected }, "t", "k", 3);
  } finally {
    await daemon.stop();
    await toProvider.close();
    await toLocal.close();
    await other.stop();
  }
});
