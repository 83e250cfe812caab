/**
 * Throwaway PostgreSQL clusters for tests, the demo and the benchmarks: initdb
 * (once per installation and process, then copied), a free port on 127.0.0.1
 * and a private unix socket directory, the settings logical replication
 * needs, and a stop that always kills and deletes. As root the server runs as
 * the `postgres` user (created if missing). An attached server gets a
 * parent-death signal, so a crashed runner leaves none behind; a detached one
 * starts through `pg_ctl` in its own session and may outlive the program.
 */
import postgres from "postgres";
import type { PgInstall } from "./installs.ts";
import { pollUntil } from "./poll.ts";
import { freePorts } from "./ports.ts";

const RUN_AS = "postgres";
const BASE_DIR = "/tmp/spock-test";

/** What a caller may change about a cluster. */
export interface ClusterOptions {
  /**
   * The directory to create the cluster's own directory in (default
   * /tmp/spock-test, where directories left by killed runs are swept).
   */
  parentDir?: string;
  /** The cluster's directory name under `parentDir` (default: a fresh temporary name). */
  name?: string;
  /** Start through `pg_ctl`, in its own session, so the server may outlive this process. */
  detached?: boolean;
  /** Extra postgresql.conf settings. */
  conf?: Record<string, string | number | boolean>;
  /** pg_hba.conf lines placed before the default trust lines. */
  hba?: string[];
  /** Generate a self-signed certificate and turn `ssl` on. */
  ssl?: boolean;
}

const BASE_CONF: Record<string, string | number | boolean> = {
  listen_addresses: "127.0.0.1",
  wal_level: "logical",
  track_commit_timestamp: true,
  max_replication_slots: 20,
  max_wal_senders: 20,
  max_worker_processes: 24,
  max_logical_replication_workers: 12,
  max_prepared_transactions: 10,
  max_connections: 60,
  shared_buffers: "32MB",
  fsync: false,
  synchronous_commit: "off",
  full_page_writes: false,
  log_min_messages: "warning",
  log_line_prefix: "%m [%p] %q%a ",
  password_encryption: "scram-sha-256",
};

function isRoot(): boolean {
  return Deno.uid() === 0;
}

/**
 * The argv that runs `program` as the server's owner (`postgres` when we are
 * root), killed with its parent when `diesWithParent`.
 */
function ownerArgv(program: string, args: string[], diesWithParent: boolean): string[] {
  if (!isRoot()) return [program, ...args];
  const setpriv = [`--reuid=${RUN_AS}`, `--regid=${RUN_AS}`, "--init-groups"];
  if (diesWithParent) setpriv.push("--pdeathsig=SIGKILL");
  return ["setpriv", ...setpriv, "--", program, ...args];
}

/** A command that runs `program` as the server's owner and dies with this process. */
function ownerCommand(
  program: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  const [command, ...argv] = ownerArgv(program, args, true);
  return new Deno.Command(command, { args: argv, env, stdout: "piped", stderr: "piped" });
}

async function runOwner(program: string, args: string[], diesWithParent = true): Promise<string> {
  const [command, ...argv] = ownerArgv(program, args, diesWithParent);
  const out = await new Deno.Command(command, { args: argv, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${program} failed (${out.code}): ${text}`);
  return text;
}

async function runRoot(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function ensureRunAsUser(): Promise<void> {
  if (!isRoot()) return;
  const id = await new Deno.Command("id", { args: ["-u", RUN_AS], stdout: "null", stderr: "null" })
    .output();
  if (!id.success) await runRoot("useradd", ["--system", "--no-create-home", RUN_AS]);
}

/** Makes a directory owned by the server's user. */
async function ownedDir(path: string, mode: number): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode });
  await Deno.chmod(path, mode);
  if (isRoot()) await runRoot("chown", ["-R", `${RUN_AS}:`, path]);
}

const STALE_AFTER_MS = 6 * 60 * 60 * 1000;

/**
 * Removes what killed test runs left in BASE_DIR: directories older than six
 * hours whose postmaster is gone (their servers died with the runner).
 */
async function sweepStaleDirs(): Promise<void> {
  for await (const entry of Deno.readDir(BASE_DIR)) {
    const path = `${BASE_DIR}/${entry.name}`;
    const info = await Deno.stat(path).catch(() => undefined);
    if (!entry.isDirectory || !info?.mtime || Date.now() - info.mtime.getTime() < STALE_AFTER_MS) {
      continue;
    }
    const pidFile = await Deno.readTextFile(`${path}/data/postmaster.pid`).catch(() => "");
    const pid = Number(pidFile.split("\n")[0]);
    const alive = pid > 0 && await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
    if (!alive) await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}

const templates = new Map<string, Promise<string>>();

/** initdb once per installation and test process; clusters copy the result. */
function templateFor(install: PgInstall): Promise<string> {
  let template = templates.get(install.binDir);
  if (!template) {
    template = (async () => {
      await ensureRunAsUser();
      await Deno.mkdir(BASE_DIR, { recursive: true, mode: 0o755 });
      await Deno.chmod(BASE_DIR, 0o755);
      await sweepStaleDirs();
      const dir = await Deno.makeTempDir({ dir: BASE_DIR, prefix: `template-${install.major}-` });
      await Deno.chmod(dir, 0o755);
      const dataDir = `${dir}/data`;
      await ownedDir(dataDir, 0o700);
      await runOwner(`${install.binDir}/initdb`, [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
      ]);
      globalThis.addEventListener("unload", () => {
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch { /* already gone */ }
      });
      return dataDir;
    })();
    templates.set(install.binDir, template);
  }
  return template;
}

function confValue(value: string | number | boolean): string {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") return String(value);
  return `'${value.replaceAll("'", "''")}'`;
}

const running = new Set<Cluster>();
globalThis.addEventListener("unload", () => {
  for (const cluster of running) cluster.killNow();
});

/** A running throwaway cluster. Always `await cluster.stop()` (see {@link withCluster}). */
export class Cluster {
  readonly install: PgInstall;
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly port: number;
  readonly host = "127.0.0.1";
  readonly detached: boolean;
  #child: Deno.ChildProcess | undefined;
  #started = false;
  #clients = new Set<postgres.Sql>();

  private constructor(install: PgInstall, dir: string, port: number, detached: boolean) {
    this.install = install;
    this.dir = dir;
    this.dataDir = `${dir}/data`;
    this.socketDir = `${dir}/socket`;
    this.port = port;
    this.detached = detached;
  }

  /** Creates a cluster of `install` configured for logical replication, not yet started. */
  static async create(install: PgInstall, options: ClusterOptions = {}): Promise<Cluster> {
    const template = await templateFor(install);
    const parentDir = options.parentDir ?? BASE_DIR;
    let dir: string;
    if (options.name === undefined) {
      dir = await Deno.makeTempDir({ dir: parentDir, prefix: `pg${install.major}-` });
    } else {
      dir = `${parentDir}/${options.name}`;
      await Deno.mkdir(dir);
    }
    await Deno.chmod(dir, 0o755);
    const cluster = new Cluster(install, dir, freePorts(1)[0], options.detached ?? false);
    try {
      await runRoot("cp", ["-a", template, cluster.dataDir]);
      await ownedDir(cluster.socketDir, 0o755);
      await cluster.#configure(options);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Creates and starts a cluster of `install` configured for logical replication. */
  static async start(install: PgInstall, options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = await Cluster.create(install, options);
    try {
      await cluster.startServer();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async #configure(options: ClusterOptions): Promise<void> {
    const conf: Record<string, string | number | boolean> = {
      ...BASE_CONF,
      port: this.port,
      unix_socket_directories: this.socketDir,
      ...options.conf,
    };
    if (options.ssl) {
      await runOwner("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        `${this.dataDir}/server.key`,
        "-out",
        `${this.dataDir}/server.crt`,
      ]);
      await Deno.chmod(`${this.dataDir}/server.key`, 0o600);
      conf.ssl = true;
    }
    const lines = Object.entries(conf).map(([key, value]) => `${key} = ${confValue(value)}`);
    await Deno.writeTextFile(`${this.dataDir}/postgresql.auto.conf`, lines.join("\n") + "\n");
    const hba = [
      ...(options.hba ?? []),
      "local all all trust",
      "local replication all trust",
      "host all all 127.0.0.1/32 trust",
      "host replication all 127.0.0.1/32 trust",
    ];
    await Deno.writeTextFile(`${this.dataDir}/pg_hba.conf`, hba.join("\n") + "\n");
    if (isRoot()) await runRoot("chown", ["-R", `${RUN_AS}:`, this.dataDir]);
  }

  /** The server certificate (PEM) when started with `ssl: true`. */
  get certificatePath(): string {
    return `${this.dataDir}/server.crt`;
  }

  /** Where the server writes its log. */
  get logPath(): string {
    return `${this.dir}/server.log`;
  }

  /** The server log, for diagnosing a failure. */
  async log(): Promise<string> {
    try {
      return await Deno.readTextFile(this.logPath);
    } catch {
      return "";
    }
  }

  /** A libpq key=value DSN for this cluster over TCP. */
  dsn(options: { dbname?: string; user?: string; password?: string } = {}): string {
    const parts = [
      `host=${this.host}`,
      `port=${this.port}`,
      `dbname=${options.dbname ?? "postgres"}`,
      `user=${options.user ?? "postgres"}`,
    ];
    if (options.password !== undefined) parts.push(`password=${options.password}`);
    return parts.join(" ");
  }

  /** A postgres.js client (closed by {@link stop} if the test does not close it). */
  connect(options: postgres.Options<Record<string, never>> = {}): postgres.Sql {
    const sql = postgres({
      host: this.host,
      port: this.port,
      user: "postgres",
      database: "postgres",
      max: 1,
      onnotice: () => {},
      ...options,
    });
    this.#clients.add(sql);
    return sql;
  }

  /** Starts the server process (after a {@link stopServer}, too). */
  async startServer(): Promise<void> {
    const logPath = this.logPath;
    if (isRoot()) await runRoot("touch", [logPath]).then(() => runRoot("chown", [RUN_AS, logPath]));
    if (this.detached) return await this.#startDetached();
    this.#child = ownerCommand("sh", [
      "-c",
      'exec "$0" "$@" >>"$SPOCK_PG_LOG" 2>&1',
      `${this.install.binDir}/postgres`,
      "-D",
      this.dataDir,
    ], { SPOCK_PG_LOG: logPath }).spawn();
    running.add(this);
    const child = this.#child;
    let exited = false;
    child.status.then(() => (exited = true));
    await pollUntil(async () => {
      if (exited) throw new Error(`postgres exited during start-up:\n${await this.log()}`);
      const pid = await Deno.readTextFile(`${this.dataDir}/postmaster.pid`).catch(() => "");
      return pid.split("\n")[7]?.trim() === "ready";
    }, { timeoutMs: 30_000, what: `PostgreSQL ${this.install.major} to start` }).catch(
      async (error) => {
        if (exited) throw error;
        throw new Error(`${error.message}\n${await this.log()}`);
      },
    );
  }

  async #startDetached(): Promise<void> {
    this.#started = true; // pg_ctl may time out and leave the server starting: stop it too
    try {
      await runOwner(`${this.install.binDir}/pg_ctl`, [
        "start",
        "--silent",
        "--wait",
        "--timeout=30",
        `--pgdata=${this.dataDir}`,
        `--log=${this.logPath}`,
      ], false);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await this.log()}`);
    }
  }

  /** The argv that stops this (detached) server, for a script that outlives this process. */
  stopCommand(): string[] {
    return ownerArgv(`${this.install.binDir}/pg_ctl`, [
      "stop",
      "--silent",
      "--wait",
      "--mode=fast",
      `--pgdata=${this.dataDir}`,
    ], false);
  }

  /** Fast shutdown of the server, keeping its data (for restart tests). */
  async stopServer(): Promise<void> {
    if (this.detached) return await this.#stopDetached();
    const child = this.#child;
    if (!child) return;
    for (const sql of this.#clients) await sql.end({ timeout: 1 }).catch(() => {});
    this.#clients.clear();
    try {
      child.kill("SIGINT");
    } catch { /* already exited */ }
    const timer = setTimeout(() => this.killNow(), 30_000);
    await child.status;
    clearTimeout(timer);
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    this.#child = undefined;
    running.delete(this);
  }

  async #stopDetached(): Promise<void> {
    if (!this.#started) return;
    for (const sql of this.#clients) await sql.end({ timeout: 1 }).catch(() => {});
    this.#clients.clear();
    const [command, ...args] = this.stopCommand();
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const stillUp = await Deno.stat(`${this.dataDir}/postmaster.pid`).then(() => true, () => false);
    if (!out.success && stillUp) {
      throw new Error(`pg_ctl stop failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
    }
    this.#started = false;
  }

  /** Restarts the server in place (same port, same data). */
  async restart(): Promise<void> {
    await this.stopServer();
    await this.startServer();
  }

  /** SIGKILLs the postmaster at once; used on test-runner exit. */
  killNow(): void {
    try {
      this.#child?.kill("SIGKILL");
    } catch { /* already exited */ }
  }

  /** Stops the server and deletes every file of the cluster. */
  async stop(): Promise<void> {
    try {
      await this.stopServer();
    } finally {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

/** Runs `fn` with a fresh cluster and always stops and deletes it afterwards. */
export async function withCluster<T>(
  install: PgInstall,
  fn: (cluster: Cluster) => Promise<T>,
  options: ClusterOptions = {},
): Promise<T> {
  const cluster = await Cluster.start(install, options);
  try {
    return await fn(cluster);
  } finally {
    await cluster.stop();
  }
}
