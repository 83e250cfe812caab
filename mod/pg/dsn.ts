/**
 * libpq-compatible connection strings: parsing `key=value` and `postgresql://`
 * DSNs into `ConnectionParams` with the PG* environment as fallback, rendering
 * them back, and masking passwords before a DSN reaches a message or a log.
 * Reading the environment and the password file is left to callers.
 */

/** libpq's `sslmode` values, weakest first. */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

/** One entry of a multi-host DSN (`host=a,b port=5432,5433`), matched by position. */
export interface HostTarget {
  host?: string;
  hostaddr?: string;
  port?: number;
}

/**
 * Connection settings as libpq reads them. Empty values mean "libpq default"
 * and are left out. With one host, `host`, `hostaddr` and `port` describe it.
 * With several, `host` and `hostaddr` keep libpq's comma-joined lists, `port`
 * is set only when every host uses the same port, and `hosts` holds one
 * resolved `HostTarget` per host, in order; `formatDsn()` renders from `hosts`.
 */
export interface ConnectionParams {
  host?: string;
  hostaddr?: string;
  port?: number;
  hosts?: HostTarget[];
  dbname?: string;
  user?: string;
  password?: string;
  sslmode?: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  applicationName?: string;
  connectTimeout?: number;
  options?: string;
  passfile?: string;
  targetSessionAttrs?: string;
}

/** A DSN that cannot be parsed. The message never contains a password. */
export class DsnError extends TypeError {
  readonly code = "ERR_DSN_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "DsnError";
  }
}

type ScalarField = Exclude<keyof ConnectionParams, "hosts">;

/** Accepted keywords in `formatDsn()` order, with their field and environment variable. */
const KEYWORDS: ReadonlyMap<string, { field: ScalarField; env: string }> = new Map([
  ["host", { field: "host", env: "PGHOST" }],
  ["hostaddr", { field: "hostaddr", env: "PGHOSTADDR" }],
  ["port", { field: "port", env: "PGPORT" }],
  ["dbname", { field: "dbname", env: "PGDATABASE" }],
  ["user", { field: "user", env: "PGUSER" }],
  ["password", { field: "password", env: "PGPASSWORD" }],
  ["passfile", { field: "passfile", env: "PGPASSFILE" }],
  ["sslmode", { field: "sslmode", env: "PGSSLMODE" }],
  ["sslrootcert", { field: "sslrootcert", env: "PGSSLROOTCERT" }],
  ["sslcert", { field: "sslcert", env: "PGSSLCERT" }],
  ["sslkey", { field: "sslkey", env: "PGSSLKEY" }],
  ["application_name", { field: "applicationName", env: "PGAPPNAME" }],
  ["connect_timeout", { field: "connectTimeout", env: "PGCONNECT_TIMEOUT" }],
  ["options", { field: "options", env: "PGOPTIONS" }],
  ["target_session_attrs", { field: "targetSessionAttrs", env: "PGTARGETSESSIONATTRS" }],
]);

const SSL_MODES = "disable allow prefer require verify-ca verify-full".split(" ");
const SESSION_ATTRS = "any read-write read-only primary standby prefer-standby".split(" ");
const HOST_KEYWORDS = ["host", "hostaddr", "port"];
const MASK = "********";
const MAX_INT4 = 2 ** 31 - 1;
const SPACE = " \t\n\v\f\r";
const URI_PARTS = /^(?:([^@/]*)@)?([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/s;
const PASSWORD_KEYWORD = /^(?:ssl)?password$/i;

/** A value as given: by the DSN, or by the environment variable `source`. */
type Setting = { value: string; source?: string };
/** Quotes a value for a message, or masks it when it could be part of a password. */
type Show = (value: string) => string;
type Span = [start: number, end: number];

/**
 * Parses a DSN in either libpq form, then fills unset keywords from `env`
 * (pass `Deno.env.toObject()`; the default is none, which keeps this pure).
 * An explicitly empty value (`host=''`) means "libpq default" and blocks the
 * environment, as in libpq. Surrounding whitespace around a URI is ignored.
 *
 * @throws {DsnError} on any syntax or value error; `replication` is refused
 * because spock sets it itself.
 */
export function parseDsn(
  dsn: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ConnectionParams {
  const secrets = passwordSpans(dsn, true).map(([start, end]) => dsn.slice(start, end));
  const show = makeShow([...secrets, env.PGPASSWORD]);
  const given = new Map<string, Setting>();
  if (uriPrefixLength(dsn.trim()) > 0) parseUri(dsn.trim(), given, show);
  else parseKeywordValues(dsn, given, show);
  for (const [keyword, { env: name }] of KEYWORDS) {
    const value = env[name];
    if (!given.has(keyword) && value !== undefined) given.set(keyword, { value, source: name });
  }
  return toParams(given, show);
}

/**
 * Returns `dsn` with every password replaced by `********`, in either form,
 * leaving the rest untouched. Never throws; for DSNs that do not parse it also
 * masks whatever looks like `password=…` or `scheme://user:…@`.
 */
export function maskDsn(dsn: string): string {
  try {
    let valid = true;
    try {
      parseDsn(dsn);
    } catch {
      valid = false;
    }
    let out = "";
    let at = 0;
    for (const [start, end] of passwordSpans(dsn, !valid).sort((x, y) => x[0] - y[0])) {
      if (end <= start || end <= at) continue; // empty, or inside a span already masked
      if (start >= at) out += dsn.slice(at, start) + MASK;
      at = end;
    }
    return out + dsn.slice(at);
  } catch {
    return MASK;
  }
}

/**
 * Renders params as a `key=value` DSN for handing on (to pg_dump, say); it
 * contains the password, so pass it through `maskDsn()` before showing it.
 * `parseDsn(formatDsn(p))` equals `p` for any `p` that `parseDsn()` returned.
 */
export function formatDsn(params: ConnectionParams): string {
  const hostFields = formatHosts(params);
  const parts: string[] = [];
  for (const [keyword, { field }] of KEYWORDS) {
    const value = keyword in hostFields
      ? hostFields[keyword as keyof typeof hostFields]
      : params[field];
    if (value !== undefined) parts.push(`${keyword}=${quoteValue(String(value))}`);
  }
  return parts.join(" ");
}

/** Whether a host names a Unix-domain socket directory (or a Linux abstract socket). */
export function isUnixSocketHost(host: string): boolean {
  return host.startsWith("/") || host.startsWith("@");
}

function formatHosts(params: ConnectionParams): Record<"host" | "hostaddr" | "port", unknown> {
  const hosts = params.hosts;
  if (hosts === undefined || hosts.length === 0) {
    return { host: params.host, hostaddr: params.hostaddr, port: params.port };
  }
  const list = (pick: (h: HostTarget) => string | number | undefined) =>
    hosts.some((h) => pick(h) !== undefined)
      ? hosts.map((h) => pick(h) ?? "").join(",")
      : undefined;
  const shared = params.port !== undefined && hosts.every((h) => h.port === params.port);
  return {
    host: list((h) => h.host),
    hostaddr: list((h) => h.hostaddr),
    port: shared ? params.port : list((h) => h.port),
  };
}

function quoteValue(value: string): string {
  if (value !== "" && !/[\s'\\]/.test(value)) return value;
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function uriPrefixLength(text: string): number {
  if (text.startsWith("postgresql://")) return "postgresql://".length;
  if (text.startsWith("postgres://")) return "postgres://".length;
  return 0;
}

function makeShow(secrets: readonly (string | undefined)[]): Show {
  const known = secrets.filter((s): s is string => s !== undefined && s !== "")
    .flatMap((s) => [s, safeDecode(s), s.replace(/^'|'$/g, "").replace(/\\([^])/g, "$1")]);
  return (value) =>
    value !== "" && known.some((s) => s.includes(value) || value.includes(s))
      ? `"${MASK}"`
      : `"${value}"`;
}

function store(given: Map<string, Setting>, keyword: string, value: string, name: string): void {
  if (keyword === "replication") {
    throw new DsnError(`Invalid DSN: parameter "replication" is not allowed: spock sets it itself`);
  }
  if (!KEYWORDS.has(keyword)) throw new DsnError(`Invalid DSN: unknown parameter ${name}`);
  given.set(keyword, { value });
}

/** One `keyword=value` pair; `start`/`end` span the raw value, quotes included. */
type Pair = { keyword: string; value: string; start: number; end: number; quoted: boolean };
type Scan = { pairs: Pair[]; error?: "missing" | "unterminated"; keyword?: string };

/** Tokenizes `key=value` text like libpq's conninfo_parse, stopping at the first error. */
function scanPairs(text: string): Scan {
  const pairs: Pair[] = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    while (i < n && SPACE.includes(text[i])) i++;
    if (i >= n) return { pairs };
    const keyStart = i;
    while (i < n && text[i] !== "=" && !SPACE.includes(text[i])) i++;
    const keyword = text.slice(keyStart, i);
    while (i < n && SPACE.includes(text[i])) i++;
    if (text[i] !== "=") return { pairs, error: "missing", keyword };
    i++;
    while (i < n && SPACE.includes(text[i])) i++;
    const start = i;
    const quoted = text[i] === "'";
    let value = "";
    let closed = !quoted;
    if (quoted) i++;
    while (i < n) {
      const ch = text[i];
      if (!quoted && SPACE.includes(ch)) break;
      if (quoted && ch === "'") {
        i++;
        closed = true;
        break;
      }
      if (ch === "\\") i++;
      if (i < n) value += text[i++];
    }
    pairs.push({ keyword, value, start, end: i, quoted });
    if (!closed) return { pairs, error: "unterminated", keyword };
  }
}

function parseKeywordValues(text: string, given: Map<string, Setting>, show: Show): void {
  const { pairs, error, keyword } = scanPairs(text);
  let previous: Pair | undefined;
  // A word right after an unquoted password may be the rest of a password with a space in it.
  const name = (word: string) => {
    if (previous?.keyword === "password" && !previous.quoted) return `"${MASK}"`;
    return KEYWORDS.has(word) || word === "replication" ? `"${word}"` : show(word);
  };
  for (const pair of pairs) {
    if (error === "unterminated" && pair === pairs.at(-1)) {
      throw new DsnError(`Invalid DSN: unterminated quoted value for ${name(pair.keyword)}`);
    }
    store(given, pair.keyword, pair.value, name(pair.keyword));
    previous = pair;
  }
  if (error === "missing") {
    throw new DsnError(`Invalid DSN: missing "=" after ${name(keyword ?? "")}`);
  }
}

function malformed(detail: string): DsnError {
  return new DsnError(`Invalid DSN: malformed URI: ${detail}`);
}

/** Parses `postgresql://[user[:password]@][host][:port][,…][/dbname][?k=v&…]` like libpq. */
function parseUri(uri: string, given: Map<string, Setting>, show: Show): void {
  // libpq takes userinfo up to the first "@" unless a "/" comes first; hosts end at "/" or "?".
  const [, userinfo, netlocs, dbname, query] = URI_PARTS.exec(uri.slice(uriPrefixLength(uri)))!;
  const set = (keyword: string, raw: string | undefined, what = keyword) => {
    if (raw) given.set(keyword, { value: percentDecode(raw, what, show) });
  };
  if (userinfo !== undefined) {
    const colon = userinfo.includes(":") ? userinfo.indexOf(":") : userinfo.length;
    set("user", userinfo.slice(0, colon));
    set("password", userinfo.slice(colon + 1));
  }
  const hosts: string[] = [];
  const ports: string[] = [];
  for (const netloc of netlocs.split(",")) {
    let [host, port] = [netloc, ""];
    if (netloc.startsWith("[")) {
      const close = netloc.indexOf("]");
      if (close === -1) throw malformed(`missing "]" after IPv6 address ${show(netloc)}`);
      if (close === 1) throw malformed(`empty IPv6 address "[]"`);
      [host, port] = [netloc.slice(1, close), netloc.slice(close + 1)];
      if (port !== "" && !port.startsWith(":")) {
        throw malformed(`unexpected ${show(port[0])} after IPv6 address ${show(host)}`);
      }
      port = port.slice(1);
    } else if (netloc.includes(":")) {
      [host, port] = [netloc.slice(0, netloc.indexOf(":")), netloc.slice(netloc.indexOf(":") + 1)];
    }
    hosts.push(percentDecode(host, "host", show));
    ports.push(percentDecode(port, "port", show));
  }
  if (hosts.join(",") !== "") given.set("host", { value: hosts.join(",") });
  if (ports.join(",") !== "") given.set("port", { value: ports.join(",") });
  set("dbname", dbname);
  if (query !== undefined) parseQuery(query, given, show);
}

function parseQuery(query: string, given: Map<string, Setting>, show: Show): void {
  const segments = query.split("&");
  if (segments.at(-1) === "") segments.pop(); // libpq accepts a trailing "&"
  for (const segment of segments) {
    const eq = segment.indexOf("=");
    if (eq === -1) throw malformed(`query parameter ${show(segment)} has no "="`);
    if (segment.includes("=", eq + 1)) {
      throw malformed(
        `query parameter ${show(segment.slice(0, eq))} has a second "=": percent-encode it as %3D`,
      );
    }
    let keyword = percentDecode(segment.slice(0, eq), "a query parameter name", show);
    let value = percentDecode(segment.slice(eq + 1), `query parameter ${show(keyword)}`, show);
    if (keyword === "ssl" && value === "true") [keyword, value] = ["sslmode", "require"]; // JDBC spelling
    store(given, keyword, value, show(keyword));
  }
}

/** Decodes `%XY` escapes as UTF-8, refusing bad escapes, `%00` and invalid UTF-8. */
function percentDecode(raw: string, what: string, show: Show): string {
  const bad = /%(?![0-9A-Fa-f]{2}).{0,2}/s.exec(raw);
  if (bad) throw new DsnError(`Invalid DSN: invalid percent-encoding ${show(bad[0])} in ${what}`);
  if (raw.includes("%00")) throw new DsnError(`Invalid DSN: percent-encoded NUL byte in ${what}`);
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new DsnError(`Invalid DSN: percent-encoded ${what} is not valid UTF-8`);
  }
}

function describe(keyword: string, value: string, setting: Setting, show: Show): string {
  return `${keyword} ${show(value)}${setting.source ? ` from ${setting.source}` : ""}`;
}

function parseNumber(text: string, label: string, min: number, max: number): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new DsnError(`Invalid DSN: ${label} is not a number`);
  const value = Number(text);
  if (value < min || value > max) {
    throw new DsnError(`Invalid DSN: ${label} is out of range ${min}-${max}`);
  }
  return value;
}

/** Validates and converts the collected settings; empty values are left out. */
function toParams(given: Map<string, Setting>, show: Show): ConnectionParams {
  const params: ConnectionParams = {};
  const fields = params as Record<string, unknown>;
  for (const [keyword, setting] of given) {
    const { value } = setting;
    if (value === "" || HOST_KEYWORDS.includes(keyword)) continue; // see resolveHosts()
    const field = KEYWORDS.get(keyword)!.field;
    const label = describe(keyword, value, setting, show);
    if (keyword === "sslmode" && !SSL_MODES.includes(value)) {
      throw new DsnError(`Invalid DSN: ${label} is not one of ${SSL_MODES.join(", ")}`);
    }
    if (keyword === "target_session_attrs" && !SESSION_ATTRS.includes(value)) {
      throw new DsnError(`Invalid DSN: ${label} is not one of ${SESSION_ATTRS.join(", ")}`);
    }
    fields[field] = keyword === "connect_timeout" ? parseNumber(value, label, 0, MAX_INT4) : value;
  }
  resolveHosts(params, given, show);
  return params;
}

/** Pairs hosts, hostaddrs and ports by position, as libpq's connectOptions2 does. */
function resolveHosts(params: ConnectionParams, given: Map<string, Setting>, show: Show): void {
  const list = (keyword: string) => {
    const setting = given.get(keyword);
    return setting === undefined || setting.value === "" ? [] : setting.value.split(",");
  };
  const hostList = list("host");
  const addrList = list("hostaddr");
  const portSetting = given.get("port") ?? { value: "" };
  const ports = list("port").map((text) =>
    text.trim() === ""
      ? undefined
      : parseNumber(text, describe("port", text, portSetting, show), 1, 65535)
  );
  if (hostList.length > 0 && addrList.length > 0 && hostList.length !== addrList.length) {
    throw new DsnError(
      `Invalid DSN: ${hostList.length} host names given for ${addrList.length} hostaddr values`,
    );
  }
  const count = Math.max(hostList.length, addrList.length, 1);
  if (ports.length > 1 && ports.length !== count) {
    throw new DsnError(`Invalid DSN: ${ports.length} ports given for ${count} hosts`);
  }
  const targets = Array.from({ length: count }, (_, i) => {
    const target: HostTarget = {};
    if (hostList[i]) target.host = hostList[i];
    if (addrList[i]) target.hostaddr = addrList[i];
    const port = ports.length === 1 ? ports[0] : ports[i];
    if (port !== undefined) target.port = port;
    return target;
  });
  if (count === 1) {
    Object.assign(params, targets[0]);
    return;
  }
  if (hostList.length > 0) params.host = given.get("host")!.value;
  if (addrList.length > 0) params.hostaddr = given.get("hostaddr")!.value;
  const first = targets[0].port;
  if (first !== undefined && targets.every((t) => t.port === first)) params.port = first;
  params.hosts = targets;
}

/**
 * Where passwords sit in `dsn`, as [start, end) spans of the raw text. With
 * `liberal`, also anything resembling a password in text that may not parse.
 */
function passwordSpans(dsn: string, liberal: boolean): Span[] {
  const spans: Span[] = [];
  const text = dsn.trimStart();
  const offset = dsn.length - text.length;
  const prefix = uriPrefixLength(text);
  if (prefix > 0) {
    let p = prefix;
    while (p < text.length && text[p] !== "@" && text[p] !== "/") p++;
    const colon = text.indexOf(":", prefix);
    if (text[p] === "@" && colon !== -1 && colon < p) spans.push([offset + colon + 1, offset + p]);
    const query = text.indexOf("?", text[p] === "@" ? p : prefix);
    if (query !== -1) spans.push(...querySpans(dsn, offset + query));
  } else {
    for (const pair of scanPairs(dsn).pairs) {
      if (PASSWORD_KEYWORD.test(pair.keyword)) spans.push([pair.start, pair.end]);
    }
  }
  return liberal ? spans.concat(liberalSpans(dsn)) : spans;
}

function querySpans(text: string, query: number): Span[] {
  const spans: Span[] = [];
  let start = query + 1;
  for (const segment of text.slice(start).split("&")) {
    const eq = segment.indexOf("=");
    if (eq !== -1 && PASSWORD_KEYWORD.test(safeDecode(segment.slice(0, eq)))) {
      spans.push([start + eq + 1, start + segment.length]);
    }
    start += segment.length + 1;
  }
  return spans;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Best-effort spans for text that does not parse: `scheme://user:…@` and `password=…`. */
function liberalSpans(text: string): Span[] {
  const spans: Span[] = [];
  for (const match of text.matchAll(/:\/\/(\S*)/g)) {
    const start = match.index + 3;
    const segment = match[1];
    const query = segment.indexOf("?");
    let at = (query === -1 ? segment : segment.slice(0, query)).lastIndexOf("@");
    if (at === -1) at = segment.indexOf("@");
    const colon = segment.indexOf(":");
    if (at !== -1 && colon !== -1 && colon < at) spans.push([start + colon + 1, start + at]);
  }
  for (const match of text.matchAll(/(?<![A-Za-z0-9_])(?:ssl)?password\s*=\s*/gi)) {
    const start = match.index + match[0].length;
    // In a URI query the value ends at "&"; otherwise it is quoted or runs to whitespace.
    const value = /[?&]/.test(text[match.index - 1] ?? "")
      ? /[^\s&#]*/y
      : /'(?:\\[^]|[^'\\])*'?|(?:\\[^]|[^\s\\])*/y;
    value.lastIndex = start;
    value.exec(text);
    spans.push([start, value.lastIndex]);
  }
  return spans;
}
