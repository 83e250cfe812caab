/**
 * The daemon's monitoring server on a provider and subscriber pair: /metrics
 * parses as Prometheus text and its state, lag, counters, exceptions and slot
 * figures match the catalog; /health is 200 while the subscription
 * replicates and 503, saying why, once it is disabled; Spock's
 * get_apply_worker_status() and wait_for_apply_worker() see the same worker.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { serveMonitoring } from "../../mod/daemon/mod.ts";
import { checkedPair, closeNodes, runDaemon, waitForSync } from "./_mesh.ts";

/** Prometheus text format 0.0.4: comments, and `name{labels} value` samples. */
const COMMENT = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/;
const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;

/** The samples of a scrape by `name{labels}`; throws on a line that is not Prometheus text. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || COMMENT.test(line)) continue;
    const match = SAMPLE.exec(line);
    assert.ok(match, `not Prometheus text: ${JSON.stringify(line)}`);
    samples.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
  }
  return samples;
}

pgTest("/metrics matches the catalog and /health follows the subscription", async (_t, cluster) => {
  const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["p1", "s1"]);
  const daemon = runDaemon(nodes);
  const stop = new AbortController();
  try {
    await waitForSync(subscriber, sub);
    await provider.sql`insert into t select g, g from generate_series(1, 5) g`;
    // v >= 100 breaks the subscriber's CHECK: one exception, discarded with its transaction.
    await provider.sql`insert into t values (6, 500)`;
    await provider.sql`insert into t values (7, 7)`;
    // The workers flush their counters into the catalog once a second.
    await pollUntil(async () => {
      const [row] = await subscriber.sql`select sum(n_tup_ins)::int as n
        from spock.channel_table_stats where sub_name = ${sub}`;
      return row.n === 6 || undefined;
    }, { what: "the rows counted on the subscriber" });

    const { address } = await serveMonitoring(daemon, {
      hostname: "127.0.0.1",
      port: 0,
      signal: stop.signal,
    });
    const base = `http://127.0.0.1:${address.port}`;
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const metrics = parseMetrics(await response.text());
    const labels = `node="s1",subscription="${sub}",provider="p1"`;
    const [stats] = await subscriber.sql`select sum(n_tup_ins)::float8 as inserts
      from spock.channel_table_stats where sub_name = ${sub}`;
    const [lag] = await subscriber.sql`select extract(epoch from replication_lag)::float8 as s
      from spock.lag_tracker where origin_name = 'p1' and receiver_name = 's1'`;
    const [slot] = await provider.sql`select slot_name from pg_replication_slots`;
    assert.equal(metrics.get(`spock_node_up{node="s1"}`), 1);
    assert.equal(metrics.get(`spock_node_up{node="p1"}`), 1);
    assert.equal(metrics.get(`spock_subscription_replicating{${labels}}`), 1);
    assert.equal(metrics.get(`spock_subscription_state{${labels},status="replicating"}`), 1);
    assert.equal(
      metrics.get(`spock_subscription_rows_applied_total{${labels},operation="insert"}`),
      stats.inserts,
    );
    assert.equal(stats.inserts, 6);
    assert.equal(
      metrics.get(`spock_subscription_exceptions_total{node="s1",subscription="${sub}"}`),
      1,
    );
    const lagSeconds = metrics.get(`spock_subscription_lag_seconds{${labels}}`)!;
    assert.ok(Math.abs(lagSeconds - lag.s) < 2, `lag ${lagSeconds} s, the catalog's ${lag.s} s`);
    assert.ok(metrics.has(`spock_subscription_lag_bytes{${labels}}`));
    assert.ok(metrics.get(`spock_subscription_transactions_applied_total{${labels}}`)! >= 2);
    assert.equal(metrics.get(`spock_worker_restarts_total{${labels}}`), 0);
    assert.equal(metrics.get(`spock_slot_active{node="p1",slot="${slot.slot_name}"}`), 1);
    assert.ok(
      metrics.get(`spock_slot_retained_wal_bytes{node="p1",slot="${slot.slot_name}"}`)! >= 0,
    );
    assert.ok(metrics.get("spock_daemon_resident_memory_bytes")! > 0);

    // Scrapes at once each see every sample (one renders after the other).
    const scrapes = await Promise.all(
      [1, 2, 3].map(async () => parseMetrics(await (await fetch(`${base}/metrics`)).text())),
    );
    for (const scrape of scrapes) {
      assert.equal(scrape.get(`spock_subscription_replicating{${labels}}`), 1);
      assert.equal(scrape.get(`spock_node_up{node="p1"}`), 1);
      assert.ok(scrape.has("spock_daemon_resident_memory_bytes"));
    }

    const healthy = await fetch(`${base}/health`);
    assert.equal(healthy.status, 200);
    assert.deepEqual(await healthy.json(), { healthy: true, problems: [] });

    // Spock's view of the worker: running, and still running after 300 ms.
    const [subId] = await subscriber.sql`select sub_id::int8::text as id from spock.subscription`;
    const workers = await subscriber.sql`select worker_subid::text, worker_status,
      worker_dboid = (select oid from pg_database where datname = current_database()) as here
      from spock.get_apply_worker_status()`;
    assert.deepEqual(workers.map((w) => ({ ...w })), [
      { worker_subid: subId.id, worker_status: "running", here: true },
    ]);
    const [still] = await subscriber.sql`select spock.wait_for_apply_worker(${subId.id}, 300) as r`;
    assert.equal(still.r, true);
    // With no timeout it returns false once the worker stops.
    const stopped = subscriber.sql.begin(async (tx) => {
      await tx`set local statement_timeout = '20s'`;
      const [row] = await tx`select spock.wait_for_apply_worker(${subId.id}) as r`;
      return row.r;
    });
    await subscriber.sql`select spock.sub_disable(${sub})`;
    assert.equal(await stopped, false);
    const body = await pollUntil(async () => {
      const health = await fetch(`${base}/health`);
      const json = await health.json();
      return health.status === 503 ? json : undefined;
    }, { what: "/health answering 503" });
    assert.deepEqual(body, {
      healthy: false,
      problems: [`subscription ${sub} of node s1 is disabled`],
    });
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    stop.abort();
    await daemon.stop();
    await closeNodes(nodes);
  }
});
