/**
 * Across major versions, each node on its own server: a provider on an older
 * major and a subscriber on a newer one (15 → 17 with structure sync, 16 → 18
 * with the data only: this machine's pg_dump 15 cannot dump 16) synchronize and
 * stream, and end equal; and the major-version upgrade of the README, end to
 * end: a 17 node joins a 15 node with `spock node add` under writes, writes
 * switch over to it, and `spock node remove` takes the 15 node out. A pair
 * whose versions are not installed is reported as ignored, never as passed.
 */
import assert from "node:assert/strict";
import { Cluster, installsUnderTest, pollUntil, runSpock } from "../_harness/mod.ts";
import type { PgInstall } from "../../local_pg/mod.ts";
import { findPgDump } from "../../mod/sync/mod.ts";
import {
  addAllTables,
  closeNodes,
  createEmptyNode,
  createNodes,
  nodesConfigFile,
  runDaemon,
  tableDigest,
  waitConverged,
  waitForRow,
  waitForSync,
  writeNumbered,
} from "./_mesh.ts";

const installs = await installsUnderTest("every");
const installOf = (major: number) => installs.find((install) => install.major === major);

const TYPES_SCHEMA = `create table t (k int primary key, v text, ts timestamptz, j jsonb,
  n numeric, b bytea, a int[])`;
const TYPES_ROWS =
  `insert into t select g, md5(g::text), '2026-01-01'::timestamptz + g * interval '1 s',
  jsonb_build_object('g', g), g / 7.0, decode(md5(g::text), 'hex'), array[g, -g]
  from generate_series(1, 5000) g`;

/** Runs `fn` with one started cluster per install, stopping them however it ends. */
async function withClusters(
  wanted: PgInstall[],
  fn: (clusters: Cluster[]) => Promise<void>,
): Promise<void> {
  const clusters: Cluster[] = [];
  try {
    for (const install of wanted) clusters.push(await Cluster.start(install));
    await fn(clusters);
  } catch (error) {
    for (const cluster of clusters) {
      const log = await cluster.log();
      if (log) {
        console.error(`--- server log (pg${cluster.install.major}) ---\n${log.slice(-3000)}`);
      }
    }
    throw error;
  } finally {
    for (const cluster of clusters) await cluster.stop();
  }
}

/** Whether this machine has a pg_dump that can dump a server of `major`. */
function canDump(major: number): Promise<boolean> {
  return findPgDump(major * 10_000).then(() => true, () => false);
}

for (const [older, newer] of [[15, 17], [16, 18]]) {
  const pair = [installOf(older), installOf(newer)];
  Deno.test({
    name: `provider ${older} → subscriber ${newer}: initial sync and streaming end equal`,
    ignore: pair.some((install) => install === undefined),
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () =>
      withClusters(pair as PgInstall[], async ([oldCluster, newCluster]) => {
        const structure = await canDump(older);
        const [provider] = await createNodes(oldCluster, ["xp"], TYPES_SCHEMA);
        const [subscriber] = await createNodes(newCluster, ["xs"], structure ? "" : TYPES_SCHEMA);
        const nodes = [provider, subscriber];
        await provider.sql.unsafe(TYPES_ROWS);
        await addAllTables([provider]);
        await subscriber.sql`select spock.sub_create('sub_xs_xp', ${provider.dsn},
          synchronize_structure := ${structure}, synchronize_data := true)`;
        const daemon = runDaemon([subscriber]);
        try {
          await waitForSync(subscriber, "sub_xs_xp");
          assert.equal(
            await tableDigest(subscriber.sql, "t"),
            await tableDigest(provider.sql, "t"),
          );
          await provider.sql.unsafe(`${TYPES_ROWS.replace("1, 5000", "5001, 6000")};
            update t set v = 'changed', j = j || '{"u": true}' where k % 10 = 0;
            delete from t where k % 13 = 0;`);
          await waitForRow(subscriber, "t", "k", 6000);
          await waitConverged(nodes, "t");
        } finally {
          await daemon.stop();
          await closeNodes(nodes);
        }
      }),
  });
}

Deno.test({
  name: "a major-version upgrade 15 → 17: node add, writes switch over, node remove",
  ignore: [15, 17].some((major) => installOf(major) === undefined),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withClusters([installOf(15)!, installOf(17)!], async ([c15, c17]) => {
      const schema = "create table log (origin text not null, n int not null)";
      const [old] = await createNodes(c15, ["pg15node"], schema);
      await old.sql`select spock.repset_add_table('default_insert_only', 'log')`;
      const next = await createEmptyNode(c17, "pg17node");
      const nodes = [old, next];
      const config = await nodesConfigFile(nodes);
      const oldDaemon = runDaemon([old]);
      const nextDaemon = runDaemon([next]);
      try {
        // The application writes to the old node during the add.
        const writes = writeNumbered(old, 3_000);
        const added = await runSpock([
          "node",
          "add",
          "--config",
          config,
          "--source",
          old.name,
          "--node",
          next.name,
          "--timeout",
          "120",
        ]);
        assert.equal(added.code, 0, added.stderr);
        await writes;
        await waitConverged(nodes, "log");
        // Writes switch over to the new node, and still reach the old one until it leaves.
        await next.sql`insert into log values ('pg17node', 1)`;
        await pollUntil(async () => {
          const rows = await old.sql`select 1 from log where origin = 'pg17node'`;
          return rows.length === 1 || undefined;
        }, { what: "the new node's write on the old node" });
        const removed = await runSpock(["node", "remove", "--config", config, "--node", old.name]);
        assert.equal(removed.code, 0, removed.stderr);
        const [kept] = await next.sql`select count(*)::int as rows,
          count(distinct (origin, n))::int as distinct_rows from log`;
        assert.deepEqual([kept.rows, kept.distinct_rows], [3_001, 3_001]);
        const left = await next.sql`select sub_name::text from spock.subscription`;
        assert.deepEqual([...left], []);
        const slots = await next.sql`select slot_name::text from pg_replication_slots`;
        assert.deepEqual([...slots], [], "no slot is left on the new node");
        const [{ version }] = await next.sql`select current_setting('server_version_num')::int
          as version`;
        assert.ok(version >= 170000);
      } finally {
        await nextDaemon.stop();
        await oldDaemon.stop();
        await closeNodes(nodes);
      }
    }),
});
