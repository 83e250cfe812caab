/**
 * `spock status`: one node at a glance: its subscriptions with their status
 * (spock.sub_show_status) and lag (spock.lag_tracker), and the apply counters
 * per subscription and table (spock.channel_table_stats), conflicts by type.
 * Reads only; the catalog views own what the numbers mean.
 */
import type { CatalogSql } from "../catalog/mod.ts";
import { formatTable, formatTime, type Row, writeOut } from "./_output.ts";
import { JSON_FLAG, TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import { CONFLICT_TYPES } from "../apply/mod.ts";
import type { Command } from "./command.ts";

const NODE_QUERY = `
  SELECT n.node_name::text AS node FROM spock.local_node l JOIN spock.node n USING (node_id)`;

/**
 * lag_tracker has one row per (provider, receiver) node pair. A subscription
 * is stopped by an error when its worker recorded one it does not retry
 * (spock._sub_error.retry_at NULL): an operator must act.
 */
const SUBSCRIPTIONS_QUERY = `
  SELECT s.subscription_name AS subscription, s.status, s.provider_node AS provider,
    extract(epoch FROM l.replication_lag)::float8 AS lag_seconds,
    l.replication_lag_bytes::float8 AS lag_bytes, s.last_error, s.last_error_at,
    s.last_error_lsn::text, s.next_retry_at,
    coalesce(e.sub_id IS NOT NULL AND e.retry_at IS NULL, false) AS stopped_by_error
  FROM spock.sub_show_status() s
  JOIN spock.subscription sub ON sub.sub_name = s.subscription_name
  LEFT JOIN spock._sub_error e ON e.sub_id = sub.sub_id
  LEFT JOIN spock.lag_tracker l ON l.origin_name = s.provider_node
    AND l.receiver_name = (SELECT n.node_name FROM spock.local_node ln
                           JOIN spock.node n ON n.node_id = ln.node_id)
  ORDER BY s.subscription_name`;

const TABLES_QUERY = `
  SELECT sub_name::text AS subscription, table_name AS table, n_tup_ins::float8 AS inserts,
    n_tup_upd::float8 AS updates, n_tup_del::float8 AS deletes, n_dca::float8 AS delta_applied,
    n_discarded::float8 AS discarded, n_conflict::float8 AS conflicts,
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

/**
 * Whether a subscription needs no one: its worker runs, or it was disabled
 * on purpose. Down, or stopped by an error, it needs an operator.
 */
function healthy(row: Row): boolean {
  if (row.status === "down") return false;
  return !(row.status === "disabled" && row.stopped_by_error === true);
}

/** What the worker last failed with, and what happens next. */
function errorLines(row: Row): string[] {
  if (row.last_error === null || row.last_error === undefined) return [];
  const next = row.stopped_by_error
    ? "not retrying: an operator must act"
    : row.next_retry_at
    ? `retrying at ${formatTime(row.next_retry_at)}`
    : "";
  const at = row.last_error_lsn ? ` at remote LSN ${row.last_error_lsn}` : "";
  return [
    `${row.subscription}: last error ${formatTime(row.last_error_at)}${at}${
      next ? `, ${next}` : ""
    }:`,
    `  ${row.last_error}`,
  ];
}

function statusText(status: NodeStatus): string {
  const lines = [`Node ${status.node ?? "(none)"}`, ""];
  if (status.subscriptions.length === 0) {
    lines.push("No subscriptions", "");
  } else {
    const rows = status.subscriptions.map((row) => ({
      ...row,
      status: healthy(row) || row.status === "down" ? row.status : `${row.status} by an error`,
      lag: formatLag(row.lag_seconds),
      lag_bytes: row.lag_bytes ?? "",
    }));
    lines.push(formatTable(rows, ["subscription", "status", "provider", "lag", "lag_bytes"]));
    const errors = status.subscriptions.flatMap(errorLines);
    if (errors.length > 0) lines.push(...errors, "");
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
      "discarded",
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
  description: "Show a node's subscriptions with their status, lag and last error, and per " +
    "subscription and table the rows inserted, updated and deleted, the delta-applied " +
    "updates, the operations exception handling discarded and the conflicts by type " +
    "(spock.sub_show_status, spock.lag_tracker, spock.channel_table_stats).\n" +
    "Exits with 1 when a subscription is down or stopped by an error, so it can serve as a " +
    "health check.",
  flags: { ...TARGET_FLAGS, ...JSON_FLAG },
  async run(flags, _positionals, context) {
    const dsn = targetDsn(flags, context, statusCommand);
    return await withTarget(dsn, context, statusCommand, async (sql) => {
      const status = await readStatus(sql);
      await writeOut(
        context.stdout,
        flags.json ? JSON.stringify(status) + "\n" : statusText(status),
      );
      return status.subscriptions.every(healthy) ? 0 : 1;
    });
  },
};
