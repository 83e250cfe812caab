/**
 * `deno task demo` end to end, run the way users run it (a `deno run` of
 * demo/main.ts): it exits 0, its summary shows three nodes with one checksum,
 * and it leaves no server or directory behind; with --keep the servers outlive
 * it, answer on the printed DSNs, and its stop script removes them.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { exists } from "../../demo/local_servers.ts";

const MAIN = new URL("../../demo/main.ts", import.meta.url).pathname;

/** Runs the demo to completion with `args`. */
async function runDemo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The node table of the summary: `n1  2940  <md5>` lines. */
function nodeRows(stdout: string): Array<{ node: string; rows: number; checksum: string }> {
  return [...stdout.matchAll(/^(n\d+)\s+(\d+)\s+([0-9a-f]{32})$/gm)].map((match) => ({
    node: match[1],
    rows: Number(match[2]),
    checksum: match[3],
  }));
}

/** The subscription table of the summary: `sub_n1_n2  n2 → n1  18  …` lines. */
function subscriptionRows(stdout: string): Array<{ name: string; transactions: number }> {
  return [...stdout.matchAll(/^(sub_n\d+_n\d+)\s+n\d+ → n\d+\s+(\d+)\s/gm)].map((match) => ({
    name: match[1],
    transactions: Number(match[2]),
  }));
}

/** The demo's directory, from its "started … servers … in DIR" line. */
function demoDir(stdout: string): string {
  const match = /servers \(\w+\) in (\/\S+)$/m.exec(stdout);
  assert.ok(match, `no directory in the output:\n${stdout}`);
  return match[1];
}

/** Pids of the processes whose command line mentions `dir` (postmasters run with `-D dir/…`). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmdline.includes(dir)) pids.push(Number(entry.name));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/** Asserts the demo succeeded and its summary shows three converged nodes; returns the rows. */
function assertConverged(result: { code: number; stdout: string; stderr: string }): number {
  assert.equal(result.code, 0, `demo failed:\n${result.stdout}\n${result.stderr}`);
  const nodes = nodeRows(result.stdout);
  assert.deepEqual(nodes.map((n) => n.node), ["n1", "n2", "n3"], result.stdout);
  assert.ok(nodes[0].rows > 0, result.stdout);
  for (const node of nodes) {
    assert.equal(node.rows, nodes[0].rows, result.stdout);
    assert.equal(node.checksum, nodes[0].checksum, result.stdout);
  }
  const subscriptions = subscriptionRows(result.stdout);
  assert.equal(subscriptions.length, 6, result.stdout);
  for (const sub of subscriptions) assert.ok(sub.transactions > 0, result.stdout);
  return nodes[0].rows;
}

Deno.test("deno task demo converges three nodes and leaves nothing behind", async () => {
  const result = await runDemo([]);
  assertConverged(result);
  const dir = demoDir(result.stdout);
  assert.equal(exists(dir), false, `${dir} is left behind`);
  assert.deepEqual(processesUsing(dir), [], `processes of ${dir} are left running`);
});

Deno.test("deno task demo --keep leaves the servers running until stop.sh", async () => {
  const result = await runDemo(["--keep"]);
  const dir = result.code === 0 ? demoDir(result.stdout) : undefined;
  try {
    const rows = assertConverged(result);
    assert.ok(dir !== undefined);
    assert.equal(processesUsing(dir).length, 3, "one postmaster per node");
    const dsns = [...result.stdout.matchAll(/psql "([^"]+)"/g)].map((match) => match[1]);
    assert.equal(dsns.length, 3, result.stdout);
    for (const dsn of dsns) {
      const port = Number(/port=(\d+)/.exec(dsn)?.[1]);
      const sql = postgres({ host: "127.0.0.1", port, user: "postgres", database: "demo", max: 1 });
      try {
        const [row] = await sql`select count(*)::int as n from accounts`;
        assert.equal(row.n, rows);
      } finally {
        await sql.end();
      }
    }
  } finally {
    if (dir !== undefined && exists(`${dir}/stop.sh`)) {
      const stop = await new Deno.Command("sh", { args: [`${dir}/stop.sh`], stdout: "null" })
        .output();
      assert.equal(stop.code, 0, new TextDecoder().decode(stop.stderr));
    }
  }
  assert.ok(dir !== undefined);
  assert.equal(exists(dir), false, `${dir} is left behind`);
  assert.deepEqual(processesUsing(dir), [], `processes of ${dir} are left running`);
});
