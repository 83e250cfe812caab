/**
 * `spock run`: the replication daemon. Serves every node of the config file,
 * or the one database named by --dsn (or --node), until SIGINT/SIGTERM;
 * a second signal forces the exit.
 */
import { DEFAULT_ENGINE, parseListenAddress } from "../config/mod.ts";
import { type ListenAddress, serveMonitoring, startDaemon } from "../daemon/mod.ts";
import { DsnError, parseDsn } from "../pg/mod.ts";
import { type Command, UsageError } from "./command.ts";
import { TARGET_FLAGS, targetDsn } from "./_target.ts";

/** `spock run` */
export const runCommand: Command = {
  name: "run",
  summary: "Run the replication daemon for the nodes of the config file (or --dsn)",
  usage: "spock run [--config FILE] [--dsn DSN | --node NAME] [--metrics-listen HOST:PORT]",
  flags: {
    ...TARGET_FLAGS,
    "dsn": {
      ...TARGET_FLAGS.dsn,
      description: "Serve only this database (libpq key=value or URI)",
    },
    "node": { ...TARGET_FLAGS.node, description: "Serve only this node of the config file" },
    "metrics-listen": {
      type: "string",
      value: "HOST:PORT",
      description: "Serve Prometheus /metrics and /health there (:PORT: every interface)",
    },
  },
  async run(flags, _positionals, context) {
    let listen: ListenAddress | undefined;
    const listenText = flags["metrics-listen"] ?? context.config?.monitoring.listen;
    if (listenText !== undefined) {
      // A config value was checked when the file was read.
      listen = parseListenAddress(String(listenText));
      if (listen === undefined) {
        throw new UsageError(
          `--metrics-listen ${
            JSON.stringify(flags["metrics-listen"])
          } is not HOST:PORT, [IPv6]:PORT or :PORT with a port from 1 to 65535`,
          runCommand,
        );
      }
    }
    let nodes: Array<{ name?: string; dsn: string }>;
    if (flags.dsn !== undefined || flags.node !== undefined) {
      const dsn = targetDsn(flags, context, runCommand);
      try {
        parseDsn(dsn);
      } catch (error) {
        if (error instanceof DsnError) throw new UsageError(error.message, runCommand);
        throw error;
      }
      // With --dsn the node is named as its catalog names it.
      nodes = [{ name: typeof flags.node === "string" ? flags.node : undefined, dsn }];
    } else if (context.config !== undefined && context.config.nodes.length > 0) {
      nodes = context.config.nodes.map((node) => ({ name: node.name, dsn: node.dsn }));
    } else {
      throw new UsageError(
        "Nothing to serve: pass --dsn DSN, or a config file with nodes (--config FILE, ./spock.yaml or $SPOCK_CONFIG)",
        runCommand,
      );
    }
    // The daemon and the monitoring server stop together, whichever ends first.
    const stop = new AbortController();
    const signal = AbortSignal.any([context.signal, stop.signal]);
    const daemon = startDaemon({
      nodes,
      engine: context.config?.engine ?? DEFAULT_ENGINE,
      env: context.env,
      signal,
    });
    let monitoring: { finished: Promise<void> } | undefined;
    try {
      if (listen !== undefined) {
        monitoring = await serveMonitoring(daemon, { ...listen, signal }).catch((error) => {
          throw new Error(
            `Cannot serve --metrics-listen on ${listen.hostname}:${listen.port}: ${
              error instanceof Error ? error.message : String(error)
            }`,
          );
        });
      }
      await daemon.done;
      return 0;
    } finally {
      stop.abort();
      await daemon.done.catch(() => {});
      await monitoring?.finished;
    }
  },
};
