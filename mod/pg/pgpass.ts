/**
 * The libpq password file (`~/.pgpass`, `passfile`, `PGPASSFILE`): finding the
 * password for one connection target in the file's text, line by line as
 * libpq's passwordFromFile does. Locating and reading the file, and refusing
 * one with group or world access, are left to the caller.
 */

/** The connection a password is wanted for; one host of a multi-host DSN at a time. */
export interface PgpassTarget {
  /** Host name or socket directory; empty or absent means libpq's default. */
  host?: string;
  /** Used as the host name when `host` is empty, as libpq does. */
  hostaddr?: string;
  /** Defaults to 5432. */
  port?: number | string;
  /** Defaults to `user`, as libpq does before the lookup. */
  dbname?: string;
  /** Required: without a user name libpq does not look. */
  user?: string;
}

/** Options for `lookupPgpass()`. */
export interface PgpassOptions {
  /**
   * Socket directories that count as the default one, which `localhost`
   * entries match. libpq knows its single compiled-in directory; spock cannot,
   * so it accepts the usual ones.
   */
  defaultSocketDirs?: readonly string[];
}

/** The socket directories PostgreSQL builds commonly default to. */
export const DEFAULT_SOCKET_DIRS: readonly string[] = [
  "/tmp",
  "/var/run/postgresql",
  "/run/postgresql",
];

const DEFAULT_PORT = "5432";

/**
 * Returns the password of the first line of a `.pgpass` text that matches
 * `target`, or `undefined`. Lines are `hostname:port:database:username:password`;
 * a field of just `*` matches anything, `\:` and `\\` escape, and lines
 * starting with `#` are comments. `localhost` matches connections over the
 * default Unix socket, as in libpq. An empty password field yields `""`.
 *
 * @example
 * ```ts
 * lookupPgpass("*:*:app:alice:s3cret\n", { host: "db1", dbname: "app", user: "alice" });
 * // => "s3cret"
 * ```
 */
export function lookupPgpass(
  text: string,
  target: PgpassTarget,
  options: PgpassOptions = {},
): string | undefined {
  const user = target.user ?? "";
  const dbname = target.dbname || user;
  if (user === "") return undefined;
  let host = target.host || target.hostaddr || "";
  const socketDirs = options.defaultSocketDirs ?? DEFAULT_SOCKET_DIRS;
  if (host === "" || socketDirs.includes(host)) host = "localhost";
  const port = target.port === undefined || target.port === "" ? DEFAULT_PORT : String(target.port);
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/[\r\n]+$/, "");
    if (line === "" || line.startsWith("#")) continue;
    let rest: string | undefined = line;
    for (const wanted of [host, port, dbname, user]) {
      rest = matchField(rest, wanted);
      if (rest === undefined) break;
    }
    if (rest !== undefined) return unescapePassword(rest);
  }
  return undefined;
}

/** Matches the first field of `line` against `wanted`; returns the text after its ':'. */
function matchField(line: string, wanted: string): string | undefined {
  if (line.startsWith("*:")) return line.slice(2);
  let i = 0;
  let w = 0;
  while (i < line.length) {
    const escaped = line[i] === "\\";
    if (escaped) i++;
    if (i >= line.length) return undefined;
    if (line[i] === ":" && !escaped && w === wanted.length) return line.slice(i + 1);
    if (w === wanted.length || line[i] !== wanted[w]) return undefined;
    i++;
    w++;
  }
  return undefined;
}

/** The password field runs to the next unescaped ':' or the end of the line. */
function unescapePassword(field: string): string {
  let password = "";
  for (let i = 0; i < field.length && field[i] !== ":"; i++) {
    if (field[i] === "\\" && i + 1 < field.length) i++;
    password += field[i];
  }
  return password;
}
