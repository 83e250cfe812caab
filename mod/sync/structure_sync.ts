/**
 * Structure synchronization, Spock's `synchronize_structure` done from outside
 * the server: find a pg_dump new enough for the provider, dump its schema
 * (`pre-data` before the data copy, `post-data` after it) under the slot's
 * exported snapshot, and run each script on the subscriber in one transaction.
 * Copying rows is `data_copy.ts`'s; choosing when to sync is the daemon's.
 */
import { getLogger } from "@logtape/logtape";
import postgres from "postgres";
import { formatDsn, maskDsn, parseDsn, quoteIdent } from "../pg/mod.ts";
import { cleanDumpScript } from "./_dump_script.ts";
import { StructureSyncError } from "./errors.ts";

const log = getLogger(["spock", "sync"]);

/** A pg_dump binary and its major version. */
export interface PgDumpTool {
  path: string;
  major: number;
  /** As `pg_dump --version` prints it: `15.18`, `18beta1` … */
  version: string;
}

const FIXED_DIRS = ["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin"];
const SEARCHED = "PG_BIN, PATH, /usr/lib/postgresql/<N>/bin, /usr/pgsql-<N>/bin, " +
  FIXED_DIRS.join(", ");

/**
 * Finds a pg_dump able to dump a server of `serverVersionNum` (`170010`): its
 * major version must be at least the server's, as pg_dump refuses newer
 * servers. Takes the first suitable one in this order: `$PG_BIN/pg_dump`, each
 * directory on `$PATH`, `/usr/lib/postgresql/<N>/bin` and `/usr/pgsql-<N>/bin`
 * (newest N first), `/usr/local/pgsql/bin`, `/opt/homebrew/bin`,
 * `/usr/local/bin`. Debian's `pg_wrapper` (what `/usr/bin/pg_dump` links to)
 * is passed over: the version it runs depends on local clusters, not on the
 * server we dump, so the real binaries in the install directories are used.
 *
 * @throws {StructureSyncError} `ERR_SYNC_NO_PG_DUMP`, naming the needed
 * major, what was found, where we looked and how to fix it.
 */
export async function findPgDump(
  serverVersionNum: number,
  options: { env?: Record<string, string | undefined> } = {},
): Promise<PgDumpTool> {
  if (!Number.isInteger(serverVersionNum) || serverVersionNum <= 0) {
    throw new RangeError(`Invalid server version number ${serverVersionNum}`);
  }
  const needed = Math.floor(serverVersionNum / 10000);
  const env = options.env ?? Deno.env.toObject();
  const found: string[] = [];
  const seen = new Set<string>();
  for (const path of await candidatePaths(env)) {
    const real = await realExecutable(path);
    if (real === undefined || seen.has(real)) continue;
    seen.add(real);
    if (real.endsWith("/pg_wrapper")) continue;
    const tool = await describePgDump(path);
    if (tool === undefined) {
      found.push(`unusable ${path}`);
      continue;
    }
    if (tool.major >= needed) {
      log.debug("Using pg_dump {version} at {path} for PostgreSQL {needed}", { ...tool, needed });
      return tool;
    }
    found.push(`pg_dump ${tool.version} at ${path}`);
  }
  throw new StructureSyncError(
    `Cannot find pg_dump ${needed} or newer for a PostgreSQL ${needed} server: found ` +
      `${found.length > 0 ? found.join(", ") : "none"}; looked in ${SEARCHED}; install ` +
      `postgresql-client-${needed} or set PG_BIN to a directory holding pg_dump ${needed} or newer`,
    { code: "ERR_SYNC_NO_PG_DUMP" },
  );
}

async function candidatePaths(env: Record<string, string | undefined>): Promise<string[]> {
  const dirs: string[] = [];
  if (env.PG_BIN) dirs.push(env.PG_BIN);
  for (const dir of (env.PATH ?? "").split(":")) if (dir !== "") dirs.push(dir);
  dirs.push(...(await numberedDirs("/usr/lib/postgresql", /^(\d+)$/, (n) => `${n}/bin`)));
  dirs.push(...(await numberedDirs("/usr", /^pgsql-(\d+)$/, (n) => `pgsql-${n}/bin`)));
  dirs.push(...FIXED_DIRS);
  return dirs.map((dir) => `${dir.replace(/\/+$/, "")}/pg_dump`);
}

/** Subdirectories of `parent` whose names carry a major version, newest first. */
async function numberedDirs(
  parent: string,
  pattern: RegExp,
  render: (major: number) => string,
): Promise<string[]> {
  const majors: number[] = [];
  try {
    for await (const entry of Deno.readDir(parent)) {
      const match = pattern.exec(entry.name);
      if (match) majors.push(Number(match[1]));
    }
  } catch {
    return []; // no such directory, or not readable
  }
  return majors.sort((a, b) => b - a).map((major) => `${parent}/${render(major)}`);
}

/** The resolved path of an executable regular file, or undefined. */
async function realExecutable(path: string): Promise<string | undefined> {
  try {
    const real = await Deno.realPath(path);
    const info = await Deno.stat(real);
    if (!info.isFile || (info.mode !== null && (info.mode & 0o111) === 0)) return undefined;
    return real;
  } catch {
    return undefined;
  }
}

async function describePgDump(path: string): Promise<PgDumpTool | undefined> {
  try {
    const out = await new Deno.Command(path, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const match = /\(PostgreSQL\)\s+((\d+)\S*)/.exec(text);
    if (!out.success || match === null) return undefined;
    return { path, major: Number(match[2]), version: match[1] };
  } catch {
    return undefined;
  }
}

/** Options of {@link dumpSchema}. */
export interface DumpSchemaOptions {
  tool: PgDumpTool;
  /**
   * libpq connection string of the provider. Its password goes to pg_dump
   * through `PGPASSWORD`, never on the command line, and it is never logged.
   */
  dsn: string;
  /** Snapshot exported by the slot creation (`--snapshot`); optional. */
  snapshotName?: string;
  /** `pre-data` (types, tables, views, functions) or `post-data` (indexes, constraints, triggers). */
  section: "pre-data" | "post-data";
  /** Schemas to leave out besides `spock` (the subscription's skip_schema). */
  excludeSchemas?: string[];
  /** Leave out `ALTER … OWNER TO` (default false: owners are kept, as Spock does). */
  noOwner?: boolean;
  /** Leave out GRANT and REVOKE (default false: privileges are kept, as Spock does). */
  noPrivileges?: boolean;
  signal?: AbortSignal;
}

/**
 * Runs `pg_dump --schema-only --section=<section> --format=plain` against the
 * provider and returns the SQL script, in UTF-8.
 *
 * Left out: the `spock` schema and `excludeSchemas`; publications and
 * subscriptions (the subscriber has its own, and a copied subscription would
 * connect somewhere); event triggers whose function lives in a left-out
 * schema, such as spock's own `spock_drop_cleanup` (pg_dump keeps them, and
 * they could not be created without their function). Owners and privileges
 * are kept by default, as Spock's pg_restore keeps them, so the subscriber
 * needs the same roles; `noOwner` and `noPrivileges` drop them.
 *
 * pg_dump 17.6, 16.10, 15.14 and later wrap plain dumps in the psql
 * meta-commands `\restrict KEY` and `\unrestrict KEY`; those lines are removed.
 * Any other meta-command outside a literal is refused, since we do not run psql.
 *
 * @throws {StructureSyncError} `ERR_SYNC_DUMP_FAILED` when pg_dump fails (its
 * stderr, passwords masked), `ERR_SYNC_DUMP_META` for another meta-command.
 * When `signal` aborts, pg_dump is killed and the signal's reason is thrown.
 */
export async function dumpSchema(options: DumpSchemaOptions): Promise<string> {
  const { tool, section, signal } = options;
  if (section !== "pre-data" && section !== "post-data") {
    throw new RangeError(`Invalid dump section "${section}": use "pre-data" or "post-data"`);
  }
  const excluded = [...new Set(["spock", ...(options.excludeSchemas ?? [])])];
  for (const schema of excluded) quoteIdent(schema); // RangeError for "" or NUL
  signal?.throwIfAborted();
  const params = parseDsn(options.dsn);
  const password = params.password;
  const args = [
    "--schema-only",
    `--section=${section}`,
    "--format=plain",
    "--encoding=UTF8",
    "--no-publications",
    "--no-subscriptions",
    ...excluded.map((schema) => `--exclude-schema=${quoteIdent(schema)}`),
  ];
  if (options.snapshotName !== undefined) args.push(`--snapshot=${options.snapshotName}`);
  if (options.noOwner) args.push("--no-owner");
  if (options.noPrivileges) args.push("--no-privileges");
  log.info("Dumping the {section} schema of {dsn} with pg_dump {version}", {
    section,
    dsn: maskDsn(options.dsn),
    version: tool.version,
  });
  log.debug("pg_dump arguments: {args}", { args });
  args.push(`--dbname=${formatDsn({ ...params, password: undefined })}`);
  const env: Record<string, string> = password === undefined ? {} : { PGPASSWORD: password };
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(tool.path, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
  } catch (error) {
    signal?.throwIfAborted();
    throw new StructureSyncError(`Cannot run pg_dump at "${tool.path}": ${error}`, {
      code: "ERR_SYNC_DUMP_FAILED",
      cause: error,
    });
  }
  signal?.throwIfAborted();
  const stderr = maskSecret(new TextDecoder().decode(out.stderr).trim(), password);
  if (!out.success) {
    throw new StructureSyncError(
      `Cannot dump the ${section} schema of ${maskDsn(options.dsn)}: pg_dump ${tool.version} ` +
        `exited with ${out.signal ?? `code ${out.code}`}: ${stderr || "no message"}`,
      { code: "ERR_SYNC_DUMP_FAILED" },
    );
  }
  if (stderr !== "") log.warning("pg_dump reported: {stderr}", { stderr });
  return cleanDumpScript(new TextDecoder().decode(out.stdout), excluded);
}

function maskSecret(text: string, secret: string | undefined): string {
  const masked = secret ? text.replaceAll(secret, "********") : text;
  return maskDsn(masked);
}

const ALREADY_EXISTS = new Set(["42P07", "42710", "42P06", "42723", "42P16", "42701"]);

/**
 * Executes a dump script on the subscriber in one transaction, through the
 * simple query protocol (several statements, no parameters). If any statement
 * fails, the transaction rolls back and nothing has changed. As with Spock's
 * `pg_restore --exit-on-error -1`, objects the subscriber already has make
 * the restore fail.
 *
 * pg_dump scripts change session settings (`set_config('search_path', '',
 * false)`, `SET client_min_messages` …). They are not left on the pooled
 * session: the transaction ends with `RESET ALL`, which returns every setting
 * to its value at connection start (a `SET` the caller made on that session
 * before is lost too).
 *
 * @throws {StructureSyncError} `ERR_SYNC_RESTORE_FAILED` naming the server's
 * message, SQLSTATE and script line. When `signal` aborts, the running
 * statement is cancelled, the transaction rolled back and the signal's reason
 * thrown.
 */
export async function restoreSchema(
  local: postgres.Sql,
  script: string,
  options: {
    signal?: AbortSignal;
    section?: "pre-data" | "post-data";
    /** Runs in the restore's transaction after the script: commits with it, or not at all. */
    thenInTransaction?: (tx: postgres.TransactionSql) => Promise<void>;
  } = {},
): Promise<void> {
  const { signal } = options;
  signal?.throwIfAborted();
  const what = options.section ? `the provider's ${options.section} schema` : "a schema script";
  const started = performance.now();
  try {
    await local.begin(async (tx) => {
      // The provider's schema, restored here, is not this node's DDL to replicate.
      await tx.unsafe("set local spock.enable_ddl_replication = off");
      // The script carries the provider's read-only guards on its tables.
      await tx.unsafe("set local spock._readonly_attach = off");
      const query = tx.unsafe(script);
      const cancel = () => query.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      try {
        await query;
      } finally {
        signal?.removeEventListener("abort", cancel);
      }
      await tx.unsafe("RESET ALL");
      await options.thenInTransaction?.(tx);
    });
  } catch (error) {
    signal?.throwIfAborted();
    if (!(error instanceof postgres.PostgresError)) throw error;
    throw restoreError(error, script, what);
  }
  log.info("Restored {what} on the subscriber in {ms} ms", {
    what,
    ms: Math.round(performance.now() - started),
  });
}

function restoreError(
  error: InstanceType<typeof postgres.PostgresError>,
  script: string,
  what: string,
): StructureSyncError {
  const position = Number(error.position);
  const where = position > 0 ? `, line ${script.slice(0, position - 1).split("\n").length}` : "";
  let hint = "";
  if (ALREADY_EXISTS.has(error.code)) {
    hint = ": the subscriber already has some of the provider's objects; drop them, or " +
      "create the subscription with synchronize_structure := false";
  } else if (error.code === "42704") {
    hint = ": create the missing object (often a role owning the provider's objects) " +
      "on the subscriber first";
  }
  return new StructureSyncError(
    `Cannot restore ${what} on the subscriber, nothing was changed: ${error.message} ` +
      `(SQLSTATE ${error.code}${where})${hint}`,
    { code: "ERR_SYNC_RESTORE_FAILED", sqlState: error.code, cause: error },
  );
}
