/**
 * `deno task bench` (third part): spock against PostgreSQL's native logical
 * replication (CREATE SUBSCRIPTION), on the same server version and machine,
 * through the workloads of ../shared/bench/native_baseline.sh: (a) initial
 * sync, (b) pgbench live and backlog, (c) one big transaction, (d) many small
 * ones, (e) one big UPDATE and one big DELETE. Each engine gets two fresh clusters. Prints one markdown table per
 * version. Clusters, engines, workloads and printing live in `_replication_*.ts`.
 */
import { discoverInstalls, type PgInstall } from "../local_pg/mod.ts";
import { loadSchema, startPair, stopPair } from "./_replication_cluster.ts";
import { type Engine, NativeEngine, SpockEngine } from "./_replication_engines.ts";
import { compareTables } from "./_replication_cluster.ts";
import {
  type EngineResults,
  formatProviderTps,
  formatResultsTable,
} from "./_replication_report.ts";
import { WorkloadRunner, type WorkloadSettings } from "./_replication_workloads.ts";
import { machineInfo } from "./_report.ts";

const USAGE = `Usage: deno run --allow-all bench/replication_bench.ts [options]

  --pg LIST          PostgreSQL majors to run, e.g. 17 or 15,17 (default: 15 and 17 when present)
  --workloads LIST   of a,b,c,d,e (default: all; (a) always runs since it subscribes)
  --engines LIST     of native,spock (default: both)
  --scale N          pgbench scale for (a) and (b) (default 10)
  --seconds N        duration of each (b) pgbench run (default 30)
  --rows N           rows of the (c) transaction (default 1000000)
  --txns N           single-row transactions of (d) (default 100000)
  --change-rows N    rows of the (e) UPDATE and DELETE transactions (default 200000)
  --quick            scale 1, 5 s, 100000 rows, 10000 txns, 20000 changed rows (about 2 minutes per version)
  --cpu-prof DIR     write a V8 CPU profile of each spock daemon process into DIR
  --latency-ms N     spock's daemon reaches the subscriber through a proxy adding N ms of round trip

The full default takes about 12-20 minutes per PostgreSQL version (both engines).`;

interface BenchArgs extends WorkloadSettings {
  majors: number[] | undefined;
  engines: ReadonlySet<string>;
  cpuProfileDir: string | undefined;
  latencyMs: number;
}

function parseArgs(args: string[]): BenchArgs | undefined {
  const parsed: BenchArgs = {
    scale: 10,
    seconds: 30,
    rows: 1_000_000,
    txns: 100_000,
    changeRows: 200_000,
    workloads: new Set(["a", "b", "c", "d", "e"]),
    majors: undefined,
    engines: new Set(["native", "spock"]),
    cpuProfileDir: undefined,
    latencyMs: 0,
  };
  const numeric = ["scale", "seconds", "rows", "txns", "change-rows"] as const;
  const fields = { "change-rows": "changeRows" } as Record<string, string>;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => inline ?? args[++i];
    const name = flag.replace(/^--/, "");
    if (flag === "--quick") {
      Object.assign(parsed, {
        scale: 1,
        seconds: 5,
        rows: 100_000,
        txns: 10_000,
        changeRows: 20_000,
      });
    } else if ((numeric as readonly string[]).includes(name)) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) return undefined;
      (parsed as unknown as Record<string, number>)[fields[name] ?? name] = n;
    } else if (flag === "--workloads") {
      parsed.workloads = new Set(value()?.split(","));
      if ([...parsed.workloads].some((w) => !"abcde".includes(w) || w.length !== 1)) return;
    } else if (flag === "--engines") {
      parsed.engines = new Set(value()?.split(","));
      if ([...parsed.engines].some((e) => e !== "native" && e !== "spock")) return undefined;
    } else if (flag === "--pg") {
      parsed.majors = value()?.split(",").map(Number);
      if (parsed.majors?.some((m) => !Number.isInteger(m))) return undefined;
    } else if (flag === "--latency-ms") {
      parsed.latencyMs = Number(value());
      if (!(parsed.latencyMs >= 0)) return undefined;
    } else if (flag === "--cpu-prof") {
      parsed.cpuProfileDir = value();
      if (!parsed.cpuProfileDir) return undefined;
    } else return undefined;
  }
  return parsed;
}

async function selectInstalls(majors: number[] | undefined): Promise<PgInstall[]> {
  const all = await discoverInstalls();
  const wanted = majors ?? [15, 17];
  const chosen = all.filter((install) => wanted.includes(install.major));
  const missing = wanted.filter((m) => !chosen.some((install) => install.major === m));
  if (majors !== undefined && missing.length > 0) {
    throw new Error(`PostgreSQL ${missing.join(", ")} is not installed`);
  }
  return chosen.length > 0 ? chosen : all.slice(0, 1);
}

/** One engine on two fresh clusters: load, prepare, run the workloads, check, stop. */
async function runEngine(
  install: PgInstall,
  engine: Engine,
  settings: WorkloadSettings,
): Promise<WorkloadRunner["results"]> {
  const progress = (line: string) =>
    console.log(`[${new Date().toISOString().slice(11, 19)}] pg${install.major} ${line}`);
  progress(`${engine.name}: two fresh clusters, pgbench -i -s ${settings.scale}`);
  const pair = await startPair(install);
  try {
    await loadSchema(pair, settings.scale);
    await engine.prepare(pair);
    await pair.p.unsafe("checkpoint");
    await pair.s.unsafe("checkpoint");
    const runner = new WorkloadRunner(pair, engine, settings, progress);
    try {
      await runner.run();
      const differ = await compareTables(pair);
      if (differ.length > 0) {
        throw new Error(`Provider and subscriber differ: ${differ.join("; ")}`);
      }
      progress(`${engine.name}: provider = subscriber on every data table`);
    } finally {
      await engine.close();
    }
    return runner.results;
  } finally {
    await stopPair(pair);
  }
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args);
  if (args === undefined) {
    console.error(USAGE);
    return 2;
  }
  const installs = await selectInstalls(args.majors);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
  const outDir = `/tmp/spock-bench/replication-${stamp}`;
  await Deno.mkdir(outDir, { recursive: true });
  if (args.cpuProfileDir) await Deno.mkdir(args.cpuProfileDir, { recursive: true });
  const machine = await machineInfo();
  const tables: string[] = [];
  for (const install of installs) {
    const results: EngineResults = { native: [], spock: [] };
    if (args.engines.has("native")) {
      results.native = await runEngine(install, new NativeEngine(), args);
    }
    if (args.engines.has("spock")) {
      const engine = new SpockEngine({
        logPath: `${outDir}/daemon-pg${install.major}.log`,
        cpuProfileDir: args.cpuProfileDir,
        latencyMs: args.latencyMs,
      });
      results.spock = await runEngine(install, engine, args);
    }
    tables.push(
      `### PostgreSQL ${install.version} (${install.binDir})\n\n` +
        `${formatResultsTable(results)}\n\n${formatProviderTps(results)}`,
    );
  }
  const command = `deno run --allow-all bench/replication_bench.ts ${Deno.args.join(" ")}`.trim();
  console.log(
    `\n## Replication: spock vs native logical replication\n\n` +
      `${command}\n` +
      `${machine.cpus} × ${machine.cpu}, ${machine.os}, Deno ${machine.deno}; ` +
      `scale ${args.scale}, (b) ${args.seconds} s, (c) ${args.rows} rows, (d) ${args.txns} txns, ` +
      `(e) ${args.changeRows} rows; daemon logs in ${outDir}\n` +
      `Times: (a) subscribe → all tables ready; (c) provider commit → last row visible; ` +
      `(e) provider commit → a marker after it visible; ` +
      `live: pgbench exit → marker visible; backlog: apply process start → marker visible. ` +
      `Rates over the apply window (live: pgbench start → marker visible).\n\n` +
      tables.join("\n\n"),
  );
  return 0;
}

Deno.exit(await main());
