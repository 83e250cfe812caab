/**
 * `spock status`: one node at a glance: its subscriptions with their status
 * (spock.sub_show_status) and lag (spock.lag_tracker), and the apply counters
 * per subscription and table (spock.channel_table_stats), conflicts by type.
 * Reads only; the catalog views own what the numbers mean.
 */
import type { CatalogSql } from "../catalog/mod.ts";
import { formatTable, type Row, writeOut } from "./_output.ts";
import { JSON_FLAG, TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import { CONFLICT_TYPES } from "../apply/mod.ts";
import type { Command } from "./command.ts";

const NODE_QUERY = `
  SELECT n.node_name::text AS node FROM spock.local_node l JOIN spock.node n USING (node_id)`;

/** lag_tracker has one row per (provider, receiver) node pair. */
const SUBSCRIPTIONS_QUERY = `
  SELECT s.subscription_name AS subscription, s.status, s.provider_node AS provider,
    extract(epoch FROM l.replication_lag)::float8 AS lag_seconds,
    l.replication_lag_bytes::float8 AS lag_bytes
  FROM spock.sub_show_status() s
  LEFT JOIN spock.lag_tracker l ON l.origin_name = s.provider_node
    AND l.receiver_name = (SELECT n.node_name FROM spock.local_node ln
                           JOIN spock.node n ON n.node_id = ln.node_id)
  ORDER BY s.subscription_name`;

const TABLES_QUERY = `
  SELECT sub_name::text AS subscription, table_name AS table, n_tup_ins::float8 AS inserts,
    n_tup_upd::float8 AS updates, n_tup_del::float8 AS deletes, n_dca::float8 AS delta_applied,
    n_conflict::float8 AS conflicts,
    ${CONFLICT_TYPES.map((type) => `confl_${type}::float8 AS ${type}`).join(", ")}
  FROM spock.channel_table_stats
  ORDER BY sub_name, table_name`;

/** What `spock status --json` prints. */
interface NodeStatus {
  node: string | null;
  subscriptions: Row[];
  tables: Row[];
}

/** Seconds as `0.4s`, `12m 3s` or `5h 2m`. */
function formatLag(seconds: unknown): string {
  if (typeof seconds !== "number") return "";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 3_600) return `${Math.floor(whole / 60)}m ${whole % 60}s`;
  return `${Math.floor(whole / 3_600)}h ${Math.floor((whole % 3_600) / 60)}m`;
}

/** `8 (insert_exists 3, update_origin_differs 5)`, or `0`. */
function formatConflicts(row: Row): string {
  const byType = CONFLICT_TYPES.filter((type) => Number(row[type]) > 0)
    .map((type) => `${type} ${row[type]}`);
  return byType.length === 0 ? String(row.conflicts) : `${row.conflicts} (${byType.join(", ")})`;
}

async function readStatus(sql: CatalogSql): Promise<NodeStatus> {
  const [node] = await sql.unsafe(NODE_QUERY);
  const subscriptions = [...await sql.unsafe(SUBSCRIPTIONS_QUERY)] as Row[];
  const tables = ([...await sql.unsafe(TABLES_QUERY)] as Row[]).map((row) => {
    const conflictsByType = Object.fromEntries(CONFLICT_TYPES.map((type) => [type, row[type]]));
    const rest = Object.fromEntries(
      Object.entries(row).filter(([key]) => !(CONFLICT_TYPES as readonly string[]).includes(key)),
    );
    return { ...rest, conflicts_by_type: conflictsByType };
  });
  return { node: node?.node ?? null, subscriptions, tables };
}

function statusText(status: NodeStatus): string {
  const lines = [`Node ${status.node ?? "(none)"}`, ""];
  if (status.subscriptions.length === 0) {
    lines.push("No subscriptions", "");
  } else {
    const rows = status.subscriptions.map((row) => ({
      ...row,
      lag: formatLag(row.lag_seconds),
      lag_bytes: row.lag_bytes ?? "",
    }));
    lines.push(formatTable(rows, ["subscription", "status", "provider", "lag", "lag_bytes"]));
  }
  if (status.tables.length === 0) {
    lines.push("No changes applied yet");
  } else {
    const rows = status.tables.map((row) => ({
      ...row,
      conflicts: formatConflicts({ ...row, ...(row.conflicts_by_type as Row) }),
    }));
    lines.push(formatTable(rows, [
      "subscription",
      "table",
      "inserts",
      "updates",
      "deletes",
      "delta_applied",
      "conflicts",
    ]));
  }
  return lines.join("\n").trimEnd() + "\n";
}

/** `spock status` */
export const statusCommand: Command = {
  name: "status",
  summary: "Show a node's subscriptions, their lag and apply counters per table",
  usage: "spock status (--dsn DSN | --node NAME) [--json]",
  description: "Show a node's subscriptions with their status and lag, and per subscription " +
    "and table the rows inserted, updated and deleted, the delta-applied updates and the " +
    "conflicts by type (spock.sub_show_status, spock.lag_tracker, spock.channel_table_stats).",
  flags: { ...TARGET_FLAGS, ...JSON_FLAG },
  async run(flags, _positionals, context) {
    const dsn = targetDsn(flags, context, statusCommand);
    return await withTarget(dsn, context, statusCommand, async (sql) => {
      const status = await readStatus(sql);
      await writeOut(
        context.stdout,
        flags.json ? JSON.stringify(status) + "\n" : statusText(status),
      );
      return 0;
    });
  },
};
