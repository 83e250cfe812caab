/**
 * Two-word commands (`spock node create`): a group is a Command whose
 * subcommands main.ts dispatches to by the next word; each subcommand keeps
 * its own flags and help. Run without a subcommand, a group is a usage error.
 */
import { type Command, subcommandWord, UsageError } from "./command.ts";

/** A group of subcommands named `<name> <word>`. */
export function groupCommand(
  name: string,
  summary: string,
  subcommands: readonly Command[],
): Command {
  const words = subcommands.map(subcommandWord);
  const command: Command = {
    name,
    summary,
    usage: `spock ${name} <${words.join("|")}> [options]`,
    flags: {},
    subcommands,
    run() {
      return Promise.reject(
        new UsageError(`Missing command: use one of ${words.join(", ")}`, command),
      );
    },
  };
  return command;
}

/** The subcommand of `group` called `word`, if any. */
export function findSubcommand(group: Command, word: string): Command | undefined {
  return group.subcommands?.find((sub) => subcommandWord(sub) === word);
}
