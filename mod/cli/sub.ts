/**
 * `spock sub …`: subscriptions, each a row of the table below mirroring
 * spock.sub_* (Spock 5.0 signatures plus skip_schema). `sub create` asks the
 * provider for its node itself, then records the subscription locally through
 * spock._sub_create_local, so it needs no dblink on the subscriber.
 */
import { maskDsn } from "../pg/mod.ts";
import { type ApiArg, apiCommand, type ApiSpec, type ApiValues } from "./_api.ts";
import { connectTarget, describeFailure, withTarget } from "./_target.ts";
import { dropProviderSlot } from "../catalog/mod.ts";
import type { Row } from "./_output.ts";
import type { Command, CommandContext } from "./command.ts";
import { groupCommand } from "./group.ts";

const SUB_NAME: ApiArg = {
  name: "subscription_name",
  type: "name",
  description: "The subscription",
};
const IMMEDIATE: ApiArg = {
  name: "immediate",
  type: "boolean",
  default: "false",
  description: "Act now instead of at commit (not inside a transaction block)",
};
const RELATION: ApiArg = { name: "relation", type: "regclass", description: "The table" };

/** sub_create's SQL defaults, passed explicitly: _sub_create_local takes every argument. */
const SUB_CREATE_DEFAULTS: ApiValues = new Map([
  ["replication_sets", { type: "text[]", value: "{default,default_insert_only,ddl_sql}" }],
  ["synchronize_structure", { type: "boolean", value: false }],
  ["synchronize_data", { type: "boolean", value: false }],
  ["forward_origins", { type: "text[]", value: "{}" }],
  ["apply_delay", { type: "interval", value: "0" }],
  ["force_text_transfer", { type: "boolean", value: false }],
  ["enabled", { type: "boolean", value: true }],
  ["skip_schema", { type: "text[]", value: "{}" }],
]);

/** Asks the provider for its node id and name, and calls the local half of sub_create. */
async function prepareSubCreate(
  values: ApiValues,
  context: CommandContext,
  command: Command,
): Promise<{ fn: string; values: ApiValues }> {
  const providerDsn = String(values.get("provider_dsn")!.value);
  const provider = connectTarget(providerDsn, context, command);
  let node;
  try {
    [node] = await provider`SELECT node_id::text, node_name::text FROM spock.node_info()`;
  } catch (error) {
    const failure = describeFailure(error, providerDsn);
    throw new Error(
      `Cannot read the provider's node at ${maskDsn(providerDsn)}: ${failure.message}`,
      {
        cause: error,
      },
    );
  } finally {
    await provider.end({ timeout: 5 });
  }
  if (node === undefined || node.node_id === null) {
    throw new Error(
      `The provider at ${
        maskDsn(providerDsn)
      } has no spock node: run 'spock node create' there first`,
    );
  }
  const local: ApiValues = new Map([
    ["subscription_name", values.get("subscription_name")!],
    ["provider_dsn", values.get("provider_dsn")!],
    ["provider_node_id", { type: "oid", value: String(node.node_id) }],
    ["provider_node_name", { type: "name", value: String(node.node_name) }],
  ]);
  for (const [name, value] of SUB_CREATE_DEFAULTS) local.set(name, values.get(name) ?? value);
  return { fn: "_sub_create_local", values: local };
}

/** _sub_drop_local takes both its arguments (sub_drop defaults ifexists to false). */
function withIfExists(values: ApiValues): ApiValues {
  const all: ApiValues = new Map(values);
  if (!all.has("ifexists")) all.set("ifexists", { type: "boolean", value: false });
  return all;
}

/**
 * After `_sub_drop_local`: drops the subscription's slot on its provider, as
 * Spock's sub_drop does; prints what sub_drop returns.
 */
async function dropSlotOnProvider(
  rows: Row[],
  context: CommandContext,
  command: Command,
): Promise<Row[]> {
  const [{ dropped, slot_name: slot, provider_dsn: dsn }] = rows;
  const result = [{ sub_drop: dropped }];
  if (typeof slot !== "string" || typeof dsn !== "string") return result;
  const subscription = String(rows[0].sub_name);
  try {
    await withTarget(
      dsn,
      context,
      command,
      (provider) => dropProviderSlot(provider, { slotName: slot, subscriptionName: subscription }),
      // A provider on another spock version (a rolling upgrade) still drops its slot.
      { catalog: "any" },
    );
  } catch (error) {
    throw new Error(
      `The subscription is dropped, but its slot "${slot}" on the provider at ${
        maskDsn(dsn)
      } is not: ${(error as Error).message}; it keeps the provider's WAL until it is dropped ` +
        `there: SELECT pg_drop_replication_slot('${slot}')`,
      { cause: error },
    );
  }
  return result;
}

/** The sub subcommands. */
export const SUB_SPECS: readonly ApiSpec[] = [
  {
    name: "sub create",
    summary: "Subscribe this node to a provider (spock.sub_create)",
    description: "Subscribe this node to a provider. spock connects to --provider-dsn to learn " +
      "the provider's node, then records the subscription in the target database.",
    returns: "scalar",
    prepare: prepareSubCreate,
    call: {
      fn: "sub_create",
      args: [
        SUB_NAME,
        { name: "provider_dsn", type: "text", description: "How to reach the provider" },
        {
          name: "replication_sets",
          type: "text[]",
          default: "default,default_insert_only,ddl_sql",
          description: "The sets to receive",
        },
        {
          name: "synchronize_structure",
          type: "boolean",
          default: "false",
          description: "Copy the schema first",
        },
        {
          name: "synchronize_data",
          type: "boolean",
          default: "false",
          description: "Copy the existing rows first",
        },
        {
          name: "forward_origins",
          type: "text[]",
          default: "none",
          description: "Origins whose changes to forward ('all' for every one)",
        },
        {
          name: "apply_delay",
          type: "interval",
          default: "0",
          description: "Apply each transaction this late",
        },
        {
          name: "force_text_transfer",
          type: "boolean",
          default: "false",
          description: "Receive every column as text",
        },
        { name: "enabled", type: "boolean", default: "true", description: "Start replicating" },
        {
          name: "skip_schema",
          type: "text[]",
          default: "none",
          description: "Schemas left out of structure sync",
        },
      ],
    },
  },
  {
    name: "sub drop",
    summary: "Drop a subscription (spock.sub_drop)",
    description: "Drop a subscription: its catalog rows and replication origin here, then its " +
      "slot on the provider, which spock reaches itself (no dblink needed). A slot that " +
      "cannot be dropped is an error naming it: it would keep the provider's WAL.",
    returns: "scalar",
    prepare: (values) => Promise.resolve({ fn: "_sub_drop_local", values: withIfExists(values) }),
    finish: dropSlotOnProvider,
    call: {
      fn: "sub_drop",
      args: [SUB_NAME, {
        name: "ifexists",
        type: "boolean",
        default: "false",
        description: "No error if missing",
      }],
    },
  },
  {
    name: "sub enable",
    summary: "Enable a subscription (spock.sub_enable)",
    returns: "scalar",
    call: { fn: "sub_enable", args: [SUB_NAME, IMMEDIATE] },
  },
  {
    name: "sub disable",
    summary: "Disable a subscription (spock.sub_disable)",
    returns: "scalar",
    call: { fn: "sub_disable", args: [SUB_NAME, IMMEDIATE] },
  },
  {
    name: "sub alter-interface",
    summary: "Switch the provider interface a subscription uses (spock.sub_alter_interface)",
    returns: "scalar",
    call: {
      fn: "sub_alter_interface",
      args: [SUB_NAME, {
        name: "interface_name",
        type: "name",
        description: "An interface of the provider node",
      }],
    },
  },
  {
    name: "sub add-repset",
    summary: "Receive one more replication set (spock.sub_add_repset)",
    returns: "scalar",
    call: {
      fn: "sub_add_repset",
      args: [SUB_NAME, { name: "replication_set", type: "name", description: "The set" }],
    },
  },
  {
    name: "sub remove-repset",
    summary: "Stop receiving a replication set (spock.sub_remove_repset)",
    returns: "scalar",
    call: {
      fn: "sub_remove_repset",
      args: [SUB_NAME, { name: "replication_set", type: "name", description: "The set" }],
    },
  },
  {
    name: "sub alter-skiplsn",
    summary: "Skip the remote transaction that commits at an LSN (spock.sub_alter_skiplsn)",
    returns: "scalar",
    call: {
      fn: "sub_alter_skiplsn",
      args: [SUB_NAME, { name: "lsn", type: "pg_lsn", description: "Its commit LSN" }],
    },
  },
  {
    name: "sub alter-sync",
    summary: "Synchronize tables added to the subscribed sets (spock.sub_alter_sync)",
    returns: "scalar",
    call: {
      fn: "sub_alter_sync",
      args: [SUB_NAME, {
        name: "truncate",
        type: "boolean",
        default: "false",
        description: "Empty the local tables first",
      }],
    },
  },
  {
    name: "sub resync-table",
    summary: "Copy a table again (spock.sub_resync_table)",
    returns: "scalar",
    call: {
      fn: "sub_resync_table",
      args: [SUB_NAME, RELATION, {
        name: "truncate",
        type: "boolean",
        default: "true",
        description: "Empty the local table first",
      }],
    },
  },
  {
    name: "sub resync",
    summary: "Copy every table again under a new slot (spock.sub_resync)",
    description: "For a slot the provider invalidated (max_slot_wal_keep_size): the worker " +
      "drops the old slot, creates a new one, empties each table and copies it again. " +
      "Run it once the peers have received this node's own writes: they are emptied too.",
    returns: "scalar",
    call: { fn: "sub_resync", args: [SUB_NAME] },
  },
  {
    name: "sub alter-options",
    summary: "Change a subscription's options (spock.sub_alter_options)",
    description: "Change options of a subscription, given as one JSON object: " +
      '{"forward_origins": ["all"]}, {"apply_delay": "5 minutes"}, {"skip_schema": ["s1"]}, ' +
      'and the engine overrides {"conflict_resolution": "keep_local"} and ' +
      '{"update_missing": "insert"} (null removes an override). The worker restarts with them.',
    returns: "scalar",
    call: {
      fn: "sub_alter_options",
      args: [SUB_NAME, { name: "options", type: "jsonb", description: "The options to set" }],
    },
  },
  {
    name: "sub show-status",
    summary: "Show the status of subscriptions (spock.sub_show_status)",
    returns: "setof",
    call: {
      fn: "sub_show_status",
      args: [{ ...SUB_NAME, default: "NULL (all)" }],
    },
  },
  {
    name: "sub show-table",
    summary: "Show the sync status of a table (spock.sub_show_table)",
    returns: "record",
    call: { fn: "sub_show_table", args: [SUB_NAME, RELATION] },
  },
  {
    name: "sub wait-for-sync",
    summary: "Wait until a subscription has synchronized (spock.sub_wait_for_sync)",
    description: "Wait until a subscription and all its tables are synchronized, or with " +
      "--relation only that table (spock.table_wait_for_sync). The daemon (spock run) does " +
      "the sync: the wait ends with an error when no daemon has served the subscription for " +
      "10 s, or when its worker stopped on an error. --timeout gives up sooner; Ctrl-C cancels.",
    returns: "void",
    timeout: true,
    call: {
      fn: "sub_wait_for_sync",
      args: [SUB_NAME, { ...RELATION, default: "NULL (every table)" }],
    },
    prepare: (values) =>
      Promise.resolve({
        fn: values.has("relation") ? "table_wait_for_sync" : "sub_wait_for_sync",
        values,
      }),
  },
  {
    name: "sub list",
    summary: "List the subscriptions",
    returns: "setof",
    call: {
      query: `SELECT s.sub_id, s.sub_name, o.node_name AS provider_node,
        t.node_name AS subscriber_node, s.sub_enabled AS enabled, s.sub_slot_name AS slot_name,
        s.sub_replication_sets AS replication_sets, s.sub_forward_origins AS forward_origins,
        s.sub_apply_delay::text AS apply_delay
        FROM spock.subscription s
        JOIN spock.node o ON o.node_id = s.sub_origin
        JOIN spock.node t ON t.node_id = s.sub_target
        ORDER BY s.sub_name`,
    },
  },
];

/** `spock sub` */
export const subCommand: Command = groupCommand(
  "sub",
  "Manage subscriptions",
  SUB_SPECS.map(apiCommand),
);
