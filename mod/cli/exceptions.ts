/**
 * `spock exceptions`: the remote operations exception handling logged
 * recently, read from spock.exception_log: which transaction, table and
 * operation, the error, and the rows. For people, or one JSON object per line
 * for scripts. Every filter is a bind parameter.
 */
import { cancellableQuery } from "./_api.ts";
import { listingFlags, parseListing, wantedTableSql } from "./_listing.ts";
import { formatTime, type Row, writeOut } from "./_output.ts";
import { TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import type { Command } from "./command.ts";

/**
 * The newest `$3` entries logged in the last `$1` seconds, oldest first;
 * `$2` a table as `schema.table` or `table`.
 */
const QUERY = `
  WITH ${wantedTableSql(2)},
  newest AS (
    SELECT e.* FROM spock.exception_log e, wanted w
    WHERE e.retry_errored_at >= now() - make_interval(secs => $1::bigint)
      AND (w.parts IS NULL
        OR (cardinality(w.parts) = 2 AND e.table_schema = w.parts[1] AND e.table_name = w.parts[2])
        OR (cardinality(w.parts) = 1 AND e.table_name = w.parts[1]))
    ORDER BY e.retry_errored_at DESC, e.command_counter DESC
    LIMIT $3::bigint)
  SELECT e.retry_errored_at AS logged_at, e.remote_origin::int8 AS origin_id,
    n.node_name::text AS origin_node, e.remote_commit_ts, e.remote_xid::text, e.command_counter,
    e.table_schema, e.table_name, e.operation, e.error_message, e.local_tup, e.remote_old_tup,
    e.remote_new_tup, e.ddl_statement
  FROM newest e LEFT JOIN spock.node n ON n.node_id = e.remote_origin
  ORDER BY e.retry_errored_at, e.remote_xid, e.command_counter`;

/** The text block of one entry: a header line, the error, then the rows it names. */
function describeEntry(row: Row): string {
  const table = row.table_name === null ? "" : `${row.table_schema}.${row.table_name}`;
  const header = [
    formatTime(row.logged_at),
    `from ${row.origin_node ?? `node ${row.origin_id}`}`,
    `xid ${row.remote_xid}`,
    `committed ${formatTime(row.remote_commit_ts)}`,
    `#${row.command_counter}`,
    String(row.operation ?? ""),
    table,
  ].filter((part) => part !== "");
  const lines = [header.join("  "), `  error   ${row.error_message}`];
  const images: [string, unknown][] = [
    ["local", row.local_tup],
    ["old", row.remote_old_tup],
    ["new", row.remote_new_tup],
    ["ddl", row.ddl_statement],
  ];
  for (const [label, image] of images) {
    if (image === null || image === undefined) continue;
    lines.push(`  ${label.padEnd(7)} ${typeof image === "string" ? image : JSON.stringify(image)}`);
  }
  return lines.join("\n") + "\n";
}

/** `spock exceptions` */
export const exceptionsCommand: Command = {
  name: "exceptions",
  summary: "Show the operations exception handling logged recently (spock.exception_log)",
  usage: "spock exceptions (--dsn DSN | --node NAME) [--since DURATION] [--table TABLE] " +
    "[--limit N] [--json]",
  description: "Show the remote operations that exception handling logged, oldest first: " +
    "when, the provider, the remote transaction and its commit time, the operation and " +
    "table, the error (or why it was discarded), and the local and remote rows.\n" +
    "What is logged follows engine.exception_behaviour and engine.exception_logging.",
  flags: { ...TARGET_FLAGS, ...listingFlags("entries") },
  async run(flags, _positionals, context) {
    const { seconds, limit, table } = parseListing(flags, exceptionsCommand);
    const dsn = targetDsn(flags, context, exceptionsCommand);
    return await withTarget(dsn, context, exceptionsCommand, async (sql) => {
      const rows = await cancellableQuery(sql, QUERY, [seconds, table, limit], context.signal);
      const text = flags.json
        ? rows.map((row) => JSON.stringify(row) + "\n").join("")
        : rows.length === 0
        ? `No exceptions logged in the last ${flags.since}${table === null ? "" : ` on ${table}`}\n`
        : rows.map(describeEntry).join("\n");
      await writeOut(context.stdout, text);
      return 0;
    });
  },
};
