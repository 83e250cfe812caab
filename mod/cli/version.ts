/**
 * `spock version`: the program's version and the runtime it was built with.
 */
import denoJson from "../../deno.json" with { type: "json" };
import type { Command } from "./command.ts";

/** The program's version, from deno.json. */
export const SPOCK_VERSION: string = denoJson.version;

/** `spock version` */
export const versionCommand: Command = {
  name: "version",
  summary: "Print the version of spock",
  usage: "spock version",
  flags: {},
  async run(_flags, _positionals, context) {
    const text = `spock ${SPOCK_VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})\n`;
    const writer = context.stdout.getWriter();
    try {
      await writer.write(new TextEncoder().encode(text));
    } finally {
      writer.releaseLock();
    }
    return 0;
  },
};
