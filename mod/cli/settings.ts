/**
 * The settings every command starts from: the config file in effect (if any)
 * and the log settings, combined as defaults < file < environment < flags.
 * main.ts calls this before configuring LogTape; mod/config does the work.
 */
import {
  type Config,
  findConfigFile,
  loadConfig,
  type LogSettings,
  resolveLogSettings,
} from "../config/mod.ts";
import { type Command, type ParsedFlags, UsageError } from "./command.ts";

/**
 * Loads the config file named by `--config` (or found by default) and
 * resolves the log settings.
 *
 * @throws {ConfigError} when the file cannot be read or is invalid.
 * @throws {UsageError} for an invalid log level or format from the environment or flags.
 */
export async function loadSettings(
  flags: ParsedFlags,
  env: Readonly<Record<string, string | undefined>>,
  command: Command,
): Promise<{ config: Config | undefined; log: LogSettings }> {
  const file = findConfigFile({ flag: flags.config as string | undefined, env });
  const config = file === undefined ? undefined : await loadConfig(file, { env });
  try {
    const log = resolveLogSettings(config, {
      env,
      flags: {
        level: flags["log-level"] as string | undefined,
        format: flags["log-format"] as string | undefined,
      },
    });
    return { config, log };
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message, command);
    throw error;
  }
}
