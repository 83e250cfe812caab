/**
 * Table-driven management subcommands: one declarative {@link ApiSpec} per
 * SQL API function (its arguments, types and defaults) gives the flags, the
 * help, the checks and the call `spock.fn(arg := $1::type, …)`. Only the
 * arguments given are passed, so SQL defaults apply; every value is a bind
 * parameter. Listings run a fixed catalog query instead.
 */
import { parseLsn } from "../pg/mod.ts";
import type { CatalogSql } from "../catalog/mod.ts";
import {
  type Command,
  type CommandContext,
  type FlagSpec,
  type ParsedFlags,
  UsageError,
} from "./command.ts";
import { formatResult, maskDsnColumns, type ResultShape, type Row, writeOut } from "./_output.ts";
import { JSON_FLAG, TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";

/** SQL types the API's arguments use. */
export type SqlType =
  | "name"
  | "text"
  | "oid"
  | "integer"
  | "boolean"
  | "text[]"
  | "interval"
  | "regclass"
  | "pg_lsn"
  | "jsonb";

/** One argument of an SQL API function. */
export interface ApiArg {
  /** The SQL argument name; the flag is its kebab case (`node_name` → `--node-name`). */
  name: string;
  type: SqlType;
  /** The SQL default as help shows it; absent means the argument is required. */
  default?: string;
  description: string;
}

/** Named argument values ready to bind, in SQL argument order. */
export type ApiValues = Map<string, { type: SqlType; value: string | boolean }>;

/** One management subcommand calling one SQL function, or running one catalog query. */
export interface ApiSpec {
  /** `node create` */
  name: string;
  summary: string;
  /** The function in schema spock (`node_create`), or a fixed query for listings. */
  call: { fn: string; args: readonly ApiArg[] } | { query: string };
  returns: ResultShape;
  description?: string;
  /**
   * Rewrites the call before it runs (sub create asks the provider for its
   * node first); gets the values of the given arguments.
   */
  /** The `dsn` argument defaults to the target's DSN when --node is given (node create). */
  dsnFromNode?: boolean;
  prepare?(
    values: ApiValues,
    context: CommandContext,
    command: Command,
  ): Promise<{ fn: string; values: ApiValues }>;
  /**
   * Finishes the job after the call succeeded (sub drop drops the provider's
   * slot) and returns the rows to print.
   */
  finish?(rows: Row[], context: CommandContext, command: Command): Promise<Row[]>;
  /** Offer `--timeout SECONDS`: the call is cancelled after that long (waits). */
  timeout?: boolean;
}

const TIMEOUT_FLAG: FlagSpec = {
  type: "string",
  value: "SECONDS",
  description: "Give up after this many seconds, with exit code 1 (default: no limit)",
};

/** The --timeout in milliseconds, or undefined without one. */
function timeoutMs(flags: ParsedFlags, command: Command): number | undefined {
  if (flags.timeout === undefined) return undefined;
  const raw = String(flags.timeout);
  const seconds = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(seconds > 0) || seconds > 2_147_483) {
    throw new UsageError(`Invalid --timeout "${raw}": expected a number of seconds`, command);
  }
  return Math.round(seconds * 1000);
}

/** NAMEDATALEN - 1: the longest name PostgreSQL keeps. */
const NAME_MAX_BYTES = 63;

const PLACEHOLDER: Record<SqlType, string> = {
  name: "NAME",
  text: "TEXT",
  oid: "OID",
  integer: "N",
  boolean: "",
  "text[]": "A,B",
  interval: "INTERVAL",
  regclass: "TABLE",
  pg_lsn: "LSN",
  jsonb: "JSON",
};

/** `node_name` → `node-name`. */
export function flagName(argName: string): string {
  return argName.replaceAll("_", "-");
}

/** A text[] value as a PostgreSQL array literal, every element quoted. */
export function arrayLiteral(items: readonly string[]): string {
  return `{${
    items.map((item) => `"${item.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`).join(",")
  }}`;
}

function argFlag(arg: ApiArg): FlagSpec {
  const given = arg.default === undefined ? "required" : `default ${arg.default}`;
  if (arg.type === "boolean") {
    return {
      type: "boolean",
      negatable: true,
      description: `${arg.description} (${given})`,
    };
  }
  return {
    type: "string",
    value: placeholder(arg),
    description: `${arg.description} (${arg.type}, ${given})`,
  };
}

/** Checks and converts the flag value of `arg`; throws UsageError on a bad one. */
function argValue(arg: ApiArg, raw: string | boolean, command: Command): string | boolean {
  const flag = `--${flagName(arg.name)}`;
  const bad = (why: string): never => {
    throw new UsageError(`Invalid ${flag} "${raw}": ${why}`, command);
  };
  if (arg.type === "boolean") return raw === true;
  const text = String(raw);
  switch (arg.type) {
    case "oid":
    case "integer":
      if (!/^-?\d+$/.test(text)) bad("expected an integer");
      return text;
    case "pg_lsn":
      try {
        parseLsn(text);
      } catch (error) {
        bad((error as Error).message);
      }
      return text;
    case "jsonb":
      try {
        JSON.parse(text);
      } catch {
        bad("expected a JSON document");
      }
      return text;
    case "text[]":
      return arrayLiteral(text === "" ? [] : text.split(",").map((item) => item.trim()));
    case "name": {
      if (text === "") bad("must not be empty");
      // The server would cut it to 63 bytes without a word, and act on another name.
      const bytes = new TextEncoder().encode(text).length;
      if (bytes > NAME_MAX_BYTES) {
        bad(`is ${bytes} bytes long; PostgreSQL names are at most ${NAME_MAX_BYTES} bytes`);
      }
      return text;
    }
    default:
      if (text === "" && arg.type === "regclass") bad("must not be empty");
      return text;
  }
}

/** The SQL and bind parameters for calling `spock.<fn>` with `values`. */
export function buildCall(fn: string, values: ApiValues, returns: ResultShape): {
  text: string;
  params: (string | boolean)[];
} {
  const params: (string | boolean)[] = [];
  const args = [...values].map(([name, { type, value }]) => {
    params.push(value);
    // jsonb and arrays travel as text: postgres.js would re-serialize a string it
    // was given for a parameter the server describes as jsonb or text[].
    const cast = type === "jsonb" || type === "text[]" ? `text::${type}` : type;
    return `${name} := $${params.length}::${cast}`;
  });
  const call = `spock.${fn}(${args.join(", ")})`;
  return { text: returns === "void" ? `SELECT ${call}` : `SELECT * FROM ${call}`, params };
}

function placeholder(arg: ApiArg): string {
  return arg.name.endsWith("dsn") ? "DSN" : PLACEHOLDER[arg.type];
}

/** `--set-name NAME`; booleans as the form that changes the default. */
function usageFlag(arg: ApiArg): string {
  const flag = flagName(arg.name);
  if (arg.type !== "boolean") return `--${flag} ${placeholder(arg)}`;
  if (arg.default === "true") return `--no-${flag}`;
  if (arg.default === "false") return `--${flag}`;
  return `--[no-]${flag}`;
}

function usageLine(spec: ApiSpec, ownsDsn: boolean): string {
  const parts = [`spock ${spec.name}`];
  if ("fn" in spec.call) {
    for (const arg of spec.call.args) {
      parts.push(arg.default === undefined ? usageFlag(arg) : `[${usageFlag(arg)}]`);
    }
  }
  parts.push(ownsDsn ? "[--node NAME]" : "(--dsn DSN | --node NAME)", "[--json]");
  return parts.join(" ");
}

/** Builds the subcommand described by `spec`. */
export function apiCommand(spec: ApiSpec): Command {
  const args = "fn" in spec.call ? spec.call.args : [];
  // node create and node add-interface take the node's DSN as `--dsn`: it is
  // then also the target database unless --node names another.
  const ownsDsn = args.some((arg) => arg.name === "dsn");
  const flags: Record<string, FlagSpec> = {};
  for (const arg of args) flags[flagName(arg.name)] = argFlag(arg);
  for (const [name, flag] of Object.entries({ ...TARGET_FLAGS, ...JSON_FLAG })) {
    if (!(name in flags)) flags[name] = flag;
  }
  if (spec.timeout) flags.timeout = TIMEOUT_FLAG;
  const target = "fn" in spec.call
    ? `Calls spock.${spec.call.fn}() with the options given; the others take their SQL defaults.`
    : "Reads the spock catalog.";
  const booleans = args.some((arg) => arg.type === "boolean")
    ? "\nBoolean arguments: --x passes true, --no-x passes false, neither the SQL default."
    : "";
  const lists = args.some((arg) => arg.type === "text[]")
    ? "\nLists are comma-separated (--x a,b); an empty value passes the empty list."
    : "";
  const command: Command = {
    name: spec.name,
    summary: spec.summary,
    usage: usageLine(spec, ownsDsn),
    description: [spec.description ?? spec.summary, "", target + booleans + lists].join("\n"),
    flags,
    run: (parsed, _positionals, context) => runApi(spec, command, parsed, context),
  };
  return command;
}

async function runApi(
  spec: ApiSpec,
  command: Command,
  flags: ParsedFlags,
  context: CommandContext,
): Promise<number> {
  let values: ApiValues = new Map();
  if ("fn" in spec.call) {
    for (const arg of spec.call.args) {
      let raw = flags[flagName(arg.name)];
      if (raw === undefined && arg.name === "dsn" && spec.dsnFromNode && flags.node !== undefined) {
        raw = targetDsn(flags, context, command);
      }
      if (raw === undefined) {
        if (arg.default === undefined) {
          throw new UsageError(`Missing required option --${flagName(arg.name)}`, command);
        }
        continue;
      }
      values.set(arg.name, {
        type: arg.type,
        value: argValue(arg, raw as string | boolean, command),
      });
    }
  }
  const dsn = targetDsn(flags, context, command);
  const limit = timeoutMs(flags, command);
  let fn = "fn" in spec.call ? spec.call.fn : "";
  if (spec.prepare) ({ fn, values } = await spec.prepare(values, context, command));
  return await withTarget(dsn, context, command, async (sql) => {
    const timedOut = limit === undefined ? undefined : AbortSignal.timeout(limit);
    const signal = timedOut ? AbortSignal.any([context.signal, timedOut]) : context.signal;
    let rows;
    try {
      rows = await runQuery(sql, spec, fn, values, signal);
    } catch (error) {
      if (!timedOut?.aborted) throw error;
      throw new Error(`Timed out after ${flags.timeout} s (--timeout)`, { cause: error });
    }
    if (spec.finish) rows = await spec.finish(rows, context, command);
    await writeOut(
      context.stdout,
      formatResult(maskDsnColumns(rows), spec.returns, flags.json === true),
    );
    return 0;
  });
}

async function runQuery(
  sql: CatalogSql,
  spec: ApiSpec,
  fn: string,
  values: ApiValues,
  signal: AbortSignal,
): Promise<Row[]> {
  const { text, params } = "query" in spec.call
    ? { text: spec.call.query, params: [] }
    : buildCall(fn, values, spec.returns);
  return await cancellableQuery(sql, text, params, signal);
}

/** Runs one query, cancelling it on the server when `signal` aborts (Ctrl-C). */
export async function cancellableQuery(
  sql: CatalogSql,
  text: string,
  params: (string | number | boolean | null)[],
  signal: AbortSignal,
): Promise<Row[]> {
  const query = sql.unsafe(text, params);
  const cancel = () => query.cancel();
  signal.addEventListener("abort", cancel, { once: true });
  try {
    return [...await query] as Row[];
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}
