/**
 * A rolling upgrade of a running three-node mesh, one node at a time, with
 * writes going on. Every node starts on the program of commit 4900e0d
 * (catalog version 4; this checkout's is 5), taken from git and run with
 * `deno run` and the compile task's permissions, offline, on this checkout's
 * node_modules (the lock file is the same). Each node then in turn has its
 * old daemon stopped (SIGTERM; SIGKILL for the second node), its catalog
 * upgraded by this program's `spock install`, and this program's `spock run`
 * started. Writers on all three nodes never stop: numbered inserts, updates
 * and deletes of their own rows, and updates of rows every node updates
 * (conflicts, last-update-wins). At the end every node has the same rows,
 * every transaction of every node exactly once, and an empty
 * spock.exception_log. Without the commit (a shallow clone: CI checkouts
 * often fetch one commit) the test is ignored, never passed.
 *
 * Findings (PG 15 and 17):
 *
 * - Mixed versions replicate both ways. A new daemon streams from providers
 *   still on catalog version 4, and old daemons stream from a provider
 *   already on 5: of its provider a daemon calls only
 *   `spock.channel_publications()` (the same in both) and reads the set
 *   tables for an initial copy (migration 5 only adds two columns to
 *   `spock._catalog`); the stream is pgoutput and spock's row-filter
 *   messages, which neither version changed. Nodes of different versions
 *   resolve conflicts alike (last-update-wins, the same tiebreaker), so the
 *   mesh converges while every node updates the same rows.
 * - A daemon checks only its own node's catalog, and only when it starts:
 *   the new one refuses a version 4 catalog and the old one refuses 5. That
 *   forces the order on each node (stop, install, start) and there is no
 *   going back to the old program on an upgraded node.
 * - Unsafe, and so refused: an old daemon still running on a node whose
 *   catalog is upgraded under it. It never checks the version again and
 *   goes on applying with its own SQL against the new API. Plain inserts,
 *   updates and deletes still work. But the install drops
 *   `spock._insert_exists(regclass, xid, text, jsonb)` (it now takes the
 *   verdict as a fifth argument) and `spock._remote_wins(…)`. The first
 *   remote INSERT that finds its key taken then failed with 42883 (function
 *   does not exist), and exception handling (transdiscard) discarded that
 *   transaction into spock.exception_log while its provider kept it: the
 *   nodes differed (seen in a separate two-node run). So `spock install`
 *   now refuses to change a catalog while a worker holds a subscription's
 *   advisory lock in that database (every build takes the same lock), and
 *   changes nothing; the test checks that on the first node.
 * - SIGKILL instead of SIGTERM is fine. Each applied transaction commits
 *   with its origin's position, so the new daemon resumes right after the
 *   last one the killed daemon committed.
 * - The node being upgraded can keep taking writes during `spock install`.
 *   While it has no daemon it receives nothing, but the other nodes keep
 *   pulling its changes from their slots on it.
 *
 * The order users must follow, one node at a time: stop its `spock run` and
 * wait for it to exit; run the new `spock install --dsn …` on each of its
 * databases; start the new `spock run`. The other nodes keep the old program
 * meanwhile (tested for seconds at a time, under steady writes).
 */
import assert from "node:assert/strict";
import { COMPILE_PERMISSIONS, pgTest, pollUntil, spockCommand } from "../_harness/mod.ts";
import { CATALOG_VERSION } from "../../mod/catalog/mod.ts";
import { closeNodes, subscribeMesh, type TestNode, waitConverged, waitForSync } from "./_mesh.ts";

const OLD_COMMIT = "4900e0d12ca4ec13b668030579b14ea4d0e5e8d9";
const OLD_CATALOG_VERSION = 4;
const ROOT = new URL("../../", import.meta.url).pathname;

async function git(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command("git", { args: ["-C", ROOT, ...args] }).output();
    const decoder = new TextDecoder();
    return {
      ok: out.success,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (error) {
    return { ok: false, stdout: "", stderr: String(error) };
  }
}

// A shallow clone or an export without .git cannot give the old program: ignored, never passed.
const oldAvailable = (await git(["cat-file", "-e", `${OLD_COMMIT}^{commit}`])).ok;

/** The old program's `main.ts` and its config, in a temp dir of its own. */
async function extractOldProgram(dir: string): Promise<void> {
  const archive = `${dir}/old.tar`;
  const out = await git([
    "archive",
    "-o",
    archive,
    OLD_COMMIT,
    "main.ts",
    "mod",
    "deno.json",
    "deno.lock",
  ]);
  assert.ok(out.ok, `git archive ${OLD_COMMIT}: ${out.stderr}`);
  const tar = await new Deno.Command("tar", { args: ["-xf", archive, "-C", dir] }).output();
  assert.ok(tar.success, new TextDecoder().decode(tar.stderr));
  // With the same lock file the old program runs on this checkout's node_modules, offline.
  const [oldLock, lock] = await Promise.all([
    Deno.readTextFile(`${dir}/deno.lock`),
    Deno.readTextFile(`${ROOT}/deno.lock`),
  ]);
  if (oldLock === lock) {
    await Deno.symlink(`${ROOT}/node_modules`, `${dir}/node_modules`);
    return;
  }
  const install = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--frozen", "--quiet"],
    cwd: dir,
  }).output();
  assert.ok(
    install.success,
    `The old program's dependencies (its deno.lock differs from this checkout's) could not be ` +
      `installed: ${new TextDecoder().decode(install.stderr)}`,
  );
}

/** `spock <args>` of the old program. */
function oldCommand(dir: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--cached-only",
      "--config",
      `${dir}/deno.json`,
      ...COMPILE_PERMISSIONS,
      `${dir}/main.ts`,
      ...args,
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  });
}

async function run(command: Deno.Command): Promise<{ code: number; out: string }> {
  const result = await command.output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    out: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

/** A `spock run` child process; its output is kept for assertions and failures. */
class DaemonProcess {
  output = "";
  exited = false;
  stopped = false;
  readonly #child: Deno.ChildProcess;
  readonly #read: Promise<unknown>;

  constructor(readonly label: string, command: Deno.Command) {
    this.#child = command.spawn();
    this.#child.status.then(() => (this.exited = true));
    const decoder = new TextDecoder();
    const read = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) this.output += decoder.decode(chunk, { stream: true });
    };
    this.#read = Promise.all([read(this.#child.stdout), read(this.#child.stderr)]);
  }

  /** Sends `signal` and waits for the exit. */
  async stop(signal: "SIGTERM" | "SIGKILL"): Promise<Deno.CommandStatus> {
    this.stopped = true;
    if (!this.exited) this.#child.kill(signal);
    const status = await this.#child.status;
    await this.#read;
    return status;
  }

  /** The subscriptions it logged as streaming. */
  streaming(): Set<string> {
    return new Set([...this.output.matchAll(/Streaming (\S+) from slot/g)].map((m) => m[1]));
  }
}

/**
 * Numbered transactions on one node until stopped, each inserting its number
 * into both tables, updating and deleting earlier rows of its own, and every
 * third updating a row all nodes update.
 */
class Writer {
  committed = 0;
  failure: unknown;
  #stopping = false;
  readonly #done: Promise<void>;

  constructor(readonly node: TestNode) {
    this.#done = (async () => {
      while (!this.#stopping) {
        const n = this.committed + 1;
        await node.sql.begin(async (tx) => {
          await tx`insert into items (node, n, v) values (${node.name}, ${n}, 0)`;
          await tx`insert into events (node, n) values (${node.name}, ${n})`;
          await tx`update items set v = v + 1 where node = ${node.name} and n = ${n - 3}`;
          await tx`delete from items where node = ${node.name} and n = ${n - 10}`;
          // Every node updates the same rows: conflicts, resolved by last-update-wins.
          if (n % 3 === 0) {
            await tx`update shared set node = ${node.name}, n = ${n} where id = ${n % 5 + 1}`;
          }
        });
        this.committed = n;
        // Pacing of the load (some tens of transactions a second per node), not a wait.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })().catch((error) => {
      this.failure = error;
    });
  }

  async stop(): Promise<number> {
    this.#stopping = true;
    await this.#done;
    if (this.failure) throw this.failure;
    return this.committed;
  }
}

const TABLES = `
create table items (node text, n int, v int not null, primary key (node, n));
-- No key: a transaction applied twice would show as duplicate rows.
create table events (node text not null, n int not null);
create table shared (id int primary key, node text not null, n int not null);
`;

/** The highest `n` of `writer`'s rows that `node` has. */
async function seen(node: TestNode, writer: string): Promise<number> {
  const [row] = await node.sql`select coalesce(max(n), 0)::int as n from events
    where node = ${writer}`;
  return row.n;
}

pgTest(
  `a running three-node mesh upgraded node by node from ${OLD_COMMIT.slice(0, 7)} converges`,
  async (_t, cluster) => {
    const dir = await Deno.makeTempDir({ prefix: "spock-old-" });
    const nodes: TestNode[] = [];
    const daemons = new Map<string, DaemonProcess>();
    const writers: Writer[] = [];
    const fail = (what: string): never => {
      const logs = [...daemons.values()].map((d) => `--- ${d.label} ---\n${d.output.slice(-3000)}`);
      throw new Error(`${what}\n${logs.join("\n")}`);
    };
    /** Polls `check`; fails at once if a writer failed or a daemon exited by itself. */
    const waitFor = async (
      check: () => Promise<boolean | undefined> | boolean,
      what: string,
      timeoutMs = 20_000,
    ): Promise<void> => {
      const broken = () =>
        writers.find((w) => w.failure)?.failure ??
          [...daemons.values()].find((d) => d.exited && !d.stopped)?.label;
      try {
        await pollUntil(async () => broken() !== undefined || await check(), {
          timeoutMs,
          what,
          intervalMs: 50,
        });
      } catch (error) {
        fail(String(error));
      }
      const cause = broken();
      if (cause !== undefined) {
        fail(`While waiting for ${what}: ${cause} (writer error or daemon exit)`);
      }
    };
    try {
      await extractOldProgram(dir);
      const old = (args: string[]) => oldCommand(dir, args);
      const admin = cluster.connect();
      for (const name of ["n1", "n2", "n3"]) {
        await admin.unsafe(`create database ${name}`);
        const dsn = cluster.dsn({ dbname: name });
        const installed = await run(old(["install", "--dsn", dsn]));
        assert.equal(installed.code, 0, installed.out);
        const sql = cluster.connect({ database: name, max: 3 });
        const [catalog] = await sql`select version from spock._catalog`;
        assert.equal(catalog.version, OLD_CATALOG_VERSION, `${OLD_COMMIT} installs version 4`);
        await sql`select spock.node_create(${name}, ${dsn})`;
        await sql.unsafe(TABLES);
        await sql`select spock.repset_add_table('default', 'items')`;
        await sql`select spock.repset_add_table('default', 'shared')`;
        await sql`select spock.repset_add_table('default_insert_only', 'events')`;
        nodes.push({ name, dsn, sql });
      }
      await admin.end();
      const subs = await subscribeMesh(nodes);
      for (const node of nodes) {
        daemons.set(
          node.name,
          new DaemonProcess(`old ${node.name}`, old(["run", "--dsn", node.dsn])),
        );
      }
      for (const [node, sub] of subs) await waitForSync(node, sub);
      await nodes[0].sql`insert into shared select g, 'n1', 0 from generate_series(1, 5) g`;
      await waitFor(async () => {
        for (const node of nodes) {
          if ((await node.sql`select count(*)::int as n from shared`)[0].n < 5) return false;
        }
        return true;
      }, "the shared rows on every node");
      for (const node of nodes) writers.push(new Writer(node));
      /** Waits until every node has every other node's transactions up to `marks`. */
      const replicatedUpTo = (marks: number[]) =>
        waitFor(async () => {
          for (const node of nodes) {
            for (const [i, writer] of writers.entries()) {
              if (writer.node !== node && await seen(node, writer.node.name) < marks[i]) return;
            }
          }
          return true;
        }, `every node to have every other node's transactions up to ${marks}`);
      /** Waits until every writer has committed `count` more transactions. */
      const writes = async (count: number, what: string) => {
        const marks = writers.map((w) => w.committed + count);
        await waitFor(() => writers.every((w, i) => w.committed >= marks[i]), what);
        return marks;
      };
      await replicatedUpTo(await writes(20, "writes on the old mesh"));

      for (const [index, node] of nodes.entries()) {
        // The second node's daemon dies without a clean stop.
        const signal = index === 1 ? "SIGKILL" : "SIGTERM";
        const oldDaemon = daemons.get(node.name)!;
        if (index === 0) {
          // The install refuses to change the catalog under a daemon applying into it.
          const early = await run(spockCommand(["install", "--dsn", node.dsn]));
          assert.equal(early.code, 1, early.out);
          assert.match(
            early.out,
            /Cannot change the catalog while spock run applies into this database: subscription \S+ \(backend pid \d+\), subscription \S+ \(backend pid \d+\)\. Stop spock run/,
          );
          const [catalog] = await node.sql`select version from spock._catalog`;
          assert.equal(catalog.version, OLD_CATALOG_VERSION, "the refused install changed nothing");
        }
        const status = await oldDaemon.stop(signal);
        if (signal === "SIGTERM") assert.equal(status.code, 0, oldDaemon.output);
        else assert.equal(status.signal, "SIGKILL");
        await writes(20, `writes while ${node.name} has no daemon`);
        if (index === 0) {
          // The order is forced: this program refuses the old catalog until it is upgraded.
          const refused = await run(spockCommand(["run", "--dsn", node.dsn]));
          assert.equal(refused.code, 1, refused.out);
          assert.match(
            refused.out,
            new RegExp(
              `catalog is version ${OLD_CATALOG_VERSION}, this program's is ${CATALOG_VERSION}`,
            ),
          );
        }
        const upgraded = await run(spockCommand(["install", "--dsn", node.dsn]));
        assert.equal(upgraded.code, 0, upgraded.out);
        assert.match(
          upgraded.out,
          new RegExp(
            `version ${CATALOG_VERSION} .*\\(upgraded from version ${OLD_CATALOG_VERSION}\\)`,
          ),
        );
        if (index === 0) {
          // And there is no way back: the old program refuses the upgraded catalog.
          const refused = await run(old(["run", "--dsn", node.dsn]));
          assert.equal(refused.code, 1, refused.out);
          assert.match(
            refused.out,
            new RegExp(
              `catalog is version ${CATALOG_VERSION}, this program's is ${OLD_CATALOG_VERSION}`,
            ),
          );
        }
        const daemon = new DaemonProcess(
          `new ${node.name}`,
          spockCommand(["run", "--dsn", node.dsn]),
        );
        daemons.set(node.name, daemon);
        await waitFor(
          () => daemon.streaming().size === 2,
          `${node.name}'s new daemon to stream from both providers`,
        );
        // The new daemon applies from both providers (old ones but for the last node),
        // and the other nodes' daemons (old ones but for the first) from this node.
        await replicatedUpTo(await writes(20, `writes after ${node.name}'s upgrade`));
      }

      const counts = new Map<string, number>();
      for (const writer of writers) counts.set(writer.node.name, await writer.stop());
      await waitConverged(nodes, "events", 30_000);
      await waitConverged(nodes, "items", 30_000);
      await waitConverged(nodes, "shared", 30_000);
      const expectedItems = [...counts].flatMap(([name, last]) =>
        Array.from({ length: Math.min(10, last) }, (_, i) => last - i).reverse()
          .map((n) => [name, n, n <= last - 3 ? 1 : 0])
      );
      for (const node of nodes) {
        const events = await node.sql`select node, count(*)::int as rows,
            count(distinct n)::int as distinct, min(n)::int as min, max(n)::int as max
          from events group by node order by node`;
        assert.deepEqual(
          events.map((r) => [r.node, r.rows, r.distinct, r.min, r.max]),
          [...counts].map(([name, n]) => [name, n, n, 1, n]),
          `${node.name}: every transaction of every node exactly once`,
        );
        const items = await node.sql`select node, n, v from items order by node, n`;
        assert.deepEqual(items.map((r) => [r.node, r.n, r.v]), expectedItems, node.name);
        const [exceptions] = await node.sql`select count(*)::int as n from spock.exception_log`;
        assert.equal(exceptions.n, 0, `${node.name}: nothing in spock.exception_log`);
        const [catalog] = await node.sql`select version from spock._catalog`;
        assert.equal(catalog.version, CATALOG_VERSION);
      }
      for (const daemon of daemons.values()) {
        const status = await daemon.stop("SIGTERM");
        assert.equal(status.code, 0, daemon.output);
      }
    } finally {
      await Promise.allSettled(writers.map((w) => w.stop()));
      await Promise.allSettled([...daemons.values()].map((d) => d.stop("SIGKILL")));
      await closeNodes(nodes);
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore: () => !oldAvailable },
);
