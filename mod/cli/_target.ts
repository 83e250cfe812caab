/**
 * The database a management command works on: `--dsn DSN`, or `--node NAME`
 * looked up in the config file. Also turns server and connection failures
 * into one-line messages (with DETAIL and HINT) that never show a password.
 */
import { assertCatalogCurrent, type CatalogSql, connectDatabase } from "../catalog/mod.ts";
import { ConfigError, findNode } from "../config/mod.ts";
import { DsnError, maskDsn, resolveConnectOptions } from "../pg/mod.ts";
import {
  type Command,
  type CommandContext,
  type FlagSpec,
  type ParsedFlags,
  UsageError,
} from "./command.ts";

/** `--dsn` and `--node`, the two ways to name the target database. */
export const TARGET_FLAGS: Record<string, FlagSpec> = {
  "dsn": {
    type: "string",
    value: "DSN",
    description: "The database to work on (libpq key=value or URI)",
  },
  "node": {
    type: "string",
    value: "NAME",
    description: "The database of this node in the config file (see --config)",
  },
};

/** `--json`: one JSON document instead of a table. */
export const JSON_FLAG: Record<string, FlagSpec> = {
  "json": { type: "boolean", description: "Print one JSON document instead of a table" },
};

/** The DSN the command targets, from `--dsn` or `--node` and the config file. */
export function targetDsn(flags: ParsedFlags, context: CommandContext, command: Command): string {
  const dsn = typeof flags.dsn === "string" ? flags.dsn : undefined;
  const node = typeof flags.node === "string" ? flags.node : undefined;
  if (node !== undefined) {
    if (context.config === undefined) {
      throw new UsageError(
        `--node ${node} needs a config file: pass --config FILE, create ./spock.yaml or set SPOCK_CONFIG`,
        command,
      );
    }
    try {
      return findNode(context.config, node).dsn;
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message, command);
      throw error;
    }
  }
  if (dsn === undefined || dsn === "") {
    throw new UsageError("Missing required option --dsn or --node", command);
  }
  return dsn;
}

/** What a server notice says, as psql prints it: `WARNING:  message`, then DETAIL and HINT. */
function noticeText(notice: ServerErrorFields & { message?: string }): string {
  const lines = [`${notice.severity ?? "NOTICE"}:  ${notice.message ?? ""}`];
  if (notice.detail) lines.push(`DETAIL:  ${notice.detail}`);
  if (notice.hint) lines.push(`HINT:  ${notice.hint}`);
  return lines.join("\n");
}

/**
 * Opens a catalog client on `dsn`; a DSN that does not parse is a usage
 * error. The server's notices and warnings go to standard error, as psql
 * shows them: a warning that a slot was left behind must not be lost.
 */
export function connectTarget(
  dsn: string,
  context: CommandContext,
  command: Command,
): CatalogSql {
  try {
    return connectDatabase(
      resolveConnectOptions(dsn, { env: context.env, applicationName: `spock ${command.name}` }),
      { onnotice: (notice) => context.warn(noticeText(notice)) },
    );
  } catch (error) {
    if (error instanceof DsnError) throw new UsageError(error.message, command);
    throw error;
  }
}

/**
 * Runs `work` with a catalog client on `dsn` and closes the client after it;
 * a failure becomes the message the user reads ({@link describeFailure}).
 * Unless `catalog` is `any` (install, uninstall, version, a provider's slot),
 * a catalog that is not this program's is refused first, naming the upgrade.
 */
export async function withTarget<T>(
  dsn: string,
  context: CommandContext,
  command: Command,
  work: (sql: CatalogSql) => Promise<T>,
  options: { catalog?: "current" | "any" } = {},
): Promise<T> {
  const sql = connectTarget(dsn, context, command);
  try {
    if (options.catalog !== "any") {
      const where = maskDsn(dsn);
      await assertCatalogCurrent(sql, {
        where,
        installCommand: `spock install --dsn "${where}"`,
      });
    }
    return await work(sql);
  } catch (error) {
    throw describeFailure(error, dsn);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Fields of a postgres.js server error (read by shape: cli does not import postgres). */
interface ServerErrorFields {
  severity?: string;
  code?: string;
  detail?: string;
  hint?: string;
}

/**
 * An Error whose message is what the user should read for `error`: the
 * server's message with DETAIL and HINT, or which DSN could not be reached.
 */
export function describeFailure(error: unknown, dsn: string): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const fields = error as Error & ServerErrorFields;
  if (fields.severity !== undefined) {
    const lines = [error.message];
    if (fields.detail) lines.push(`DETAIL: ${fields.detail}`);
    if (fields.hint) lines.push(`HINT: ${fields.hint}`);
    if (fields.code === "3F000" || fields.code === "42P01") {
      lines.push("HINT: is spock installed in this database? Run 'spock install' first");
    }
    return new Error(lines.join("\n"), { cause: error });
  }
  if (/^(E[A-Z]+|CONNECT_TIMEOUT|CONNECTION_.*)$/.test(String(fields.code))) {
    return new Error(`Cannot connect to ${maskDsn(dsn)}: ${error.message}`, { cause: error });
  }
  return error;
}
