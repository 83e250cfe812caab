/**
 * `spock install` and `spock uninstall`: our CREATE / DROP EXTENSION. The
 * catalog folder does the work and the checks; this file owns the flags and
 * what is printed.
 */
import { getLogger } from "@logtape/logtape";
import { installCatalog, uninstallCatalog } from "../catalog/mod.ts";
import { maskDsn } from "../pg/mod.ts";
import { formatResult, writeOut } from "./_output.ts";
import { JSON_FLAG, TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import type { Command } from "./command.ts";
import { SPOCK_VERSION } from "./version.ts";

const log = getLogger(["spock", "cli", "install"]);

/** `spock install` */
export const installCommand: Command = {
  name: "install",
  summary: "Install or upgrade the spock schema and SQL API in a database",
  usage: "spock install (--dsn DSN | --node NAME) [--json]",
  description: "Install or upgrade the spock schema and SQL API in a database, after checking " +
    "the server's settings. Installing the same version again changes nothing.",
  flags: { ...TARGET_FLAGS, ...JSON_FLAG },
  async run(flags, _positionals, context) {
    const dsn = targetDsn(flags, context, installCommand);
    return await withTarget(dsn, context, installCommand, async (sql) => {
      const result = await installCatalog(sql, { programVersion: SPOCK_VERSION });
      for (const warning of result.warnings) log.warning("{warning}", { warning });
      const text = flags.json
        ? formatResult([{ ...result }], "record", true)
        : result.apiReinstalled !== undefined
        ? `Re-created the SQL API of spock catalog version ${result.to} in ${maskDsn(dsn)}: ` +
          (result.apiReinstalled === "api_changed"
            ? "it was installed by a spock whose functions differ from this one's\n"
            : "its functions had been changed since the install\n")
        : result.changed
        ? `Installed spock catalog version ${result.to} in ${maskDsn(dsn)}` +
          (result.from === null ? "\n" : ` (upgraded from version ${result.from})\n`)
        : `spock catalog version ${result.to} is already installed in ${maskDsn(dsn)}\n`;
      await writeOut(context.stdout, text);
      return 0;
    }, { catalog: "any" });
  },
};

/** `spock uninstall` */
export const uninstallCommand: Command = {
  name: "uninstall",
  summary: "Remove the spock schema from a database",
  usage: "spock uninstall (--dsn DSN | --node NAME) [--force] [--json]",
  description: "Remove the spock schema, its publications and replication origins from a " +
    "database. Refuses while subscriptions or spock replication slots exist, unless --force.",
  flags: {
    ...TARGET_FLAGS,
    "force": { type: "boolean", description: "Also drop subscriptions' slots and origins" },
    ...JSON_FLAG,
  },
  async run(flags, _positionals, context) {
    const dsn = targetDsn(flags, context, uninstallCommand);
    return await withTarget(dsn, context, uninstallCommand, async (sql) => {
      const result = await uninstallCatalog(sql, { force: flags.force === true });
      const text = flags.json
        ? formatResult([{ ...result }], "record", true)
        : result.removed
        ? `Removed spock from ${maskDsn(dsn)}` +
          (result.droppedSlots.length > 0
            ? ` (dropped slots ${result.droppedSlots.join(", ")})\n`
            : "\n")
        : `spock is not installed in ${maskDsn(dsn)}\n`;
      await writeOut(context.stdout, text);
      return 0;
    }, { catalog: "any" });
  },
};
