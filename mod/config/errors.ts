/**
 * The config file's domain error: where in which file a setting is wrong
 * (key path such as `nodes[1].dsn`, line and column) and why. Messages name
 * the key, never a password.
 */

/** Why a config file was rejected; stable strings callers and tests may branch on. */
export type ConfigErrorCode =
  | "ERR_CONFIG_READ"
  | "ERR_CONFIG_SYNTAX"
  | "ERR_CONFIG_UNKNOWN_KEY"
  | "ERR_CONFIG_MISSING_KEY"
  | "ERR_CONFIG_TYPE"
  | "ERR_CONFIG_VALUE"
  | "ERR_CONFIG_DSN"
  | "ERR_CONFIG_DUPLICATE"
  | "ERR_CONFIG_ENV";

/** Where a {@link ConfigError} points: the file, the key path and its position (1-based). */
export interface ConfigLocation {
  file: string;
  /** The key path, e.g. `nodes[1].dsn`; empty for the document itself. */
  path: string;
  line?: number;
  column?: number;
}

/** A config file that cannot be read or is invalid. */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly file: string;
  readonly path: string;
  readonly line: number | undefined;
  readonly column: number | undefined;

  /** `message` is the reason alone; the full message is prefixed with `file:line:column: `. */
  constructor(
    code: ConfigErrorCode,
    location: ConfigLocation,
    message: string,
    options?: ErrorOptions,
  ) {
    const where = location.line === undefined
      ? location.file
      : `${location.file}:${location.line}:${location.column ?? 1}`;
    super(`${where}: ${message}`, options);
    this.name = "ConfigError";
    this.code = code;
    this.file = location.file;
    this.path = location.path;
    this.line = location.line;
    this.column = location.column;
  }
}
