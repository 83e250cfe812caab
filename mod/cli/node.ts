/**
 * `spock node …`: create, drop, add-interface, drop-interface, info and list,
 * each a row of the table below mirroring spock.node_* (Spock 5.0 signatures).
 */
import { apiCommand, type ApiSpec } from "./_api.ts";
import type { Command } from "./command.ts";
import { groupCommand } from "./group.ts";
import { nodeAddCommand, nodeRemoveCommand } from "./node_membership.ts";

const NODE_NAME = { name: "node_name", type: "name", description: "The node's name" } as const;

/** The node subcommands. */
export const NODE_SPECS: readonly ApiSpec[] = [
  {
    name: "node create",
    summary: "Create the local spock node of the database (spock.node_create)",
    description: "Create the local spock node of the database, its interface and the default " +
      "replication sets.\nThe node's --dsn (how the other nodes reach it) is also the database " +
      "worked on, unless --node names another; with --node alone, the node's dsn in the config " +
      "file is used for both.",
    returns: "scalar",
    dsnFromNode: true,
    call: {
      fn: "node_create",
      args: [
        NODE_NAME,
        { name: "dsn", type: "text", description: "How the other nodes connect to this node" },
        { name: "location", type: "text", default: "NULL", description: "Where the node is" },
        { name: "country", type: "text", default: "NULL", description: "The node's country" },
        { name: "info", type: "jsonb", default: "NULL", description: "Anything else, as JSON" },
      ],
    },
  },
  {
    name: "node drop",
    summary: "Drop a node (spock.node_drop)",
    returns: "scalar",
    call: {
      fn: "node_drop",
      args: [
        NODE_NAME,
        { name: "ifexists", type: "boolean", default: "false", description: "No error if missing" },
      ],
    },
  },
  {
    name: "node add-interface",
    summary: "Add another DSN to a node (spock.node_add_interface)",
    description: "Add another DSN (interface) to a node.\nThe interface's --dsn is also the " +
      "database worked on, unless --node names another.",
    returns: "scalar",
    call: {
      fn: "node_add_interface",
      args: [
        NODE_NAME,
        { name: "interface_name", type: "name", description: "The new interface's name" },
        { name: "dsn", type: "text", description: "The interface's DSN" },
      ],
    },
  },
  {
    name: "node drop-interface",
    summary: "Drop an interface of a node (spock.node_drop_interface)",
    returns: "scalar",
    call: {
      fn: "node_drop_interface",
      args: [NODE_NAME, { name: "interface_name", type: "name", description: "The interface" }],
    },
  },
  {
    name: "node info",
    summary: "Show the local node (spock.node_info)",
    returns: "record",
    call: { fn: "node_info", args: [] },
  },
  {
    name: "node list",
    summary: "List the nodes this database knows",
    returns: "setof",
    call: {
      query:
        `SELECT n.node_id, n.node_name, (l.node_id IS NOT NULL) AS local, n.location, n.country,
        coalesce((SELECT array_agg(i.if_name::text ORDER BY i.if_name)
                  FROM spock.node_interface i WHERE i.if_nodeid = n.node_id), '{}') AS interfaces
        FROM spock.node n LEFT JOIN spock.local_node l ON l.node_id = n.node_id
        ORDER BY n.node_name`,
    },
  },
];

/** `spock node` */
export const nodeCommand: Command = groupCommand(
  "node",
  "Manage nodes: create, drop, add-interface, drop-interface, info, list, add, remove",
  [...NODE_SPECS.map(apiCommand), nodeAddCommand, nodeRemoveCommand],
);
