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
import { conflictsCommand } from "./conflicts.ts";
import { exceptionsCommand } from "./exceptions.ts";
import { FUNCTION_COMMANDS } from "./functions.ts";
import { findSubcommand } from "./group.ts";
import { installCommand, uninstallCommand } from "./install.ts";
import { nodeCommand } from "./node.ts";
import { repsetCommand } from "./repset.ts";
import { runCommand } from "./run.ts";
import { statusCommand } from "./status.ts";
import { streamCommand } from "./stream.ts";
import { subCommand } from "./sub.ts";
import { SPOCK_VERSION, versionCommand } from "./version.ts";

export {
  type Command,
  type CommandContext,
  commandHelp,
  GLOBAL_FLAGS,
  parseCommandArgs,
  UsageError,
} from "./command.ts";
export { findSubcommand } from "./group.ts";
export { loadSettings } from "./settings.ts";
export { SPOCK_VERSION } from "./version.ts";
/** Installed by main.ts around every command: see mod/daemon/postgres_js_guard.ts. */
export { guardPostgresJsFaults } from "../daemon/mod.ts";

/** Every subcommand, in the order help lists them. */
export const COMMANDS: readonly Command[] = [
  installCommand,
  uninstallCommand,
  nodeCommand,
  repsetCommand,
  subCommand,
  ...FUNCTION_COMMANDS,
  statusCommand,
  conflictsCommand,
  exceptionsCommand,
  runCommand,
  streamCommand,
  versionCommand,
];

/** The subcommand called `name` (`node` or `node create`), if any. */
export function findCommand(name: string): Command | undefined {
  const [first, second] = name.split(" ");
  const command = COMMANDS.find((candidate) => candidate.name === first);
  return second === undefined || command === undefined ? command : findSubcommand(command, second);
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
    "Run 'spock <command> --help' for the options of a command, 'spock --version' for the version.",
    "",
  ].join("\n");
}
