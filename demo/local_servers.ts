/**
 * The demo's PostgreSQL servers: one cluster per node under a fresh
 * /tmp/spock-demo-* directory, from the embedded binaries the test harness
 * finds and prepares. Unlike the harness's `Cluster`, servers start detached
 * through `pg_ctl` (their own session, no parent-death signal), so `--keep`
 * can leave them running after the demo exits. As root, initdb, pg_ctl and the
 * servers run as the `postgres` user, which is created if missing.
 */
import { discoverInstalls, freePorts, type PgInstall } from "../tests/_harness/mod.ts";

const RUN_AS = "postgres";

/** postgresql.auto.conf of every server: logical replication on a throwaway cluster. */
const SERVER_CONF: Record<string, string | number> = {
  listen_addresses: "'127.0.0.1'",
  wal_level: "logical",
  track_commit_timestamp: "on",
  max_replication_slots: 10,
  max_wal_senders: 10,
  max_connections: 50,
  shared_buffers: "'32MB'",
  // A demo cluster holds nothing worth a crash-safe disk write.
  fsync: "off",
  full_page_writes: "off",
  log_min_messages: "warning",
};

function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** The argv that runs `program` as the servers' owner (`postgres` when we are root). */
function asOwner(program: string, args: string[]): string[] {
  if (!isRoot()) return [program, ...args];
  return [
    "setpriv",
    `--reuid=${RUN_AS}`,
    `--regid=${RUN_AS}`,
    "--init-groups",
    "--",
    program,
    ...args,
  ];
}

/** Runs argv to completion; throws with its output when it fails. */
async function run(argv: string[]): Promise<void> {
  const [program, ...args] = argv;
  const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  if (out.success) return;
  const decoder = new TextDecoder();
  const text = (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim();
  throw new Error(`Cannot run ${program.split("/").at(-1)} (exit code ${out.code}): ${text}`);
}

async function ensureOwnerUser(): Promise<void> {
  if (!isRoot()) return;
  const id = await new Deno.Command("id", { args: ["-u", RUN_AS], stdout: "null", stderr: "null" })
    .output();
  if (!id.success) await run(["useradd", "--system", "--no-create-home", RUN_AS]);
}

/** Whether anything exists at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Makes a directory that the servers' owner owns. */
async function ownedDir(path: string, mode: number): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode });
  await Deno.chmod(path, mode);
  if (isRoot()) await run(["chown", `${RUN_AS}:`, path]);
}

/** The embedded PostgreSQL (or, failing that, the newest server this machine has). */
async function findInstall(): Promise<PgInstall> {
  const installs = await discoverInstalls();
  const install = installs.find((candidate) => candidate.source === "embedded") ?? installs[0];
  if (install === undefined) {
    throw new Error("No PostgreSQL binaries found: run `deno install` to fetch the embedded ones");
  }
  return install;
}

/** One node's server. */
export interface LocalServer {
  name: string;
  port: number;
  /** The node's directory: `data/`, `server.log` and the unix socket. */
  dir: string;
  dataDir: string;
  logPath: string;
}

/** A libpq DSN for `dbname` on `server` over TCP, as the `postgres` superuser. */
export function serverDsn(server: LocalServer, dbname: string): string {
  return `host=127.0.0.1 port=${server.port} dbname=${dbname} user=postgres`;
}

/**
 * The servers of one demo run. Every step waits for the one before, and
 * `destroy()` first waits for the step in flight, so an interrupt never
 * leaves a server that started after the clean-up.
 */
export class LocalServers {
  readonly names: string[];
  #install: PgInstall | undefined;
  #dir: string | undefined;
  #servers: LocalServer[] = [];
  #running = new Set<LocalServer>();
  #busy: Promise<unknown> = Promise.resolve();
  #closing = false;

  constructor(names: string[]) {
    this.names = names;
  }

  /** The installation in use (after {@link prepare}). */
  get install(): PgInstall {
    if (this.#install === undefined) throw new Error("The servers are not prepared");
    return this.#install;
  }

  /** The demo's directory (after {@link prepare}). */
  get dir(): string {
    if (this.#dir === undefined) throw new Error("The servers are not prepared");
    return this.#dir;
  }

  /** The servers (after {@link prepare}). */
  get servers(): LocalServer[] {
    return this.#servers;
  }

  /** Creates the directory and one configured cluster per name (one initdb, then copies). */
  prepare(): Promise<void> {
    return this.#step(async () => {
      const install = await findInstall();
      this.#install = install;
      await ensureOwnerUser();
      const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "spock-demo-" });
      this.#dir = dir;
      await Deno.chmod(dir, 0o755);
      const template = `${dir}/template`;
      await ownedDir(template, 0o700);
      await run(asOwner(`${install.binDir}/initdb`, [
        "-D",
        template,
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
      ]));
      const ports = freePorts(this.names.length);
      this.#servers = this.names.map((name, i) => ({
        name,
        port: ports[i],
        dir: `${dir}/${name}`,
        dataDir: `${dir}/${name}/data`,
        logPath: `${dir}/${name}/server.log`,
      }));
      await Promise.all(this.#servers.map(async (server) => {
        await ownedDir(server.dir, 0o755);
        await run(["cp", "-a", template, server.dataDir]);
        const conf = {
          ...SERVER_CONF,
          port: server.port,
          unix_socket_directories: `'${server.dir}'`,
        };
        const lines = Object.entries(conf).map(([key, value]) => `${key} = ${value}`);
        await Deno.writeTextFile(`${server.dataDir}/postgresql.auto.conf`, lines.join("\n") + "\n");
      }));
      await Deno.remove(template, { recursive: true });
    });
  }

  /** Starts every server and waits until each accepts connections. */
  start(): Promise<void> {
    return this.#step(() =>
      Promise.all(this.#servers.map(async (server) => {
        try {
          await run(asOwner(`${this.install.binDir}/pg_ctl`, [
            "start",
            "--silent",
            "--wait",
            "--timeout=30",
            `--pgdata=${server.dataDir}`,
            `--log=${server.logPath}`,
          ]));
        } catch (error) {
          const log = await Deno.readTextFile(server.logPath).catch(() => "");
          throw new Error(
            `PostgreSQL of ${server.name} did not start: ${(error as Error).message}\n${log}`,
          );
        } finally {
          // pg_ctl may time out and leave the server starting: stop it too.
          this.#running.add(server);
        }
      })).then(() => {})
    );
  }

  /** Fast shutdown of every started server, keeping the data. */
  async #stop(): Promise<void> {
    await Promise.all([...this.#running].map(async (server) => {
      await run(asOwner(`${this.install.binDir}/pg_ctl`, [
        "stop",
        "--silent",
        "--wait",
        "--mode=fast",
        `--pgdata=${server.dataDir}`,
      ])).catch((error) => {
        // Not started after all (or already stopped) is fine; a server still up is not.
        if (exists(`${server.dataDir}/postmaster.pid`)) throw error;
      });
      this.#running.delete(server);
    }));
  }

  /** Waits for the step in flight, stops every server and deletes the directory. */
  async destroy(): Promise<void> {
    this.#closing = true;
    await this.#busy.catch(() => {});
    try {
      await this.#stop();
    } finally {
      if (this.#dir !== undefined) {
        await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
      }
    }
  }

  /** The shell lines that stop every server and delete the directory (for `--keep`). */
  stopScript(): string {
    const lines = [
      "#!/bin/sh",
      "# Stops the servers of `deno task demo --keep` and deletes their directory.",
      ...this.#servers.map((server) =>
        asOwner(`${this.install.binDir}/pg_ctl`, ["stop", "-m", "fast", "-D", server.dataDir])
          .join(" ")
      ),
      `rm -rf ${this.dir}`,
    ];
    return lines.join("\n") + "\n";
  }

  #step(fn: () => Promise<void>): Promise<void> {
    if (this.#closing) return Promise.reject(new Error("The demo is shutting down"));
    const step = this.#busy.then(fn);
    this.#busy = step.catch(() => {});
    return step;
  }
}
