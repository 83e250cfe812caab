/**
 * Throwaway PostgreSQL clusters for tests: initdb (once per installation, then
 * copied), a free port on 127.0.0.1 and a private unix socket directory, the
 * settings logical replication needs, and a stop that always kills and deletes.
 * As root the server runs as the `postgres` user, with a parent-death signal so
 * a crashed test runner leaves no server behind.
 */
import postgres from "postgres";
import type { PgInstall } from "./pg_install.ts";
import { pollUntil } from "./poll.ts";
import { freePorts } from "./ports.ts";

const RUN_AS = "postgres";
const BASE_DIR = "/tmp/spock-test";

/** What a test may change about a cluster. */
export interface ClusterOptions {
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

/** Runs a command as the server's owner (`postgres` when we are root). */
function ownerCommand(
  program: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  if (!isRoot()) return new Deno.Command(program, { args, env, stdout: "piped", stderr: "piped" });
  return new Deno.Command("setpriv", {
    env,
    args: [
      `--reuid=${RUN_AS}`,
      `--regid=${RUN_AS}`,
      "--init-groups",
      "--pdeathsig=SIGKILL",
      "--",
      program,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  });
}

async function runOwner(program: string, args: string[]): Promise<string> {
  const out = await ownerCommand(program, args).output();
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
  #child: Deno.ChildProcess | undefined;
  #clients = new Set<postgres.Sql>();

  private constructor(install: PgInstall, dir: string, port: number) {
    this.install = install;
    this.dir = dir;
    this.dataDir = `${dir}/data`;
    this.socketDir = `${dir}/socket`;
    this.port = port;
  }

  /** Creates and starts a cluster of `install` configured for logical replication. */
  static async start(install: PgInstall, options: ClusterOptions = {}): Promise<Cluster> {
    const template = await templateFor(install);
    const dir = await Deno.makeTempDir({ dir: BASE_DIR, prefix: `pg${install.major}-` });
    await Deno.chmod(dir, 0o755);
    const cluster = new Cluster(install, dir, freePorts(1)[0]);
    try {
      await runRoot("cp", ["-a", template, cluster.dataDir]);
      await ownedDir(cluster.socketDir, 0o755);
      await cluster.#configure(options);
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

  /** The server log, for diagnosing a failed test. */
  async log(): Promise<string> {
    try {
      return await Deno.readTextFile(`${this.dir}/server.log`);
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
    const logPath = `${this.dir}/server.log`;
    if (isRoot()) await runRoot("touch", [logPath]).then(() => runRoot("chown", [RUN_AS, logPath]));
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

  /** Fast shutdown of the server, keeping its data (for restart tests). */
  async stopServer(): Promise<void> {
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
