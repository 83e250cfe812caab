/**
 * The shape every subcommand shares: a strict flag table (node:util
 * parseArgs), help text generated from it, and usage errors that main.ts turns
 * into exit code 2.
 */
import { parseArgs } from "node:util";
import type { Config } from "../config/mod.ts";

/** One flag of a subcommand. */
export interface FlagSpec {
  type: "string" | "boolean";
  description: string;
  short?: string;
  multiple?: boolean;
  /** Shown in help as the value's placeholder, e.g. `LSN`. */
  value?: string;
  default?: string | boolean;
  /** A boolean that also accepts `--no-<name>`, which sets it to false. */
  negatable?: boolean;
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  "help": { type: "boolean", short: "h", description: "Show this help" },
  "log-level": {
    type: "string",
    value: "LEVEL",
    description: "trace, debug, info, warning, error or fatal (default: info)",
  },
  "log-format": {
    type: "string",
    value: "FORMAT",
    description: "text (default; coloured on a terminal) or json (one JSON object per line)",
  },
  "config": {
    type: "string",
    value: "FILE",
    description: "Config file (default: ./spock.yaml if it exists, else $SPOCK_CONFIG)",
  },
};

/** Values parsed from the command line. */
export type ParsedFlags = Record<string, string | boolean | string[] | undefined>;

/** What a running command may use besides its flags. */
export interface CommandContext {
  /** Aborted on the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** Writes to standard output (commands never call console.log). */
  stdout: WritableStream<Uint8Array>;
  /** Writes one line to standard error at once: server notices and warnings. */
  warn(line: string): void;
  env: Record<string, string | undefined>;
  /** The config file in effect (see `findConfigFile`), if any. */
  config?: Config;
}

/** A subcommand: its flags, help and behaviour. Returns the exit code. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  description?: string;
  flags: Record<string, FlagSpec>;
  positionals?: { name: string; description: string }[];
  /** A group (`spock node`): main.ts dispatches on the next word to one of these. */
  subcommands?: readonly Command[];
  run(flags: ParsedFlags, positionals: string[], context: CommandContext): Promise<number>;
}

/** Bad command-line input: main.ts prints it with the usage and exits with 2. */
export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  readonly command: Command | undefined;

  constructor(message: string, command?: Command) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Parses `args` against the command's flag table plus the global flags. */
export function parseCommandArgs(
  command: Command,
  args: string[],
): { flags: ParsedFlags; positionals: string[] } {
  const table = { ...GLOBAL_FLAGS, ...command.flags };
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, spec] of Object.entries(table)) {
    options[name] = { type: spec.type };
    if (spec.short) options[name].short = spec.short;
    if (spec.multiple) options[name].multiple = true;
    if (spec.negatable) options[`no-${name}`] = { type: "boolean" };
  }
  try {
    const parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
    const flags = { ...parsed.values } as ParsedFlags;
    for (const [name, spec] of Object.entries(table)) {
      if (!spec.negatable || flags[`no-${name}`] === undefined) continue;
      if (flags[name] !== undefined) {
        throw new UsageError(`--${name} and --no-${name} exclude each other`, command);
      }
      flags[name] = false;
      delete flags[`no-${name}`];
    }
    for (const [name, spec] of Object.entries(table)) {
      if (flags[name] === undefined && spec.default !== undefined) flags[name] = spec.default;
    }
    const allowed = command.positionals?.length ?? 0;
    if (parsed.positionals.length > allowed) {
      throw new UsageError(`Unexpected argument "${parsed.positionals[allowed]}"`, command);
    }
    return { flags, positionals: parsed.positionals };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = (error as Error).message.replace(/\. To specify a positional.*$/s, "");
    throw new UsageError(message, command);
  }
}

/** Renders a command's help text. */
export function commandHelp(command: Command): string {
  const lines = [`Usage: ${command.usage}`, "", command.description ?? command.summary, ""];
  const describe = (flags: Record<string, FlagSpec>) => {
    const rows = Object.entries(flags).map(([name, spec]) => {
      const short = spec.short ? `-${spec.short}, ` : "    ";
      const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
      const flag = spec.negatable ? `--[no-]${name}` : `--${name}`;
      return [`  ${short}${flag}${value}`, spec.description];
    });
    const width = Math.max(...rows.map(([left]) => left.length)) + 2;
    return rows.map(([left, right]) => left.padEnd(width) + right);
  };
  if (command.subcommands?.length) {
    const width = Math.max(...command.subcommands.map((c) => subcommandWord(c).length)) + 4;
    lines.push("Commands:");
    for (const sub of command.subcommands) {
      lines.push(`  ${subcommandWord(sub).padEnd(width)}${sub.summary}`);
    }
    lines.push(
      "",
      `Run 'spock ${command.name} <command> --help' for the options of a command.`,
      "",
    );
  }
  if (command.positionals?.length) {
    lines.push("Arguments:");
    for (const p of command.positionals) lines.push(`  ${p.name.padEnd(20)}${p.description}`);
    lines.push("");
  }
  if (Object.keys(command.flags).length > 0) {
    lines.push("Options:", ...describe(command.flags), "");
  }
  lines.push("Global options:", ...describe(GLOBAL_FLAGS));
  return lines.join("\n") + "\n";
}

/** The last word of a subcommand's name: `create` for `node create`. */
export function subcommandWord(command: Command): string {
  return command.name.split(" ").at(-1)!;
}

/** Reads a string flag that must be present. */
export function requireString(flags: ParsedFlags, name: string, command: Command): string {
  const value = flags[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`Missing required option --${name}`, command);
  }
  return value;
}
