/**
 * Reading a config file: YAML parsed with positions, `${NAME}` environment
 * references expanded, every key checked against schema.ts, DSNs parsed.
 * Errors carry the file, key path, line and column; passwords never appear.
 */
import { parseListenAddress } from "./listen_address.ts";
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { DsnError, parseDsn } from "../pg/mod.ts";
import { ConfigError, type ConfigErrorCode } from "./errors.ts";
import {
  type Config,
  DEFAULT_ENGINE,
  DEFAULT_LOG,
  ENGINE_FIELDS,
  type EngineSettings,
  type FieldSpec,
  type InterfaceConfig,
  LOG_FORMATS,
  LOG_LEVELS,
  type NodeConfig,
} from "./schema.ts";

/** Inputs of {@link parseConfig} besides the text. */
export interface ParseConfigOptions {
  /** The file name used in messages. */
  file?: string;
  /** Variables for `${NAME}` references (pass `Deno.env.toObject()`); default none. */
  env?: Readonly<Record<string, string | undefined>>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Walks one document, knowing where every node sits. */
class Walker {
  readonly #file: string;
  readonly #lines: LineCounter;
  readonly #env: Env;

  constructor(file: string, lines: LineCounter, env: Env) {
    this.#file = file;
    this.#lines = lines;
    this.#env = env;
  }

  fail(code: ConfigErrorCode, path: string, node: unknown, message: string): never {
    const offset = (node as Node | undefined)?.range?.[0];
    const pos = offset === undefined ? undefined : this.#lines.linePos(offset);
    throw new ConfigError(code, {
      file: this.#file,
      path,
      line: pos?.line,
      column: pos?.col,
    }, message);
  }

  /** The map's entries, rejecting keys outside `known` and missing `required` ones. */
  entries(
    node: unknown,
    path: string,
    known: readonly string[],
    required: readonly string[] = [],
  ): Map<string, { key: Node; value: unknown; path: string }> {
    if (!isMap(node)) this.fail("ERR_CONFIG_TYPE", path, node, `${name(path)} must be a mapping`);
    const result = new Map<string, { key: Node; value: unknown; path: string }>();
    for (const pair of (node as YAMLMap).items) {
      const key = pair.key as Node;
      const keyName = isScalar(key) ? String(key.value) : "";
      const keyPath = path === "" ? keyName : `${path}.${keyName}`;
      if (!known.includes(keyName)) {
        const where = path === "" ? "at the top level" : `in "${path}"`;
        this.fail(
          "ERR_CONFIG_UNKNOWN_KEY",
          keyPath,
          key,
          `Unknown key "${keyPath}": ${where} use ${known.join(", ")}`,
        );
      }
      result.set(keyName, { key, value: pair.value, path: keyPath });
    }
    for (const key of required) {
      if (!result.has(key)) {
        this.fail("ERR_CONFIG_MISSING_KEY", path, node, `Missing required key "${path}.${key}"`);
      }
    }
    return result;
  }

  string(node: unknown, path: string): string {
    if (!isScalar(node) || typeof node.value !== "string") {
      this.fail(
        "ERR_CONFIG_TYPE",
        path,
        node,
        `${name(path)} must be a string, got ${typeOf(node)}`,
      );
    }
    return this.#expand((node as Scalar<string>).value, path, node);
  }

  field(node: unknown, path: string, spec: FieldSpec): string | number | boolean {
    switch (spec.kind) {
      case "string":
        return this.string(node, path);
      case "boolean":
        if (!isScalar(node) || typeof node.value !== "boolean") {
          this.fail(
            "ERR_CONFIG_TYPE",
            path,
            node,
            `${name(path)} must be true or false, got ${typeOf(node)}`,
          );
        }
        return node.value as boolean;
      case "integer": {
        if (!isScalar(node) || typeof node.value !== "number" || !Number.isInteger(node.value)) {
          this.fail(
            "ERR_CONFIG_TYPE",
            path,
            node,
            `${name(path)} must be an integer, got ${typeOf(node)}`,
          );
        }
        const value = node.value as number;
        if (value < spec.min || (spec.max !== undefined && value > spec.max)) {
          const range = spec.max === undefined
            ? `at least ${spec.min}`
            : `${spec.min} to ${spec.max}`;
          this.fail("ERR_CONFIG_VALUE", path, node, `${name(path)} must be ${range}, got ${value}`);
        }
        return value;
      }
      case "enum": {
        const value = this.string(node, path);
        if (!spec.values.includes(value)) {
          this.fail(
            "ERR_CONFIG_VALUE",
            path,
            node,
            `${name(path)} must be one of ${spec.values.join(", ")}, got "${value}"`,
          );
        }
        return value;
      }
    }
  }

  dsn(node: unknown, path: string): string {
    const dsn = this.string(node, path);
    try {
      parseDsn(dsn);
    } catch (error) {
      if (!(error instanceof DsnError)) throw error;
      this.fail("ERR_CONFIG_DSN", path, node, `${name(path)} is not a valid DSN: ${error.message}`);
    }
    return dsn;
  }

  /** Expands `${NAME}`; `$$` is a literal `$`. */
  #expand(text: string, path: string, node: unknown): string {
    return text.replace(/\$\$|\$\{([^}]*)\}/g, (match, variable: string | undefined) => {
      if (match === "$$") return "$";
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable ?? "")) {
        this.fail(
          "ERR_CONFIG_ENV",
          path,
          node,
          `${name(path)} has an invalid reference "${match}"`,
        );
      }
      const value = this.#env[variable!];
      if (value === undefined) {
        this.fail(
          "ERR_CONFIG_ENV",
          path,
          node,
          `${name(path)} references the environment variable ${variable}, which is not set`,
        );
      }
      return value;
    });
  }
}

function name(path: string): string {
  return path === "" ? "The document" : `Key "${path}"`;
}

function typeOf(node: unknown): string {
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (!isScalar(node) || node.value === null) return "nothing";
  const value = node.value;
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return `the number ${value}`;
  if (typeof value === "boolean") return `${value}`;
  return typeof value;
}

function readNodes(walker: Walker, node: unknown): NodeConfig[] {
  if (!isSeq(node)) {
    walker.fail(
      "ERR_CONFIG_TYPE",
      "nodes",
      node,
      `Key "nodes" must be a list, got ${typeOf(node)}`,
    );
  }
  const nodes: NodeConfig[] = [];
  const seen = new Map<string, number>();
  for (const [i, item] of node.items.entries()) {
    const path = `nodes[${i}]`;
    const entries = walker.entries(item, path, ["name", "dsn", "interfaces"], ["name", "dsn"]);
    const nameEntry = entries.get("name")!;
    const nodeName = walker.string(nameEntry.value, nameEntry.path);
    if (nodeName === "") {
      walker.fail(
        "ERR_CONFIG_VALUE",
        nameEntry.path,
        nameEntry.value,
        `Key "${nameEntry.path}" must not be empty`,
      );
    }
    if (seen.has(nodeName)) {
      walker.fail(
        "ERR_CONFIG_DUPLICATE",
        nameEntry.path,
        nameEntry.value,
        `Duplicate node name "${nodeName}": also at nodes[${seen.get(nodeName)}]`,
      );
    }
    seen.set(nodeName, i);
    const dsnEntry = entries.get("dsn")!;
    const interfaces: InterfaceConfig[] = [];
    const list = entries.get("interfaces");
    if (list !== undefined) {
      if (!isSeq(list.value)) {
        walker.fail(
          "ERR_CONFIG_TYPE",
          list.path,
          list.value,
          `Key "${list.path}" must be a list, got ${typeOf(list.value)}`,
        );
      }
      for (const [j, entry] of list.value.items.entries()) {
        const ifPath = `${path}.interfaces[${j}]`;
        const fields = walker.entries(entry, ifPath, ["name", "dsn"], ["name", "dsn"]);
        const ifName = walker.string(fields.get("name")!.value, `${ifPath}.name`);
        if (interfaces.some((other) => other.name === ifName)) {
          walker.fail(
            "ERR_CONFIG_DUPLICATE",
            `${ifPath}.name`,
            fields.get("name")!.value,
            `Duplicate interface name "${ifName}" in ${path}`,
          );
        }
        interfaces.push({
          name: ifName,
          dsn: walker.dsn(fields.get("dsn")!.value, `${ifPath}.dsn`),
        });
      }
    }
    nodes.push({ name: nodeName, dsn: walker.dsn(dsnEntry.value, dsnEntry.path), interfaces });
  }
  return nodes;
}

/**
 * Parses and validates config text. An empty document gives every default.
 *
 * @throws {ConfigError} naming the file, key path, line and column.
 */
export function parseConfig(text: string, options: ParseConfigOptions = {}): Config {
  const file = options.file ?? "<config>";
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = lines.linePos(syntax.pos[0]);
    const reason = syntax.code === "DUPLICATE_KEY"
      ? "Duplicate key in a mapping"
      : `Invalid YAML: ${syntax.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")}`;
    throw new ConfigError(
      syntax.code === "DUPLICATE_KEY" ? "ERR_CONFIG_DUPLICATE" : "ERR_CONFIG_SYNTAX",
      {
        file,
        path: "",
        line: pos?.line,
        column: pos?.col,
      },
      reason,
    );
  }
  const walker = new Walker(file, lines, options.env ?? {});
  const config: Config = {
    file,
    nodes: [],
    log: { ...DEFAULT_LOG },
    engine: { ...DEFAULT_ENGINE },
    monitoring: { listen: undefined },
  };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return config;
  const top = walker.entries(root, "", ["nodes", "log", "engine", "monitoring"]);
  const nodes = top.get("nodes");
  if (nodes !== undefined) config.nodes = readNodes(walker, nodes.value);
  const log = top.get("log");
  if (log !== undefined) {
    const settings = config.log as unknown as Record<string, unknown>;
    for (const [key, entry] of walker.entries(log.value, "log", ["level", "format"])) {
      const values = key === "level" ? LOG_LEVELS : LOG_FORMATS;
      settings[key] = walker.field(entry.value, entry.path, { kind: "enum", values });
    }
  }
  const engine = top.get("engine");
  if (engine !== undefined) {
    const known = Object.keys(ENGINE_FIELDS) as (keyof EngineSettings)[];
    const settings = config.engine as unknown as Record<string, unknown>;
    for (const [key, entry] of walker.entries(engine.value, "engine", known)) {
      settings[key] = walker.field(
        entry.value,
        entry.path,
        ENGINE_FIELDS[key as keyof EngineSettings],
      );
    }
  }
  const monitoring = top.get("monitoring");
  if (monitoring !== undefined) {
    for (const [, entry] of walker.entries(monitoring.value, "monitoring", ["listen"])) {
      const listen = walker.string(entry.value, entry.path);
      if (parseListenAddress(listen) === undefined) {
        walker.fail(
          "ERR_CONFIG_VALUE",
          entry.path,
          entry.value,
          `Key "${entry.path}" must be HOST:PORT, [IPv6]:PORT or :PORT with a port from 1 to 65535, got ${
            JSON.stringify(listen)
          }`,
        );
      }
      config.monitoring.listen = listen;
    }
  }
  return config;
}

/**
 * Reads and validates the config file at `path`.
 *
 * @throws {ConfigError} when the file cannot be read or is invalid.
 */
export async function loadConfig(
  path: string,
  options: { env?: Env } = {},
): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(
      "ERR_CONFIG_READ",
      { file: path, path: "" },
      `Cannot read the config file: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return parseConfig(text, { file: path, env: options.env });
}
