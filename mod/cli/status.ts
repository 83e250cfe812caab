/**
 * `spock status`: one node at a glance: its subscriptions with their status
 * (spock.sub_show_status) and lag (spock.lag_tracker), and the apply counters
 * per subscription and table (spock.channel_table_stats), conflicts by type,
 * as the daemon's node_status.ts reads them.
 */
import { type NodeStatus, readNodeStatus } from "../daemon/mod.ts";
import { formatTable, formatTime, type Row, writeOut } from "./_output.ts";
import { JSON_FLAG, TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import { CONFLICT_TYPES } from "../apply/mod.ts";
import type { Command } from "./command.ts";

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
      const status = await readNodeStatus(sql);
      await writeOut(
        context.stdout,
        flags.json ? JSON.stringify(status) + "\n" : statusText(status),
      );
      return status.subscriptions.every(healthy) ? 0 : 1;
    });
  },
};
