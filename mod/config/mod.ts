/**
 * The config file (`spock.yaml`): YAML → validated, typed `Config` with file,
 * line and column in every error; which file applies; and the precedence
 * defaults < file < environment < flags. Imports only `pg` (for DSNs).
 *
 * @example
 * ```ts
 * import { findConfigFile, loadConfig, resolveLogSettings } from "./mod.ts";
 *
 * const env = Deno.env.toObject();
 * const file = findConfigFile({ env });
 * const config = file ? await loadConfig(file, { env }) : undefined;
 * const { level, format } = resolveLogSettings(config, { env, flags: { level: "debug" } });
 * ```
 */
export { ConfigError, type ConfigErrorCode, type ConfigLocation } from "./errors.ts";
export { loadConfig, parseConfig, type ParseConfigOptions } from "./load.ts";
export {
  DEFAULT_CONFIG_FILE,
  findConfigFile,
  findNode,
  type LogOverrides,
  resolveLogSettings,
} from "./resolve.ts";
export {
  type Config,
  DEFAULT_ENGINE,
  DEFAULT_LOG,
  ENGINE_FIELDS,
  type EngineSettings,
  type FieldSpec,
  type InterfaceConfig,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormatName,
  type LogLevelName,
  type LogSettings,
  type NodeConfig,
} from "./schema.ts";
export { type ListenAddress, parseListenAddress } from "./listen_address.ts";
