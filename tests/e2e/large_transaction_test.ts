/**
 * A 1,000,000-row transaction applies through `spock run` with the daemon's
 * memory bounded: the walsender sends it after its commit, the stream pauses
 * its socket when the applier falls behind, and rows go out in pipelined
 * batches, so nothing holds the whole transaction (the compile task caps the
 * V8 heap at 256 MiB, which also keeps V8 from growing it lazily). The subscription's lag
 * (spock.lag_tracker) keeps growing while it applies.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import { closeNodes, createNodes, subscribe, waitForSync } from "./_mesh.ts";

const ROWS = 1_000_000;
const RSS_LIMIT_MB = 300;

/** The peak resident set size of process `pid`, in MiB (VmHWM). */
async function peakRssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

pgTest(
  "a 1,000,000-row transaction applies with the daemon's RSS under 300 MB",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["bigp", "bigs"],
      "create table wide (id int primary key, payload text, n bigint, at timestamptz)",
    );
    const [provider, subscriber] = nodes;
    await provider.sql`select spock.repset_add_all_tables('default', array['public'])`;
    const sub = await subscribe(subscriber, provider);
    const daemon = new SpockProcess(["run", "--dsn", subscriber.dsn]);
    try {
      await waitForSync(subscriber, sub);
      await provider.sql`insert into wide select g, md5(g::text) || repeat('x', 40), g * 3,
      '2026-01-01'::timestamptz + g * interval '1 ms' from generate_series(1, ${ROWS}::int) g`;
      const lags: number[] = [];
      await pollUntil(async () => {
        const [lag] = await subscriber.sql`
        select extract(epoch from replication_lag)::float8 as seconds from spock.lag_tracker
        where origin_name = 'bigp'`;
        lags.push(lag.seconds);
        const [row] = await subscriber.sql`select count(*)::int as n from wide`;
        return row.n === ROWS;
      }, { timeoutMs: 180_000, intervalMs: 500, what: "the big transaction to be applied" });
      const peak = await peakRssMb(daemon.pid);
      console.log(`daemon peak RSS ${peak.toFixed(0)} MiB while applying ${ROWS} rows in one txn`);
      assert.ok(peak < RSS_LIMIT_MB, `peak RSS ${peak.toFixed(0)} MiB`);
      // While it applied, the lag the user sees kept growing.
      assert.ok(lags.length >= 2 && lags.at(-2)! > lags[0], `lag samples ${lags.join(", ")}`);
      const result = await daemon.interrupt("SIGTERM");
      assert.equal(result.code, 0, result.stderr.slice(-2000));
    } catch (error) {
      console.error(`--- spock run ---\n${daemon.stderr.slice(-4000)}`);
      throw error;
    } finally {
      await daemon.kill();
      await closeNodes(nodes);
    }
  },
);
