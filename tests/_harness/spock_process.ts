/**
 * A `spock` process running in the background for CLI tests: stdout is read
 * line by line as it arrives and stderr as text, so a test can wait on what
 * has been printed so far; the process is always killed on the way out.
 */
import { pollUntil } from "../../local_pg/mod.ts";
import { spockCommand } from "./spawn.ts";

/** What a finished spock process printed and how it exited. */
export interface SpockResult {
  code: number;
  lines: string[];
  stderr: string;
}

/** A background `spock` process; end it with {@link interrupt} or {@link kill}. */
export class SpockProcess implements AsyncDisposable {
  /** The complete stdout lines printed so far. */
  readonly lines: string[] = [];
  /** Everything written to stderr so far. */
  stderr = "";
  #child: Deno.ChildProcess;
  #outputDone: Promise<unknown>;
  #exited = false;
  #pauseWhen: ((lines: string[]) => boolean) | undefined;
  #resumeNow: (() => void) | undefined;

  /**
   * With `pauseWhen`, reading stdout stops once the lines read satisfy it, until
   * {@link resumeReading}: the pipe then fills up and spock's writes wait.
   */
  constructor(
    args: string[],
    options: Deno.CommandOptions & { pauseWhen?: (lines: string[]) => boolean } = {},
  ) {
    const { pauseWhen, ...commandOptions } = options;
    this.#pauseWhen = pauseWhen;
    this.#child = spockCommand(args, commandOptions).spawn();
    this.#child.status.then(() => (this.#exited = true));
    this.#outputDone = Promise.all([
      this.#readLines(this.#child.stdout),
      this.#readStderr(this.#child.stderr),
    ]);
  }

  async #readLines(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const text = partial + decoder.decode(chunk, { stream: true });
      const parts = text.split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      if (this.#pauseWhen?.(this.lines)) {
        this.#pauseWhen = undefined;
        await new Promise<void>((resolve) => (this.#resumeNow = resolve));
      }
    }
    partial += decoder.decode();
    if (partial !== "") this.lines.push(partial);
  }

  async #readStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) this.stderr += decoder.decode(chunk, { stream: true });
    this.stderr += decoder.decode();
  }

  /** The process id (of the deno process running spock). */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether reading stdout is paused (see `pauseWhen`). */
  get readingPaused(): boolean {
    return this.#resumeNow !== undefined;
  }

  /** Reads stdout again after a pause, and stops pausing. */
  resumeReading(): void {
    this.#pauseWhen = undefined;
    this.#resumeNow?.();
    this.#resumeNow = undefined;
  }

  /** The lines printed so far, parsed as JSON (for `--format jsonl`). */
  json(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line));
  }

  /** Waits until `check(lines so far)` holds; fails early if the process exits first. */
  async waitFor(check: (lines: string[]) => boolean, what: string): Promise<void> {
    await pollUntil(() => check(this.lines) || this.#exited, { timeoutMs: 30_000, what });
    if (check(this.lines)) return;
    await this.#outputDone;
    if (check(this.lines)) return;
    throw new Error(`spock exited before ${what}:\n${this.stderr}`);
  }

  /**
   * Waits for the log line `spock stream` writes once START_REPLICATION has
   * succeeded and its SIGINT handling is in place.
   */
  async streaming(): Promise<void> {
    const started = /Streaming slot /;
    await pollUntil(() => started.test(this.stderr) || this.#exited, {
      timeoutMs: 30_000,
      what: "spock to start streaming",
    });
    if (!started.test(this.stderr)) {
      await this.#outputDone;
      throw new Error(`spock exited before streaming:\n${this.stderr}`);
    }
  }

  /** Sends `signal` (SIGINT by default) and waits for the process to finish. */
  async interrupt(signal: Deno.Signal = "SIGINT"): Promise<SpockResult> {
    if (!this.#exited) this.#child.kill(signal);
    return await this.wait();
  }

  /** Waits for the process to exit on its own. */
  async wait(): Promise<SpockResult> {
    const status = await this.#child.status;
    await this.#outputDone;
    return { code: status.code, lines: this.lines, stderr: this.stderr };
  }

  /** SIGKILLs the process if it still runs, and waits for it. */
  async kill(): Promise<void> {
    this.resumeReading();
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.#child.status;
    await this.#outputDone.catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/** Drops the fields that differ from run to run: LSNs, xids, times and oids. */
export function stable(objects: Record<string, unknown>[]): Record<string, unknown>[] {
  const volatile = [
    "lsn",
    "xid",
    "final_lsn",
    "commit_lsn",
    "end_lsn",
    "commit_time",
    "relation_id",
    "message_lsn",
  ];
  return objects.map((object) =>
    Object.fromEntries(Object.entries(object).filter(([key]) => !volatile.includes(key)))
  );
}

/** Counts the printed lines of one message type. */
export function countType(lines: string[], type: string): number {
  return lines.filter((line) => line.includes(`"type":"${type}"`)).length;
}
