/**
 * Which config file applies and how its settings combine with the
 * environment and the command line: defaults < file < environment < flags.
 * Reading the file is load.ts's job; this only decides.
 */
import { ConfigError } from "./errors.ts";
import {
  type Config,
  DEFAULT_LOG,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormatName,
  type LogLevelName,
  type LogSettings,
  type NodeConfig,
} from "./schema.ts";

/** The config file used when neither `--config` nor `$SPOCK_CONFIG` names one. */
export const DEFAULT_CONFIG_FILE = "spock.yaml";

/**
 * The config file to read: `--config FILE`; else `./spock.yaml` when it
 * exists; else `$SPOCK_CONFIG`. Returns undefined when none applies. A file
 * named explicitly must exist; that is checked when it is read.
 */
export function findConfigFile(
  options: { flag?: string; env?: Readonly<Record<string, string | undefined>> } = {},
): string | undefined {
  if (options.flag !== undefined && options.flag !== "") return options.flag;
  try {
    if (Deno.statSync(DEFAULT_CONFIG_FILE).isFile) return DEFAULT_CONFIG_FILE;
  } catch {
    // no ./spock.yaml: fall through to $SPOCK_CONFIG
  }
  const fromEnv = options.env?.SPOCK_CONFIG;
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** Values given on the command line or in the environment, as strings still to check. */
export interface LogOverrides {
  /** `--log-level` / `--log-format`. */
  flags?: { level?: string; format?: string };
  /** Reads `SPOCK_LOG_LEVEL` and `SPOCK_LOG_FORMAT`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The first candidate given, checked against `values`; else `fallback`. */
function pick<T extends string>(
  values: readonly T[],
  candidates: [source: string, value: string | undefined][],
  fallback: T,
): T {
  for (const [source, value] of candidates) {
    if (value === undefined) continue;
    if (!(values as readonly string[]).includes(value)) {
      throw new RangeError(`Invalid ${source} "${value}": use ${values.join(", ")}`);
    }
    return value as T;
  }
  return fallback;
}

/**
 * The log settings in effect: defaults < config file < `SPOCK_LOG_*` < flags.
 *
 * @throws {RangeError} naming the source of an invalid level or format.
 */
export function resolveLogSettings(
  config: Config | undefined,
  overrides: LogOverrides = {},
): LogSettings {
  const base = config?.log ?? DEFAULT_LOG;
  return {
    level: pick<LogLevelName>(LOG_LEVELS, [
      ["--log-level", overrides.flags?.level],
      ["SPOCK_LOG_LEVEL", overrides.env?.SPOCK_LOG_LEVEL],
    ], base.level),
    format: pick<LogFormatName>(LOG_FORMATS, [
      ["--log-format", overrides.flags?.format],
      ["SPOCK_LOG_FORMAT", overrides.env?.SPOCK_LOG_FORMAT],
    ], base.format),
  };
}

/**
 * The node called `name` in `config`.
 *
 * @throws {ConfigError} (`ERR_CONFIG_MISSING_KEY`) when the file has no such node.
 */
export function findNode(config: Config, name: string): NodeConfig {
  const node = config.nodes.find((candidate) => candidate.name === name);
  if (node === undefined) {
    const known = config.nodes.map((n) => `"${n.name}"`).join(", ") || "none";
    throw new ConfigError(
      "ERR_CONFIG_MISSING_KEY",
      { file: config.file, path: "nodes" },
      `No node named "${name}" in the config file (nodes: ${known})`,
    );
  }
  return node;
}
