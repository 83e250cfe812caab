/**
 * `spock node add` (ZODAN) on a running two-node mesh: n3 joins while n1
 * and n2 each commit 20,000 numbered transactions. The first run is killed
 * (SIGKILL) at a random step and run again; afterwards every node holds each
 * transaction exactly once (the table has no key, so a change applied twice
 * would show as a second row), and n3's own writes reach n1 and n2. Also the
 * refusals, each of which leaves everything as it was.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type Cluster, freePorts, pgTest, pollUntil, spockCommand } from "../_harness/mod.ts";
import { addNode, type AddNodeOptions } from "../../mod/cluster/mod.ts";
import { findPgDump } from "../../mod/sync/mod.ts";
import {
  closeNodes,
  createEmptyNode,
  createNodes,
  nodesConfigFile,
  runDaemon,
  subscribeMesh,
  type TestNode,
  waitConverged,
  waitForSync,
  writeNumbered,
} from "./_mesh.ts";

const TRANSACTIONS = Number(Deno.env.get("SPOCK_TEST_ADD_TRANSACTIONS") ?? 20_000);
const SCHEMA = "create table log (origin text not null, n int not null)";
const STEPS = 10;

/** A two-node mesh with `log` in default_insert_only, and an empty database n3 with the catalog. */
async function meshAndEmptyNode(
  cluster: Cluster,
): Promise<{ nodes: TestNode[]; subs: Array<[TestNode, string]>; n3: TestNode }> {
  const nodes = await createNodes(cluster, ["n1", "n2"], SCHEMA);
  for (const node of nodes) {
    await node.sql`select spock.repset_add_table('default_insert_only', 'log')`;
  }
  const subs = await subscribeMesh(nodes);
  return { nodes, subs, n3: await createEmptyNode(cluster, "n3") };
}

/** Runs `spock node add` and kills it once it has printed step `killAt` (if given). */
async function runAdd(config: string, killAt: number | undefined, structure: boolean): Promise<
  { code: number | null; stderr: string }
> {
  const child = spockCommand([
    "node",
    "add",
    "--config",
    config,
    "--source",
    "n1",
    "--node",
    "n3",
    "--timeout",
    "120",
    ...(structure ? [] : ["--no-structure"]),
  ]).spawn();
  const stdout = new Response(child.stdout).text();
  let stderr = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    if (killAt !== undefined && stderr.includes(`[${killAt}/${STEPS}]`)) {
      child.kill("SIGKILL");
      break;
    }
  }
  const status = await child.status;
  await stdout;
  return { code: killAt === undefined ? status.code : null, stderr };
}

/** Per origin: rows, and distinct numbers (equal when nothing was applied twice). */
async function counts(node: TestNode): Promise<Record<string, [number, number]>> {
  const rows = await node
    .sql`select origin, count(*)::int as rows, count(distinct n)::int as numbers
    from log group by origin order by origin`;
  return Object.fromEntries(rows.map((r) => [r.origin, [r.rows, r.numbers]]));
}

pgTest(
  `node add joins n3 under ${TRANSACTIONS} transactions per node; killed and run again`,
  async (_t, cluster) => {
    const { nodes, subs, n3 } = await meshAndEmptyNode(cluster);
    const all = [...nodes, n3];
    const mesh = runDaemon(nodes);
    for (const [node, sub] of subs) await waitForSync(node, sub);
    const added = runDaemon([n3]);
    const config = await nodesConfigFile(all);
    // Structure sync needs a pg_dump as new as the server; without one, n3 gets the table by hand.
    const [{ version }] = await n3
      .sql`select current_setting('server_version_num')::int as version`;
    const structure = await findPgDump(version).then(() => true, () => false);
    if (!structure) await n3.sql.unsafe(SCHEMA);
    try {
      const writers = Promise.all(nodes.map((node) => writeNumbered(node, TRANSACTIONS)));
      // Some history before the add starts.
      await pollUntil(async () => {
        const [row] = await nodes[1].sql`select count(*)::int as n from log where origin = 'n2'`;
        return row.n >= Math.min(2_000, TRANSACTIONS) || undefined;
      }, { timeoutMs: 60_000, what: "the first transactions on n2" });
      // SPOCK_TEST_ADD_KILL_STEP=none measures an add that is not interrupted.
      const step = Deno.env.get("SPOCK_TEST_ADD_KILL_STEP");
      const killAt = step === "none"
        ? undefined
        : step !== undefined
        ? Number(step)
        : 3 + Math.floor(Math.random() * (STEPS - 3));
      const started = performance.now();
      if (killAt !== undefined) {
        const first = await runAdd(config, killAt, structure);
        assert.match(first.stderr, new RegExp(`\\[${killAt}/${STEPS}\\]`), first.stderr);
      }
      const second = await runAdd(config, undefined, structure);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      assert.equal(second.code, 0, second.stderr);
      if (killAt !== undefined) assert.match(second.stderr, /continuing an earlier run/);
      console.log(
        `node add (${structure ? "structure and data" : "data"}) ${
          killAt === undefined ? "not interrupted" : `killed at step ${killAt}, run again`
        }: ` +
          `${seconds} s in all`,
      );
      await writers;
      await writeNumbered(n3, 500);
      const expected = {
        n1: [TRANSACTIONS, TRANSACTIONS],
        n2: [TRANSACTIONS, TRANSACTIONS],
        n3: [500, 500],
      };
      await waitConverged(all, "log", 120_000);
      for (const node of all) assert.deepEqual(await counts(node), expected, node.name);
      const links = await n3.sql`select sub_name::text, sub_enabled from spock.subscription
        order by 1`;
      assert.deepEqual(links.map((s) => [s.sub_name, s.sub_enabled]), [
        ["sub_n1_n3", true],
        ["sub_n2_n3", true],
      ]);
      const [{ members }] = await n3.sql`select count(*)::int as members
        from spock.replication_set_table t join spock.replication_set s using (set_id)
        where s.set_name = 'default_insert_only' and t.set_reloid = 'log'::regclass`;
      assert.equal(members, 1, "n3's sets mirror n1's");
    } finally {
      await added.stop();
      await mesh.stop();
      await Deno.remove(config);
      await closeNodes(all);
    }
  },
);

pgTest(
  "node add refuses, changing nothing, a non-empty database, a disabled subscription and a node down",
  async (_t, cluster) => {
    const { nodes, n3 } = await meshAndEmptyNode(cluster);
    const [n1, n2] = nodes;
    const [deadPort] = await freePorts(1);
    const slots = async (sql: postgres.Sql) =>
      (await sql`select slot_name::text from pg_replication_slots order by 1`).map((r) =>
        r.slot_name
      );
    const before = await slots(n1.sql);
    const attempt = (dsns: Map<string, string> = new Map()) => {
      const options: AddNodeOptions = {
        source: { name: "n1", dsn: n1.dsn },
        node: { name: "n3", dsn: n3.dsn },
        directory: { dsns, env: {}, applicationName: "node add test" },
        structure: true,
        timeoutMs: 10_000,
        report: () => {},
      };
      return addNode(options);
    };
    const unchanged = async () => {
      assert.deepEqual(await slots(n1.sql), before);
      const [{ nodes: count }] = await n3.sql`select count(*)::int as nodes from spock.node`;
      assert.equal(count, 0, "n3 has no node");
      for (const node of nodes) {
        const [{ subs }] = await node.sql`select count(*)::int as subs from spock.subscription`;
        assert.equal(subs, 1, `${node.name} keeps only its mesh subscription`);
      }
    };
    try {
      await n3.sql`create table stray (k int)`;
      await assert.rejects(attempt(), /already has tables \(stray\)/);
      await unchanged();
      await n3.sql`drop table stray`;

      await n2.sql`select spock.sub_disable(${"sub_n2_n1"})`;
      await assert.rejects(attempt(), /sub_n2_n1 on n2 must be enabled/);
      await unchanged();
      await n2.sql`select spock.sub_enable(${"sub_n2_n1"})`;

      const down = n2.dsn.replace(/port=\d+/, `port=${deadPort}`);
      assert.notEqual(down, n2.dsn);
      await assert.rejects(attempt(new Map([["n2", down]])), /Cannot reach node n2/);
      await unchanged();
    } finally {
      await closeNodes([...nodes, n3]);
    }
  },
);
