/**
 * The workloads of ../shared/bench/native_baseline.sh, run against one engine
 * on one cluster pair, timed the same way: catch-up and visibility by a marker
 * row inserted on the provider right after the workload and polled on the
 * subscriber every ~10 ms (apply keeps commit order, so once it is visible
 * everything before it is applied). Engines are `_replication_engines.ts`'s.
 *
 *   (a) initial sync: subscribe → subscription and every table ready
 *   (b) pgbench simple-update / tpcb-like, live and backlog
 *   (c) one transaction inserting N rows: provider commit → last row visible
 *   (d) N single-row INSERT transactions from 8 clients, live and backlog
 *   (e) one transaction updating N rows, then one deleting them: provider
 *       commit → a marker committed right after it visible
 *
 * live: applying during the run; catch-up = pgbench exit → marker visible,
 * rate = txns / (pgbench start → marker visible). backlog: not applying during
 * the run; window = apply process exists → marker visible, rate = txns / window.
 */
import { checkpointBoth, type ClusterPair, DATABASE, pgbench } from "./_replication_cluster.ts";
import type { Engine } from "./_replication_engines.ts";
import { LagSampler, type LagSummary } from "./_replication_lag.ts";
import { insertMarker, markerVisible, waitFor } from "./_replication_poll.ts";

/** Workload sizes (native_baseline.sh's defaults: 10, 30, 1,000,000, 100,000). */
export interface WorkloadSettings {
  scale: number;
  seconds: number;
  rows: number;
  txns: number;
  /** Rows of the (e) UPDATE and DELETE transactions. */
  changeRows: number;
  workloads: ReadonlySet<string>;
}

const B_CLIENTS = 4;
const D_CLIENTS = 8;
const B_SCRIPTS = [["simple-update", 2], ["tpcb-like", 4]] as const;
export type Mode = "live" | "backlog";
const MODES: Mode[] = ["live", "backlog"];

/** One measured line. */
export interface WorkloadResult {
  /** `a`, `b simple-update`, `c`, `d` … */
  workload: string;
  mode: Mode | "update" | "delete" | "-";
  txns: number;
  rows: number;
  providerTps?: number;
  /** (a) sync time, (c) commit → visible, live catch-up, backlog apply window. */
  seconds: number;
  /** Rows/s for (a) and (c), transactions/s otherwise, over the apply window. */
  rate: number;
  rateUnit: "rows/s" | "tx/s";
  lag?: LagSummary;
  peakRssKb?: number;
}

/** Runs the workloads in order and collects their results. */
export class WorkloadRunner {
  #pair: ClusterPair;
  #engine: Engine;
  #settings: WorkloadSettings;
  #progress: (line: string) => void;
  readonly results: WorkloadResult[] = [];

  constructor(
    pair: ClusterPair,
    engine: Engine,
    settings: WorkloadSettings,
    progress: (line: string) => void,
  ) {
    this.#pair = pair;
    this.#engine = engine;
    this.#settings = settings;
    this.#progress = progress;
  }

  /** (a), then (b), (c), (d), (e) as selected; (a) always runs since it subscribes. */
  async run(): Promise<void> {
    const selected = this.#settings.workloads;
    await this.initialSync(selected.has("a"));
    if (selected.has("b")) {
      await this.#pair.p.unsafe("vacuum analyze pgbench_branches, pgbench_tellers");
      for (const [script, rowsPerTxn] of B_SCRIPTS) {
        for (const mode of MODES) {
          await this.#pair.p.unsafe("truncate pgbench_history");
          await this.#pair.p.unsafe("vacuum pgbench_branches, pgbench_tellers");
          const clients = B_CLIENTS;
          await this.#pgbenchRun(`b ${script}`, mode, rowsPerTxn, [
            ...["-n", "-b", script, "-c", String(clients), "-j", String(jobs(clients))],
            ...["-T", String(this.#settings.seconds)],
          ]);
        }
      }
    }
    if (selected.has("c")) await this.bigTransaction();
    if (selected.has("d")) {
      const script = await Deno.makeTempFile({ suffix: ".sql" });
      await Deno.writeTextFile(
        script,
        "insert into small_tx (payload) values (md5(random()::text));\n",
      );
      try {
        const perClient = Math.floor(this.#settings.txns / D_CLIENTS);
        for (const mode of MODES) {
          await this.#pair.p.unsafe("truncate small_tx");
          await this.#pgbenchRun("d", mode, 1, [
            ...["-n", "-f", script, "-c", String(D_CLIENTS), "-j", String(jobs(D_CLIENTS))],
            ...["-t", String(perClient)],
          ]);
        }
      } finally {
        await Deno.remove(script);
      }
    }
    if (selected.has("e")) await this.bigChanges();
  }

  /** (a): subscribe with data copy; seconds until the subscription and all tables are ready. */
  async initialSync(report: boolean): Promise<void> {
    const { p, s } = this.#pair;
    const [{ rows }] = await p.unsafe(
      "select (select count(*) from pgbench_accounts) + (select count(*) from pgbench_tellers) + " +
        "(select count(*) from pgbench_branches) as rows",
    );
    this.#progress(`(a) initial sync of ${Number(rows).toLocaleString("en")} rows`);
    const started = performance.now();
    await this.#engine.subscribe(this.#pair);
    // spock's sync has been seen to hang (see the report): fail in minutes, not 20.
    const ready = await waitFor(s, this.#engine.syncDoneSql, {
      what: `the initial sync of ${this.#engine.name}`,
      timeoutMs: 300_000,
      check: () => this.#engine.assertAlive(),
    });
    const [{ n }] = await s.unsafe("select count(*)::int8 as n from pgbench_accounts");
    if (Number(n) !== this.#settings.scale * 100_000) {
      throw new Error(`The subscriber has ${n} pgbench_accounts rows after the initial sync`);
    }
    const seconds = (ready - started) / 1000;
    if (report) {
      this.#add({
        workload: "a",
        mode: "-",
        txns: 1,
        rows: Number(rows),
        seconds,
        rate: Number(rows) / seconds,
        rateUnit: "rows/s",
        peakRssKb: await this.#engine.peakRssKb(),
      });
    }
    await s.unsafe("vacuum analyze"); // hint bits and statistics on the copy (untimed)
  }

  /** (c): one transaction inserting `rows` rows; provider commit → last row visible. */
  async bigTransaction(): Promise<void> {
    const rows = this.#settings.rows;
    this.#progress(`(c) one transaction inserting ${rows.toLocaleString("en")} rows`);
    await this.#pair.p.unsafe("truncate big_tx");
    await this.#quiesce();
    await this.#engine.resetPeak();
    await this.#pair.p.unsafe(
      "insert into big_tx select g, (g % 1000)::int, md5(g::text) " +
        `from generate_series(1, ${rows}) g`,
    );
    const committed = performance.now();
    const visible = await this.#wait(`exists (select 1 from big_tx where id = ${rows})`, "(c)");
    const seconds = (visible - committed) / 1000;
    this.#add({
      workload: "c",
      mode: "-",
      txns: 1,
      rows,
      seconds,
      rate: rows / seconds,
      rateUnit: "rows/s",
      peakRssKb: await this.#engine.peakRssKb(),
    });
  }

  /** (e): one transaction updating `changeRows` rows of big_tx, then one deleting them. */
  async bigChanges(): Promise<void> {
    const rows = this.#settings.changeRows;
    const { p } = this.#pair;
    await p.unsafe("truncate big_tx");
    await p.unsafe(
      `insert into big_tx select g, 0, md5(g::text) from generate_series(1, ${rows}) g`,
    );
    const changes = [
      ["update", "update big_tx set v = v + 1, payload = md5(payload)"],
      ["delete", "delete from big_tx"],
    ] as const;
    for (const [mode, statement] of changes) {
      this.#progress(`(e) one transaction: ${statement} (${rows.toLocaleString("en")} rows)`);
      await this.#quiesce();
      await this.#engine.resetPeak();
      await p.unsafe(statement);
      const committed = performance.now();
      const visible = await this.#wait(markerVisible(await insertMarker(p)), `(e) ${mode}`);
      const seconds = (visible - committed) / 1000;
      this.#add({
        workload: "e",
        mode,
        txns: 1,
        rows,
        seconds,
        rate: rows / seconds,
        rateUnit: "rows/s",
        peakRssKb: await this.#engine.peakRssKb(),
      });
    }
  }

  async #pgbenchRun(workload: string, mode: Mode, rowsPerTxn: number, args: string[]) {
    this.#progress(`(${workload}) ${mode}: pgbench ${args.join(" ")}`);
    await this.#quiesce();
    if (mode === "backlog") await this.#engine.pause(this.#pair);
    await this.#engine.resetPeak();
    const samplerSql = mode === "live"
      ? this.#pair.subscriber.connect({ database: DATABASE })
      : undefined;
    const sampler = samplerSql ? new LagSampler(samplerSql) : undefined;
    const started = performance.now();
    let bench;
    let lag: LagSummary | undefined;
    try {
      bench = await pgbench(this.#pair.provider, args);
    } finally {
      lag = await sampler?.stop();
      await samplerSql?.end();
    }
    const ended = performance.now();
    const marker = await insertMarker(this.#pair.p);
    const applyFrom = mode === "backlog" ? await this.#engine.resume(this.#pair) : started;
    const visible = await this.#wait(markerVisible(marker), `(${workload}) ${mode}`);
    const window = (visible - applyFrom) / 1000;
    this.#add({
      workload,
      mode,
      txns: bench.txns,
      rows: bench.txns * rowsPerTxn,
      providerTps: bench.tps,
      seconds: mode === "live" ? (visible - ended) / 1000 : window,
      rate: bench.txns / window,
      rateUnit: "tx/s",
      lag,
      peakRssKb: await this.#engine.peakRssKb(),
    });
  }

  /** Caught up (marker round trip), then CHECKPOINT on both sides. */
  async #quiesce(): Promise<void> {
    await this.#wait(markerVisible(await insertMarker(this.#pair.p)), "a sync point");
    await checkpointBoth(this.#pair);
  }

  #wait(condition: string, what: string): Promise<number> {
    return waitFor(this.#pair.s, condition, { what, check: () => this.#engine.assertAlive() });
  }

  #add(result: WorkloadResult): void {
    this.results.push(result);
    const rate = `${Math.round(result.rate).toLocaleString("en")} ${result.rateUnit}`;
    const lag = result.lag
      ? `, lag p50 ${result.lag.p50Ms.toFixed(1)} ms p99 ${result.lag.p99Ms.toFixed(1)} ms`
      : "";
    this.#progress(`  ${this.#engine.name}: ${result.seconds.toFixed(3)} s, ${rate}${lag}`);
  }
}

function jobs(clients: number): number {
  return Math.min(clients, navigator.hardwareConcurrency);
}
