/**
 * The spock executable: parses argv, configures LogTape, runs one subcommand
 * from mod/cli, and maps errors to exit codes (2 usage, 1 failure).
 */
import {
  configure,
  getAnsiColorFormatter,
  getLogger,
  getTextFormatter,
  isLogLevel,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import {
  type Command,
  commandHelp,
  findCommand,
  findSubcommand,
  GLOBAL_FLAGS,
  guardPostgresJsFaults,
  loadSettings,
  parseCommandArgs,
  rootHelp,
  SPOCK_VERSION,
  UsageError,
} from "./mod/cli/mod.ts";

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

async function setupLogging(level: string, format: string): Promise<void> {
  if (!isLogLevel(level)) throw new UsageError(`Invalid log level "${level}"`);
  const formatter = format === "json"
    ? jsonLinesFormatter
    : Deno.stderr.isTerminal()
    ? getAnsiColorFormatter({ timestamp: "time" })
    : getTextFormatter({ timestamp: "date-time-tz" });
  await configure({
    reset: true,
    sinks: { stderr: (record: LogRecord) => writeStderr(formatter(record)) },
    loggers: [
      { category: ["spock"], lowestLevel: level as LogLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Splits argv into the subcommand name and the rest, skipping leading global flags. */
function splitCommand(args: string[]): { name: string | undefined; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) {
      return { name: arg, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
    }
    const flag = GLOBAL_FLAGS[arg.replace(/^--?/, "").split("=")[0]];
    if (flag?.type === "string" && !arg.includes("=")) i++;
  }
  return { name: undefined, rest: args };
}

/** Runs the program with `args` and returns its exit code. */
export async function main(args: string[]): Promise<number> {
  const { name, rest } = splitCommand(args);
  if (name === undefined && (rest.includes("--version") || rest.includes("-V"))) {
    await Deno.stdout.write(encoder.encode(`spock ${SPOCK_VERSION}\n`));
    return 0;
  }
  if (name === undefined || name === "help") {
    const topic = name === "help"
      ? findCommand(rest.filter((a) => !a.startsWith("-")).slice(0, 2).join(" "))
      : undefined;
    const help = topic ? commandHelp(topic) : rootHelp();
    if (name === undefined && !rest.some((a) => a === "--help" || a === "-h")) {
      writeStderr(help);
      return rest.length === 0 ? 2 : usageFailure(new UsageError(`Unknown option "${rest[0]}"`));
    }
    await Deno.stdout.write(encoder.encode(help));
    return 0;
  }
  let command = findCommand(name);
  if (command === undefined) return usageFailure(new UsageError(`Unknown command "${name}"`));
  let commandArgs = rest;
  if (command.subcommands) {
    const group: Command = command;
    const sub = splitCommand(rest);
    if (sub.name === undefined) {
      if (rest.some((a) => a === "--help" || a === "-h")) {
        await Deno.stdout.write(encoder.encode(commandHelp(group)));
        return 0;
      }
      return usageFailure(new UsageError("Missing command", group));
    }
    command = findSubcommand(group, sub.name);
    if (command === undefined) {
      return usageFailure(new UsageError(`Unknown command "${name} ${sub.name}"`, group));
    }
    commandArgs = sub.rest;
  }

  const controller = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) Deno.exit(130);
    controller.abort(new Error("Interrupted"));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const unguard = guardPostgresJsFaults();
  try {
    const { flags, positionals } = parseCommandArgs(command, commandArgs);
    if (flags.help) {
      await Deno.stdout.write(encoder.encode(commandHelp(command)));
      return 0;
    }
    const env = Deno.env.toObject();
    const { config, log } = await loadSettings(flags, env, command);
    await setupLogging(log.level, log.format);
    return await command.run(flags, positionals, {
      signal: controller.signal,
      stdout: Deno.stdout.writable,
      warn: (line) => writeStderr(`${line}\n`),
      env,
      config,
    });
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error, command);
    const message = error instanceof Error ? error.message : String(error);
    getLogger(["spock", "cli"]).debug("{command} failed: {error}", {
      command: command.name,
      error,
    });
    writeStderr(`spock ${command.name}: ${message}\n`);
    return 1;
  } finally {
    unguard();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

function usageFailure(error: UsageError, command = error.command): number {
  const usage = command ? `Usage: ${command.usage}` : "Usage: spock <command> [options]";
  const more = command ? `spock ${command.name} --help` : "spock --help";
  writeStderr(`spock: ${error.message}\n${usage}\nRun '${more}' for more.\n`);
  return 2;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
