/**
 * `spock node add` and `spock node remove`: a node joins or leaves a running
 * cluster. The cluster folder does the work; this file owns the flags, where
 * DSNs come from (the flags, else the config file) and what is printed.
 */
import { addNode, ClusterError, type NodeDirectory, removeNode } from "../cluster/mod.ts";
import { DsnError, parseDsn } from "../pg/mod.ts";
import { type Command, type CommandContext, type ParsedFlags, UsageError } from "./command.ts";
import { formatResult, writeOut } from "./_output.ts";
import { JSON_FLAG } from "./_target.ts";

const TIMEOUT_FLAG = {
  "timeout": {
    type: "string" as const,
    value: "SECONDS",
    description: "The longest any one wait may take (default 600)",
    default: "600",
  },
};

/** `spock node add` */
export const nodeAddCommand: Command = {
  name: "node add",
  summary: "Add a new node to a running cluster with zero downtime (ZODAN)",
  usage:
    "spock node add --source NAME --node NAME [--dsn DSN] [--source-dsn DSN] [--no-structure] [--timeout SECONDS] [--json]",
  description: "Join the empty database of the new node (spock installed, no tables) to the " +
    "cluster of --source while every node keeps taking writes. The new node copies structure " +
    "and data from the source; each other node's changes reach it exactly once. A daemon must " +
    "serve the new node (spock run with it in its config). Run again after an interruption: " +
    "it continues where it stopped.\nDSNs not given come from the config file, then from the " +
    "source's catalog.",
  flags: {
    "source": { type: "string", value: "NAME", description: "The node to copy from" },
    "source-dsn": { type: "string", value: "DSN", description: "How to reach the source" },
    "node": { type: "string", value: "NAME", description: "The new node's name" },
    "dsn": {
      type: "string",
      value: "DSN",
      description: "The new node's DSN (how the other nodes will reach it)",
    },
    "location": { type: "string", value: "TEXT", description: "Where the new node is" },
    "country": { type: "string", value: "TEXT", description: "The new node's country" },
    "info": { type: "string", value: "JSON", description: "Anything else, as JSON" },
    "structure": {
      type: "boolean",
      negatable: true,
      default: true,
      description: "Copy the source's structure with pg_dump (--no-structure: the new " +
        "node's tables exist already, empty)",
    },
    ...TIMEOUT_FLAG,
    ...JSON_FLAG,
  },
  async run(flags, _positionals, context) {
    const source = required(flags, "source", nodeAddCommand);
    const name = required(flags, "node", nodeAddCommand);
    const directory = nodeDirectory(context, "spock node add");
    const result = await addNode({
      source: { name: source, dsn: dsnOf(flags, "source-dsn", source, directory, nodeAddCommand) },
      node: {
        name,
        dsn: dsnOf(flags, "dsn", name, directory, nodeAddCommand),
        location: optional(flags.location),
        country: optional(flags.country),
        info: optional(flags.info),
      },
      directory,
      structure: flags.structure !== false,
      timeoutMs: timeoutOf(flags, nodeAddCommand),
      signal: context.signal,
      report: (line) => context.warn(line),
    }).catch(rethrowClusterError);
    await writeOut(
      context.stdout,
      flags.json
        ? formatResult([{ ...result }], "record", true)
        : `Node ${result.node} added (source ${result.source}${
          result.peers.length > 0 ? `, peers ${result.peers.join(", ")}` : ""
        }) in ${(result.milliseconds / 1000).toFixed(1)} s\n`,
    );
    return 0;
  },
};

/** `spock node remove` */
export const nodeRemoveCommand: Command = {
  name: "node remove",
  summary: "Remove a node from the cluster: its subscriptions, slots and origins everywhere",
  usage: "spock node remove --node NAME [--dsn DSN] [--force] [--timeout SECONDS] [--json]",
  description: "Wait until every other node has applied everything the node wrote (stop " +
    "writing to it first), then drop the subscriptions to and from it on every node with " +
    "their slots and origins, and drop the node. Also cleans up after an unfinished node add. " +
    "--force skips the wait and nodes that cannot be reached.",
  flags: {
    "node": { type: "string", value: "NAME", description: "The node to remove" },
    "dsn": { type: "string", value: "DSN", description: "How to reach it" },
    "force": {
      type: "boolean",
      description: "Do not wait for its changes to reach the others; skip unreachable nodes",
    },
    ...TIMEOUT_FLAG,
    ...JSON_FLAG,
  },
  async run(flags, _positionals, context) {
    const name = required(flags, "node", nodeRemoveCommand);
    const directory = nodeDirectory(context, "spock node remove");
    const result = await removeNode({
      node: { name, dsn: dsnOf(flags, "dsn", name, directory, nodeRemoveCommand) },
      directory,
      force: flags.force === true,
      timeoutMs: timeoutOf(flags, nodeRemoveCommand),
      signal: context.signal,
      report: (line) => context.warn(line),
    }).catch(rethrowClusterError);
    await writeOut(
      context.stdout,
      flags.json
        ? formatResult([{ ...result }], "record", true)
        : `Node ${result.node} removed: ${result.droppedSubscriptions.length} subscriptions and ${result.droppedSlots.length} slots dropped\n`,
    );
    return 0;
  },
};

function required(flags: ParsedFlags, name: string, command: Command): string {
  const value = flags[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`Missing required option --${name}`, command);
  }
  return value;
}

function optional(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function nodeDirectory(context: CommandContext, applicationName: string): NodeDirectory {
  return {
    dsns: new Map(context.config?.nodes.map((node) => [node.name, node.dsn]) ?? []),
    env: context.env,
    applicationName,
  };
}

/** The DSN of node `name`: the flag, else the config file's; checked to parse. */
function dsnOf(
  flags: ParsedFlags,
  flag: string,
  name: string,
  directory: NodeDirectory,
  command: Command,
): string {
  const dsn = optional(flags[flag]) ?? directory.dsns.get(name);
  if (dsn === undefined) {
    throw new UsageError(
      `No DSN for node ${name}: pass --${flag}, or name it in the config file (--config FILE)`,
      command,
    );
  }
  try {
    parseDsn(dsn, directory.env);
  } catch (error) {
    if (error instanceof DsnError) throw new UsageError(`--${flag}: ${error.message}`, command);
    throw error;
  }
  return dsn;
}

function timeoutOf(flags: ParsedFlags, command: Command): number {
  const seconds = Number(flags.timeout);
  if (!Number.isInteger(seconds) || seconds < 1) {
    throw new UsageError(`--timeout ${flags.timeout} is not a whole number of seconds`, command);
  }
  return seconds * 1000;
}

function rethrowClusterError(error: unknown): never {
  if (error instanceof ClusterError) throw new Error(error.message, { cause: error });
  throw error;
}
