/**
 * Turns a libpq DSN into the connection settings postgres.js takes: libpq's
 * defaults (unix socket when one exists, port 5432, user from the OS), the
 * password file, and `sslmode` mapped onto TLS options. A plain object, so this
 * leaf folder stays free of postgres.js.
 */
import { type ConnectionParams, DsnError, isUnixSocketHost, parseDsn } from "./dsn.ts";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { DEFAULT_SOCKET_DIRS, lookupPgpass } from "./pgpass.ts";

/** TLS settings in node:tls form. */
export interface TlsSettings {
  rejectUnauthorized: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

/** Connection settings in the shape postgres.js accepts. */
export interface PgConnectOptions {
  host?: string[];
  port?: number[];
  path?: string;
  user: string;
  pass?: string;
  database: string;
  ssl: false | "prefer" | TlsSettings;
  connect_timeout?: number;
  connection: Record<string, string>;
}

/** Inputs of {@link resolveConnectOptions} besides the DSN. */
export interface ResolveOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /** `application_name` when the DSN sets none. */
  applicationName?: string;
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile || Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

function readFile(path: string, what: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    throw new DsnError(`Invalid DSN: cannot read ${what} "${path}": ${(error as Error).message}`);
  }
}

function defaultHost(port: number): string {
  return DEFAULT_SOCKET_DIRS.find((dir) => fileExists(`${dir}/.s.PGSQL.${port}`)) ?? "localhost";
}

function passwordFromFile(
  params: ConnectionParams,
  target: { host: string; port: number; dbname: string; user: string },
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const home = env.HOME;
  const path = params.passfile ?? (home ? `${home}/.pgpass` : undefined);
  if (path === undefined || !fileExists(path)) return undefined;
  // libpq ignores a password file that its group or others can read.
  const mode = Deno.statSync(path).mode;
  if (mode !== null && (mode & 0o077) !== 0) return undefined;
  try {
    return lookupPgpass(Deno.readTextFileSync(path), target);
  } catch {
    return undefined;
  }
}

function tlsSettings(
  params: ConnectionParams,
  host: string,
  env: Readonly<Record<string, string | undefined>>,
): PgConnectOptions["ssl"] {
  const mode = params.sslmode ?? "prefer";
  if (mode === "disable") return false;
  const home = env.HOME;
  const defaultRoot = home ? `${home}/.postgresql/root.crt` : undefined;
  const rootPath = params.sslrootcert ??
    (defaultRoot && fileExists(defaultRoot) ? defaultRoot : undefined);
  const settings: TlsSettings = { rejectUnauthorized: false };
  if (params.sslcert) settings.cert = readFile(params.sslcert, "sslcert");
  if (params.sslkey) settings.key = readFile(params.sslkey, "sslkey");
  if (mode === "allow" || mode === "prefer") {
    return settings.cert ? settings : "prefer";
  }
  // libpq: with a root certificate, sslmode=require verifies the chain like verify-ca.
  const verifyChain = mode === "verify-ca" || mode === "verify-full" ||
    (mode === "require" && params.sslrootcert !== undefined);
  if (verifyChain) {
    settings.rejectUnauthorized = true;
    if (rootPath && rootPath !== "system") settings.ca = readFile(rootPath, "sslrootcert");
    if (mode === "verify-full" && isIP(host)) {
      // node:tls refuses an IP address as servername: check the address against the certificate.
      settings.checkServerIdentity = (_name, cert) => checkServerIdentity(host, cert);
    } else if (mode === "verify-full") {
      settings.servername = host;
    } else {
      settings.checkServerIdentity = () => undefined;
    }
  }
  return settings;
}

/**
 * Resolves a DSN into postgres.js settings, applying libpq's defaults.
 *
 * @throws {DsnError} when the DSN is invalid or names files that cannot be read.
 */
export function resolveConnectOptions(dsn: string, options: ResolveOptions = {}): PgConnectOptions {
  const env = options.env ?? {};
  const params = parseDsn(dsn, env);
  const targets = params.hosts && params.hosts.length > 0
    ? params.hosts
    : [{ host: params.host, hostaddr: params.hostaddr, port: params.port }];
  const firstPort = targets[0].port ?? params.port ?? 5432;
  const hosts = targets.map((t) => t.host || t.hostaddr || defaultHost(t.port ?? firstPort));
  const user = params.user || env.USER || env.LOGNAME || "postgres";
  const database = params.dbname || user;
  const socket = isUnixSocketHost(hosts[0]);
  if (socket && targets.length > 1) {
    throw new DsnError("Invalid DSN: a unix-socket host cannot be combined with other hosts");
  }
  const password = params.password ??
    passwordFromFile(params, { host: hosts[0], port: firstPort, dbname: database, user }, env);
  const connection: Record<string, string> = {
    application_name: params.applicationName ?? options.applicationName ?? "spock",
  };
  if (params.options) connection.options = params.options;
  const resolved: PgConnectOptions = {
    user,
    database,
    ssl: socket ? false : tlsSettings(params, hosts[0], env),
    connection,
  };
  if (password !== undefined) resolved.pass = password;
  if (params.connectTimeout !== undefined && params.connectTimeout > 0) {
    resolved.connect_timeout = params.connectTimeout;
  }
  if (socket) {
    resolved.path = `${hosts[0]}/.s.PGSQL.${firstPort}`;
  } else {
    resolved.host = targets.map((t, i) => t.hostaddr || hosts[i]);
    resolved.port = targets.map((t) => t.port ?? firstPort);
  }
  return resolved;
}
