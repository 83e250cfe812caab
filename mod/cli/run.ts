/**
 * `spock run`: the replication daemon. Serves every node of the config file,
 * or the one database named by --dsn (or --node), until SIGINT/SIGTERM;
 * a second signal forces the exit.
 */
import { DEFAULT_ENGINE } from "../config/mod.ts";
import { guardClosedSocketWrites, startDaemon } from "../daemon/mod.ts";
import { DsnError, parseDsn } from "../pg/mod.ts";
import { type Command, UsageError } from "./command.ts";
import { TARGET_FLAGS, targetDsn } from "./_target.ts";

/** `spock run` */
export const runCommand: Command = {
  name: "run",
  summary: "Run the replication daemon for the nodes of the config file (or --dsn)",
  usage: "spock run [--config FILE] [--dsn DSN | --node NAME]",
  flags: {
    ...TARGET_FLAGS,
    "dsn": {
      ...TARGET_FLAGS.dsn,
      description: "Serve only this database (libpq key=value or URI)",
    },
    "node": { ...TARGET_FLAGS.node, description: "Serve only this node of the config file" },
  },
  async run(flags, _positionals, context) {
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
    const unguard = guardClosedSocketWrites();
    try {
      const daemon = startDaemon({
        nodes,
        engine: context.config?.engine ?? DEFAULT_ENGINE,
        env: context.env,
        signal: context.signal,
      });
      await daemon.done;
      return 0;
    } finally {
      unguard();
    }
  },
};
