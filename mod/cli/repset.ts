/**
 * `spock repset …`: replication sets and their tables, sequences and
 * partitions, each a row of the table below mirroring spock.repset_* (Spock
 * 5.0 signatures), plus a listing of the sets.
 */
import { type ApiArg, apiCommand, type ApiSpec } from "./_api.ts";
import type { Command } from "./command.ts";
import { groupCommand } from "./group.ts";

const SET_NAME: ApiArg = { name: "set_name", type: "name", description: "The replication set" };
const RELATION: ApiArg = { name: "relation", type: "regclass", description: "The table" };
const SEQUENCE: ApiArg = { name: "relation", type: "regclass", description: "The sequence" };
const SYNC: ApiArg = {
  name: "synchronize_data",
  type: "boolean",
  default: "false",
  description: "Have subscribers copy the data again",
};
const SCHEMAS: ApiArg = { name: "schema_names", type: "text[]", description: "The schemas" };
const PARTITIONS: ApiArg = {
  name: "include_partitions",
  type: "boolean",
  default: "true",
  description: "Include the partitions of a partitioned table",
};

function actions(fallback: string): ApiArg[] {
  return ["insert", "update", "delete", "truncate"].map((action) => ({
    name: `replicate_${action}`,
    type: "boolean",
    default: fallback,
    description: `Replicate ${action.toUpperCase()}`,
  }));
}

/** The repset subcommands. */
export const REPSET_SPECS: readonly ApiSpec[] = [
  {
    name: "repset create",
    summary: "Create a replication set (spock.repset_create)",
    returns: "scalar",
    call: { fn: "repset_create", args: [SET_NAME, ...actions("true")] },
  },
  {
    name: "repset alter",
    summary: "Change what a replication set replicates (spock.repset_alter)",
    returns: "scalar",
    call: { fn: "repset_alter", args: [SET_NAME, ...actions("NULL (unchanged)")] },
  },
  {
    name: "repset drop",
    summary: "Drop a replication set (spock.repset_drop)",
    returns: "scalar",
    call: {
      fn: "repset_drop",
      args: [SET_NAME, {
        name: "ifexists",
        type: "boolean",
        default: "false",
        description: "No error if missing",
      }],
    },
  },
  {
    name: "repset add-table",
    summary: "Add a table to a replication set (spock.repset_add_table)",
    returns: "scalar",
    call: {
      fn: "repset_add_table",
      args: [
        SET_NAME,
        RELATION,
        SYNC,
        {
          name: "columns",
          type: "text[]",
          default: "NULL (all)",
          description: "The columns to replicate",
        },
        {
          name: "row_filter",
          type: "text",
          default: "NULL",
          description: "Replicate only rows where this expression is true",
        },
        PARTITIONS,
      ],
    },
  },
  {
    name: "repset add-all-tables",
    summary: "Add every table of schemas to a replication set (spock.repset_add_all_tables)",
    returns: "scalar",
    call: { fn: "repset_add_all_tables", args: [SET_NAME, SCHEMAS, SYNC] },
  },
  {
    name: "repset remove-table",
    summary: "Remove a table from a replication set (spock.repset_remove_table)",
    returns: "scalar",
    call: { fn: "repset_remove_table", args: [SET_NAME, RELATION, PARTITIONS] },
  },
  {
    name: "repset add-seq",
    summary: "Add a sequence to a replication set (spock.repset_add_seq)",
    returns: "scalar",
    call: { fn: "repset_add_seq", args: [SET_NAME, SEQUENCE, SYNC] },
  },
  {
    name: "repset add-all-seqs",
    summary: "Add every sequence of schemas to a replication set (spock.repset_add_all_seqs)",
    returns: "scalar",
    call: { fn: "repset_add_all_seqs", args: [SET_NAME, SCHEMAS, SYNC] },
  },
  {
    name: "repset remove-seq",
    summary: "Remove a sequence from a replication set (spock.repset_remove_seq)",
    returns: "scalar",
    call: { fn: "repset_remove_seq", args: [SET_NAME, SEQUENCE] },
  },
  {
    name: "repset add-partition",
    summary: "Add partitions to the sets of their parent (spock.repset_add_partition)",
    returns: "scalar",
    call: {
      fn: "repset_add_partition",
      args: [
        { name: "parent", type: "regclass", description: "The partitioned table" },
        { name: "partition", type: "regclass", default: "NULL (all)", description: "A partition" },
        {
          name: "row_filter",
          type: "text",
          default: "NULL (the parent's)",
          description: "Row filter",
        },
      ],
    },
  },
  {
    name: "repset remove-partition",
    summary: "Remove partitions from the sets of their parent (spock.repset_remove_partition)",
    returns: "scalar",
    call: {
      fn: "repset_remove_partition",
      args: [
        { name: "parent", type: "regclass", description: "The partitioned table" },
        { name: "partition", type: "regclass", default: "NULL (all)", description: "A partition" },
      ],
    },
  },
  {
    name: "repset show-table",
    summary: "Show how sets replicate a table (spock.repset_show_table)",
    returns: "record",
    call: {
      fn: "repset_show_table",
      args: [RELATION, { name: "repsets", type: "text[]", description: "The replication sets" }],
    },
  },
  {
    name: "repset list",
    summary: "List the replication sets",
    returns: "setof",
    call: {
      query: `SELECT s.set_id, s.set_name, n.node_name, s.replicate_insert, s.replicate_update,
        s.replicate_delete, s.replicate_truncate,
        (SELECT count(*)::int FROM spock.replication_set_table t WHERE t.set_id = s.set_id) AS tables,
        (SELECT count(*)::int FROM spock.replication_set_seq q WHERE q.set_id = s.set_id) AS sequences
        FROM spock.replication_set s JOIN spock.node n ON n.node_id = s.set_nodeid
        ORDER BY n.node_name, s.set_name`,
    },
  },
];

/** `spock repset` */
export const repsetCommand: Command = groupCommand(
  "repset",
  "Manage replication sets and their tables, sequences and partitions",
  REPSET_SPECS.map(apiCommand),
);
