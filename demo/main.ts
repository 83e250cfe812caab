/**
 * `deno task demo`: three local PostgreSQL servers from the embedded binaries,
 * a spock node on each and a full mesh built through the SQL API, the daemon
 * run in this process, writes on every node at once, the wait for
 * convergence and a short summary. `--keep` leaves the servers running. This
 * file owns argv, logging, signals, the order of the steps and the exit code.
 */
import {
  configure,
  getAnsiColorFormatter,
  getTextFormatter,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import type postgres from "postgres";
import { DEFAULT_ENGINE } from "../mod/config/mod.ts";
import { type Daemon, guardPostgresJsFaults, startDaemon } from "../mod/daemon/mod.ts";
import { LocalServers, serverDsn } from "./local_servers.ts";
import { createMesh, createNode, DATABASE, waitForSync } from "./_mesh.ts";
import { formatSummary, readLags } from "./_summary.ts";
import {
  countResolutions,
  expectedRows,
  updateOnTwoNodes,
  waitConverged,
  writeOnAllNodes,
} from "./_workload.ts";

const NODE_NAMES = ["n1", "n2", "n3"];

const USAGE = `Usage: deno task demo [--keep] [--verbose]

Starts ${NODE_NAMES.length} local PostgreSQL servers, makes them a spock full mesh, writes on all
of them at once and shows that they converge.

  --keep     leave the servers running and print how to connect and how to stop them
  --verbose  log the daemon's lifecycle (info level) to stderr
  --help     show this help
`;

/** Raised by the first SIGINT or SIGTERM to end the demo early. */
class InterruptedError extends Error {
  readonly code = "ERR_DEMO_INTERRUPTED";
}

async function setupLogging(level: LogLevel): Promise<void> {
  const formatter = Deno.stderr.isTerminal()
    ? getAnsiColorFormatter({ timestamp: "time" })
    : getTextFormatter({ timestamp: "date-time-tz" });
  const encoder = new TextEncoder();
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => Deno.stderr.writeSync(encoder.encode(formatter(record))),
    },
    loggers: [
      { category: ["spock"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Seconds since `since` (a `performance.now()`), to one decimal. */
function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

/** What the demo set up, for the clean-up however it ends. */
interface Resources {
  servers: LocalServers;
  clients: postgres.Sql[];
  daemonStop: AbortController;
  daemon: Daemon | undefined;
}

/** The steps, each printed as it completes. */
async function runDemo(resources: Resources, daemonFailed: (error: Error) => void): Promise<void> {
  const { servers } = resources;
  let stepStart = performance.now();
  function done(what: string): void {
    console.log(`${seconds(stepStart).padStart(7)}  ${what}`);
    stepStart = performance.now();
  }

  await servers.prepare();
  await servers.start();
  const { install } = servers;
  done(
    `started ${NODE_NAMES.length} PostgreSQL ${install.version} servers (${install.source}) ` +
      `in ${servers.dir}`,
  );

  const nodes = await Promise.all(
    servers.servers.map((server) => createNode(server, (sql) => resources.clients.push(sql))),
  );
  const subscriptions = await createMesh(nodes);
  const daemon = startDaemon({
    nodes: nodes.map(({ name, dsn }) => ({ name, dsn })),
    engine: { ...DEFAULT_ENGINE, save_resolutions: true },
    env: Deno.env.toObject(),
    signal: resources.daemonStop.signal,
  });
  resources.daemon = daemon;
  daemon.done.then(
    () => daemonFailed(new Error("The daemon stopped before the demo ended")),
    (error) => daemonFailed(new Error(`The daemon failed: ${error.message}`, { cause: error })),
  );
  await waitForSync(subscriptions);
  done(
    `created nodes ${nodes.map((n) => n.name).join(", ")} and a full mesh of ` +
      `${subscriptions.length} subscriptions; the daemon is replicating`,
  );

  const writesStart = performance.now();
  const counts = await writeOnAllNodes(nodes);
  done(
    `wrote on all ${nodes.length} nodes at once: ${counts.transactions} transactions, ` +
      `${counts.inserted} inserts, ${counts.updated} updates, ${counts.deleted} deletes`,
  );
  const updates = await updateOnTwoNodes(nodes);
  done(
    `updated ${updates.length} rows on two nodes each at once (` +
      updates.map(({ first, second }) => `${first.name} and ${second.name}`).join(", ") +
      "): conflicting updates",
  );
  const checksums = await waitConverged(nodes, { rows: expectedRows(nodes.length), updates });
  done(
    `converged: identical checksums on every node, ${
      seconds(writesStart)
    } after the first write; ` +
      `${await countResolutions(nodes)} conflicts resolved by last-update-wins and recorded ` +
      "in spock.resolutions",
  );

  const lags = await readLags(subscriptions);
  console.log(
    `\n${formatSummary({ checksums, subscriptions, workers: daemon.summaries(), lags })}`,
  );
}

/** Stops the daemon and closes the clients; stops and deletes the servers unless kept. */
async function cleanUp(resources: Resources, keep: boolean): Promise<void> {
  resources.daemonStop.abort();
  await resources.daemon?.done.catch(() => {});
  await Promise.all(resources.clients.map((sql) => sql.end({ timeout: 2 }).catch(() => {})));
  if (!keep) await resources.servers.destroy();
}

/** Writes spock.yaml and stop.sh into the demo's directory and says how to use the servers. */
async function describeKeptServers(servers: LocalServers): Promise<void> {
  const configPath = `${servers.dir}/spock.yaml`;
  const stopPath = `${servers.dir}/stop.sh`;
  const config = servers.servers.map((server) =>
    `  - name: ${server.name}\n    dsn: ${serverDsn(server, DATABASE)}\n`
  );
  await Deno.writeTextFile(
    configPath,
    `# spock demo (deno task demo --keep)\nnodes:\n${config.join("")}`,
  );
  await Deno.writeTextFile(stopPath, servers.stopScript(), { mode: 0o755 });
  const psql = servers.servers.map((server) =>
    `  ${server.name}  psql "${serverDsn(server, DATABASE)}"`
  );
  console.log(
    [
      "The servers keep running (replication does not: the daemon stopped with the demo).",
      ...psql,
      `Resume replication:  deno task spock run --config ${configPath}`,
      `Stop and delete:     sh ${stopPath}`,
      `  (as ${Deno.uid() === 0 ? "the postgres user" : "you"}: pg_ctl stop -m fast -D ` +
      `${servers.dir}/<node>/data for each node, then rm -rf ${servers.dir})`,
    ].join("\n"),
  );
}

/** Runs the demo with `args` and returns its exit code. */
async function main(args: string[]): Promise<number> {
  const flags = new Set(args);
  if (flags.has("--help") || flags.has("-h")) {
    console.log(USAGE);
    return 0;
  }
  const unknown = args.find((arg) => arg !== "--keep" && arg !== "--verbose");
  if (unknown !== undefined) {
    console.error(`spock demo: unknown option "${unknown}"\n\n${USAGE}`);
    return 2;
  }
  const keep = flags.has("--keep");
  await setupLogging(flags.has("--verbose") ? "info" : "warning");

  const started = performance.now();
  let fail!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) Deno.exit(130);
    fail(new InterruptedError("Interrupted"));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const unguard = guardPostgresJsFaults();

  const resources: Resources = {
    servers: new LocalServers(NODE_NAMES),
    clients: [],
    daemonStop: new AbortController(),
    daemon: undefined,
  };
  console.log(
    `spock demo: ${NODE_NAMES.length} nodes, a full mesh, writes on every node at once\n`,
  );
  let error: unknown;
  try {
    await Promise.race([runDemo(resources, fail), failed]);
  } catch (caught) {
    error = caught;
  }
  try {
    await cleanUp(resources, keep && error === undefined);
  } catch (cleanUpError) {
    error ??= cleanUpError;
  } finally {
    unguard();
  }
  if (error instanceof InterruptedError) {
    console.error("spock demo: interrupted; the servers are stopped and their files deleted");
    return 130;
  }
  if (error !== undefined) {
    console.error(`spock demo: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  if (keep) {
    try {
      await describeKeptServers(resources.servers);
    } catch (describeError) {
      await resources.servers.destroy();
      console.error(`spock demo: cannot describe the kept servers: ${describeError}`);
      return 1;
    }
  } else {
    console.log("The servers are stopped and their files deleted.");
  }
  console.log(`Total ${seconds(started)}.`);
  return 0;
}

Deno.exit(await main(Deno.args));
