/**
 * `spock version`: the program's version and the runtime it was built with,
 * and with --dsn or --node the catalog version installed in that database.
 */
import denoJson from "../../deno.json" with { type: "json" };
import { CATALOG_VERSION, installedVersion } from "../catalog/mod.ts";
import { writeOut } from "./_output.ts";
import { JSON_FLAG, TARGET_FLAGS, targetDsn, withTarget } from "./_target.ts";
import type { Command } from "./command.ts";

/** The program's version, from deno.json. */
export const SPOCK_VERSION: string = denoJson.version;

/** `spock version` */
export const versionCommand: Command = {
  name: "version",
  summary: "Print the version of spock (and of the catalog in a database)",
  usage: "spock version [--dsn DSN | --node NAME] [--json]",
  flags: { ...TARGET_FLAGS, ...JSON_FLAG },
  async run(flags, _positionals, context) {
    const report: Record<string, string | number | null> = {
      spock: SPOCK_VERSION,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      catalog_version: CATALOG_VERSION,
    };
    if (flags.dsn !== undefined || flags.node !== undefined) {
      const dsn = targetDsn(flags, context, versionCommand);
      report.installed_catalog_version = await withTarget(
        dsn,
        context,
        versionCommand,
        installedVersion,
        { catalog: "any" },
      );
    }
    let text = `spock ${SPOCK_VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})\n`;
    if ("installed_catalog_version" in report) {
      const installed = report.installed_catalog_version;
      text += installed === null
        ? `catalog: not installed (this program installs version ${CATALOG_VERSION})\n`
        : `catalog: version ${installed} installed (this program installs version ${CATALOG_VERSION})\n`;
    }
    await writeOut(context.stdout, flags.json ? JSON.stringify(report) + "\n" : text);
    return 0;
  },
};
