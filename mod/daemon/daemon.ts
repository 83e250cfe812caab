/**
 * `spock run`: one supervisor per served node, all stopped by one signal.
 * The daemon names itself (host:pid) in the heartbeat rows it writes.
 */
import { getLogger } from "@logtape/logtape";
import { maskDsn } from "../pg/mod.ts";
import type { EngineSettings } from "../config/mod.ts";
import {
  type NodeSnapshot,
  NodeSupervisor,
  type ServedNode,
  type WorkerSummary,
} from "./node_supervisor.ts";

const log = getLogger(["spock", "daemon"]);

/** What the daemon serves and how. */
export interface DaemonOptions {
  nodes: ServedNode[];
  engine: EngineSettings;
  env: Record<string, string | undefined>;
  /** Stops the daemon: workers finish or roll back, confirm, disconnect. */
  signal: AbortSignal;
}

/** A running daemon; `done` resolves once everything has stopped. */
export interface Daemon {
  done: Promise<void>;
  /** What every worker has applied so far. */
  summaries(): WorkerSummary[];
  /** Every served node now, or why it cannot be read (for metrics and health). */
  snapshots(): Promise<NodeReading[]>;
}

/** One served node's snapshot, or the error reading it. */
export type NodeReading =
  | { node: string; snapshot: NodeSnapshot; error?: undefined }
  | { node: string; snapshot?: undefined; error: string };

/**
 * Starts serving `nodes` until `signal` aborts. `done` rejects with a
 * {@link ServedNodeError} when a node cannot be served as configured (the
 * other nodes are then stopped too): a configuration that cannot work ends
 * the daemon at start rather than leaving it idle.
 */
export function startDaemon(options: DaemonOptions): Daemon {
  if (options.nodes.length === 0) {
    throw new RangeError("The daemon needs at least one node to serve");
  }
  const daemon = `${Deno.hostname()}:${Deno.pid}`;
  const supervisors = options.nodes.map((node) =>
    new NodeSupervisor(node, { engine: options.engine, daemon, env: options.env })
  );
  const failed = new AbortController();
  const signal = AbortSignal.any([options.signal, failed.signal]);
  let failure: unknown;
  const done = Promise.all(supervisors.map((supervisor) =>
    supervisor.run(signal).catch((error) => {
      failure ??= error;
      failed.abort(error);
    })
  )).then(() => {
    if (failure !== undefined) throw failure;
    log.info("Daemon stopped");
  });
  const snapshots = () =>
    Promise.all(supervisors.map(async (supervisor): Promise<NodeReading> => {
      const node = supervisor.node.name ?? maskDsn(supervisor.node.dsn);
      try {
        return { node, snapshot: await supervisor.snapshot() };
      } catch (error) {
        return { node, error: error instanceof Error ? error.message : String(error) };
      }
    }));
  return { done, summaries: () => supervisors.flatMap((s) => s.summaries()), snapshots };
}
