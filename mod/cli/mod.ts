/**
 * The command-line interface: the table of subcommands, root help, and the
 * lookup main.ts uses. Nothing but main.ts imports this folder.
 *
 * @example
 * ```ts
 * import { findCommand } from "./mod/cli/mod.ts";
 * const command = findCommand("stream");
 * ```
 */
import type { Command } from "./command.ts";
import { streamCommand } from "./stream.ts";
import { SPOCK_VERSION, versionCommand } from "./version.ts";

export {
  type Command,
  type CommandContext,
  commandHelp,
  GLOBAL_FLAGS,
  parseCommandArgs,
  UsageError,
} from "./command.ts";
export { SPOCK_VERSION } from "./version.ts";

/** Every subcommand, in the order help lists them. */
export const COMMANDS: readonly Command[] = [streamCommand, versionCommand];

/** The subcommand called `name`, if any. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((command) => command.name === name);
}

/** The root help text (`spock --help`). */
export function rootHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    `spock ${SPOCK_VERSION}: multi-master logical replication for stock PostgreSQL`,
    "",
    "Usage: spock <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Run 'spock <command> --help' for the options of a command.",
    "",
  ].join("\n");
}
