/**
 * What the commands that list logged events share (`spock conflicts`,
 * `spock exceptions`): the --since, --table, --limit and --json flags, their
 * checks, and the SQL that matches a `--table` name against the log.
 */
import { type Command, type FlagSpec, type ParsedFlags, UsageError } from "./command.ts";

const DEFAULT_SINCE = "1h";
const DEFAULT_LIMIT = 100;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/** The listing flags; `what` names the events in the help ("conflicts"). */
export function listingFlags(what: string): Record<string, FlagSpec> {
  return {
    "since": {
      type: "string",
      value: "DURATION",
      default: DEFAULT_SINCE,
      description: `How far back to look: 30s, 15m, 1h, 2d or 1h30m (default ${DEFAULT_SINCE})`,
    },
    "table": {
      type: "string",
      value: "TABLE",
      description: "Only this table: schema.table, or table in any schema",
    },
    "limit": {
      type: "string",
      value: "N",
      default: String(DEFAULT_LIMIT),
      description: `Show at most the N newest ${what} (default ${DEFAULT_LIMIT})`,
    },
    "json": {
      type: "boolean",
      description: "Print one JSON object per line, with every column",
    },
  };
}

/** The parsed listing flags. */
export interface Listing {
  /** --since in seconds. */
  seconds: number;
  limit: number;
  /** --table as given, or null for every table. */
  table: string | null;
}

/** `30s`, `15m`, `1h30m`, `2d` → seconds; undefined when `text` is not such a duration. */
function parseDuration(text: string): number | undefined {
  if (!/^(\d+[smhd])+$/.test(text)) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)([smhd])/g)) {
    seconds += Number(amount) * UNIT_SECONDS[unit];
  }
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

/** Checks and converts the listing flags; a bad value is a usage error of `command`. */
export function parseListing(flags: ParsedFlags, command: Command): Listing {
  const since = String(flags.since);
  const seconds = parseDuration(since);
  if (seconds === undefined) {
    throw new UsageError(
      `Invalid --since "${since}": expected a duration such as 30s, 15m, 1h or 2d`,
      command,
    );
  }
  const rawLimit = String(flags.limit);
  const limit = Number(rawLimit);
  if (!/^\d+$/.test(rawLimit) || !Number.isSafeInteger(limit) || limit < 1) {
    throw new UsageError(`Invalid --limit "${rawLimit}": expected a positive integer`, command);
  }
  const table = typeof flags.table === "string" && flags.table !== "" ? flags.table : null;
  return { seconds, limit, table };
}

/**
 * A CTE `wanted(parts)`: the --table parameter (`$<n>`) split like a
 * regclass name into its unquoted parts, or NULL parts for every table.
 */
export function wantedTableSql(parameter: number): string {
  return `wanted AS (SELECT CASE WHEN $${parameter}::text IS NULL THEN NULL
    ELSE parse_ident($${parameter}::text) END AS parts)`;
}
