/**
 * The engine under test as users run it: `deno run --allow-all main.ts run
 * --dsn <subscriber>`, without the heap cap that the compile task and `deno
 * task spock` pass (the worst case for its memory), in a child process
 * (the child's pid is the deno process itself, so /proc/<pid>/status gives
 * its peak RSS), its log appended to a file, stopped with SIGTERM. Optionally
 * writes a V8 CPU profile on exit.
 */
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** How to start the daemon. */
export interface DaemonProcessOptions {
  dsn: string;
  /** The daemon's stderr (its log) is appended here. */
  logPath: string;
  /** Write a `.cpuprofile` per daemon process into this directory. */
  cpuProfileDir?: string;
}

/** A running `spock run` process. */
export class DaemonProcess {
  readonly pid: number;
  /** performance.now() at spawn. */
  readonly startedAt: number;
  #child: Deno.ChildProcess;
  #peakKb = 0;

  private constructor(child: Deno.ChildProcess, startedAt: number) {
    this.#child = child;
    this.pid = child.pid;
    this.startedAt = startedAt;
  }

  /** Spawns the daemon; returns at once (it connects and streams on its own). */
  static spawn(options: DaemonProcessOptions): DaemonProcess {
    const profile = options.cpuProfileDir
      ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`]
      : [];
    const startedAt = performance.now();
    // `exec` keeps one pid (the deno process) and sends the log straight to
    // the file, so it survives the bench being killed.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'exec "$0" "$@" 2>>"$SPOCK_BENCH_LOG"',
        Deno.execPath(),
        "run",
        "--quiet",
        "--allow-all",
        ...profile,
        MAIN,
        "run",
        "--dsn",
        options.dsn,
        "--log-level",
        "info",
      ],
      env: { SPOCK_BENCH_LOG: options.logPath },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    return new DaemonProcess(child, startedAt);
  }

  /** VmHWM of the process so far (kB), or the last value read before it exited. */
  async peakRssKb(): Promise<number> {
    try {
      const status = await Deno.readTextFile(`/proc/${this.pid}/status`);
      const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      if (kb > this.#peakKb) this.#peakKb = kb;
    } catch { /* exited */ }
    return this.#peakKb;
  }

  /** Resets VmHWM to the current RSS (Linux `clear_refs` 5), so the next read is a new peak. */
  async resetPeak(): Promise<void> {
    this.#peakKb = 0;
    try {
      await Deno.writeTextFile(`/proc/${this.pid}/clear_refs`, "5");
    } catch { /* not permitted: the peak stays cumulative */ }
  }

  /** SIGTERM (clean stop: final feedback, CopyDone), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    await this.peakRssKb();
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already exited */ }
    }, timeoutMs);
    await this.#child.status;
    clearTimeout(timer);
  }

  /** Resolves when the process exits (early exits are failures of the engine). */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }
}
