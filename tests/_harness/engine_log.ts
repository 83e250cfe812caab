/**
 * The engine's log lines of in-process daemons, kept for a failing test: the
 * last lines at info and above are printed when a pgTest (or one of its
 * steps) fails. SPOCK_TEST_LOG=debug (or info, warning…) also prints them all
 * as they come.
 */
import {
  configure,
  getConsoleSink,
  type LogLevel,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";

const KEPT_LINES = 300;
const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];
const kept: string[] = [];

/** Keeps the newest {@link KEPT_LINES} records as text lines. */
const memorySink: Sink = (record: LogRecord) => {
  if (LEVELS.indexOf(record.level) < LEVELS.indexOf("info")) return;
  const message = record.message.map((part) => typeof part === "string" ? part : String(part))
    .join("");
  const at = new Date(record.timestamp).toISOString().slice(11, 23);
  kept.push(`${at} ${record.level} ${record.category.join(".")}: ${message}`);
  if (kept.length > KEPT_LINES) kept.splice(0, kept.length - KEPT_LINES);
};

/** Routes the engine's logs to the memory sink (and the console with SPOCK_TEST_LOG). */
export async function keepEngineLog(): Promise<void> {
  const consoleLevel = Deno.env.get("SPOCK_TEST_LOG") as LogLevel | undefined;
  const console = getConsoleSink();
  const consoleSink: Sink = (record) => {
    if (consoleLevel && LEVELS.indexOf(record.level) >= LEVELS.indexOf(consoleLevel)) {
      console(record);
    }
  };
  await configure({
    sinks: { memory: memorySink, console: consoleSink, meta: console },
    loggers: [{
      category: ["spock"],
      lowestLevel: consoleLevel && LEVELS.indexOf(consoleLevel) < 2 ? consoleLevel : "info",
      sinks: ["memory", "console"],
    }, { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["meta"] }],
  });
}

/** The kept lines, oldest first, and forgets them (each test prints its own). */
export function takeEngineLog(): string[] {
  return kept.splice(0, kept.length);
}
