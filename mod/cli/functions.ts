/**
 * `spock delta-apply`, `spock sync-event` and `spock replicate-ddl`: the SQL
 * API functions that belong to no node, repset or sub group, as table-driven
 * subcommands like theirs (see `_api.ts`).
 */
import { apiCommand, type ApiSpec } from "./_api.ts";
import type { Command } from "./command.ts";

const SPECS: readonly ApiSpec[] = [
  {
    name: "delta-apply",
    summary:
      "Make a numeric column conflict-free: remote updates add their delta (spock.delta_apply)",
    description: "Register a numeric NOT NULL column of a table with a primary key for delta " +
      "apply: a remote UPDATE adds new − old to the local value instead of overwriting it " +
      "(REPLICA IDENTITY FULL is set so the old value travels). Run it on every node. " +
      "--no-enable unregisters the column.",
    returns: "scalar",
    call: {
      fn: "delta_apply",
      args: [
        { name: "relation", type: "regclass", description: "The table" },
        { name: "column_name", type: "name", description: "The column" },
        { name: "enable", type: "boolean", default: "true", description: "Register it" },
      ],
    },
  },
  {
    name: "sync-event",
    summary: "Mark a point of this node's stream to wait for (spock.sync_event)",
    description: "Write a sync event into this node's replication stream and print its LSN. " +
      "On a subscriber, CALL spock.wait_for_sync_event(NULL, '<this node>', '<LSN>', timeout) " +
      "returns true once everything this node committed before the event is applied there.",
    returns: "scalar",
    call: { fn: "sync_event", args: [] },
  },
  {
    name: "replicate-ddl",
    summary: "Run DDL here and queue it for the subscribers (spock.replicate_ddl)",
    returns: "scalar",
    call: {
      fn: "replicate_ddl",
      args: [
        { name: "command", type: "text", description: "The DDL to run" },
        {
          name: "replication_sets",
          type: "text[]",
          default: "ddl_sql",
          description: "The sets whose subscribers run it",
        },
        {
          name: "search_path",
          type: "text",
          default: "the session's",
          description: "search_path to run it with",
        },
        { name: "role", type: "text", default: "the current user", description: "Role to run as" },
      ],
    },
  },
];

/** The subcommands of this file, in help order. */
export const FUNCTION_COMMANDS: readonly Command[] = SPECS.map(apiCommand);
