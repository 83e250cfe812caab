/**
 * The soak: three nodes on three servers in a full mesh, each writing random
 * conflicting inserts, updates and deletes on one small key range, while
 * `spock run` (one daemon serving all three) is SIGKILLed and started again
 * at every interval and one server is restarted halfway. At the end the nodes
 * hold the same rows, nothing went to exception handling, no conflict was
 * counted that spock.resolutions does not hold, and the daemon's resident
 * memory did not grow.
 *
 * Not in `deno task test` (the file name keeps it out): beside the other
 * tests its three servers make timing-bound tests fail. SPOCK_SOAK_SECONDS
 * sets the length: 60 by default (a kill every 15 s), 600 for `deno task
 * soak` (a kill every minute; RSS at minute 2 and 10 compared).
 */
import assert from "node:assert/strict";
import { Cluster, pgInstalls, pollUntil } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  nodesConfigFile,
  subscribeMesh,
  type TestNode,
  waitConverged,
  waitForSync,
  writeConflicting,
} from "./_mesh.ts";

const SECONDS = Number(Deno.env.get("SPOCK_SOAK_SECONDS") ?? "60");
const KILL_EVERY_S = Math.max(15, Math.round(SECONDS / 10));
const KEYS = 50;
/** The conflicts spock.resolutions always records with save_resolutions (see conflict_mesh_test). */
const RECORDED_TYPES = ["insert_exists", "update_missing", "delete_missing", "delete_exists"];

/** The resident set size of process `pid`, in MiB. */
async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  return Math.round(kib / 1024);
}

/** The newest version under test. */
const install = pgInstalls().reduce((newest, each) => each.major > newest.major ? each : newest);

Deno.test({
  name:
    `soak: a mesh under conflicts, SIGKILLs and a server restart for ${SECONDS} s [pg${install.major}]`,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const clusters: Cluster[] = [];
    let nodes: TestNode[] = [];
    let daemon: SpockProcess | undefined;
    try {
      for (let i = 0; i < 3; i++) clusters.push(await Cluster.start(install));
      const ddl = "create table kv (k int primary key, v int not null, note text)";
      const names = ["soa", "sob", "soc"];
      nodes = (await Promise.all(clusters.map((c, i) => createNodes(c, [names[i]], ddl)))).flat();
      await addAllTables(nodes);
      const subscriptions = await subscribeMesh(nodes);
      const config = await nodesConfigFile(nodes);
      await Deno.writeTextFile(
        config,
        "engine:\n  save_resolutions: true\n  update_missing: insert\n" +
          "  restart_delay_default: 500\n",
        { append: true },
      );
      const start = () => new SpockProcess(["run", "--config", config]);
      daemon = start();
      for (const [node, sub] of subscriptions) await waitForSync(node, sub);

      const began = Date.now();
      const until = began + SECONDS * 1000;
      // Paced so that one daemon applying six streams keeps up on two cores shared with the
      // three servers (at 3 ms it fell minutes behind in 10 minutes: a backlog, not a fault).
      const writers = Promise.all(nodes.map((node, i) =>
        writeConflicting(node, {
          until,
          seed: i + 11,
          keys: KEYS,
          paceMs: 10,
          tolerateFailures: true,
        })
      ));
      const sleepUntil = (at: number) =>
        new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
      // The harness ends a cluster's clients when it stops it: the writer gets a new one.
      const restart = sleepUntil(began + SECONDS * 500).then(async () => {
        await clusters[1].restart();
        nodes[1].sql = clusters[1].connect({ database: nodes[1].name, max: 3 });
      });
      const rss: Array<{ atS: number; mib: number }> = [];
      let kills = 0;
      for (let next = began + KILL_EVERY_S * 1000; next <= until; next += KILL_EVERY_S * 1000) {
        await sleepUntil(next);
        rss.push({ atS: Math.round((Date.now() - began) / 1000), mib: await rssMiB(daemon.pid) });
        if (next + KILL_EVERY_S * 1000 > until) break;
        await daemon.kill();
        kills++;
        daemon = start();
      }
      await restart;
      const written = await writers;

      const quiet = Date.now();
      await waitConverged(nodes, "kv", 300_000);
      const convergedS = Math.round((Date.now() - quiet) / 1000);
      for (const [node, sub] of subscriptions) {
        await pollUntil(async () => {
          const [row] = await node.sql`select status from spock.sub_show_status(${sub})`;
          return row.status === "replicating";
        }, { timeoutMs: 60_000, what: `${sub} on ${node.name} to replicate` });
      }
      // Stopped cleanly, the last daemon has written every counter it holds.
      const result = await daemon.interrupt();
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      daemon = undefined;

      let recordedTotal = 0;
      let countedTotal = 0;
      for (const node of nodes) {
        const [errors] = await node.sql`select count(*)::int as n from spock.exception_log`;
        assert.equal(errors.n, 0, `exception_log on ${node.name}`);
        const [counted] = await node.sql`select
            coalesce(sum(confl_insert_exists), 0)::int as insert_exists,
            coalesce(sum(confl_update_missing), 0)::int as update_missing,
            coalesce(sum(confl_delete_missing), 0)::int as delete_missing,
            coalesce(sum(confl_delete_exists), 0)::int as delete_exists
          from spock._channel_stats`;
        const recorded = new Map(
          (await node.sql`select conflict_type, count(*)::int as n
            from spock.resolutions group by conflict_type`).map((
            row,
          ) => [row.conflict_type, row.n]),
        );
        for (const type of RECORDED_TYPES) {
          const rows = recorded.get(type) ?? 0;
          // A SIGKILL loses the counts not flushed yet (once a second); the rows commit with
          // their transactions. Never more counted than recorded.
          assert.ok(counted[type] <= rows, `${type} on ${node.name}: ${counted[type]} > ${rows}`);
          recordedTotal += rows;
          countedTotal += counted[type];
        }
      }
      const operations = written.reduce((sum, w) => sum + w.operations, 0);
      const failed = written.reduce((sum, w) => sum + w.failed, 0);
      const at = (s: number) => rss.find((sample) => sample.atS >= s - 2)?.mib;
      console.log(
        `soak ${SECONDS} s: ${operations} transactions (${failed} refused during the restart), ` +
          `${kills} SIGKILLs, 1 server restart, identical ${convergedS} s after the writes; ` +
          `conflicts recorded ${recordedTotal}, ` +
          `counted ${countedTotal}; daemon RSS (MiB) ${
            rss.map((sample) => `${sample.atS}s:${sample.mib}`).join(" ")
          }`,
      );
      assert.ok(operations > SECONDS * 20, `only ${operations} transactions`);
      assert.ok(recordedTotal > 0, "the workload produced conflicts");
      assert.equal(kills, Math.floor(SECONDS / KILL_EVERY_S) - 1);
      if (SECONDS >= 600) {
        const [minute2, minute10] = [at(120)!, at(600)!];
        assert.ok(minute10 <= minute2 * 1.15, `RSS grew: ${minute2} MiB → ${minute10} MiB`);
      }
    } catch (error) {
      console.error(`--- spock run (last) ---\n${daemon?.stderr.slice(-6000)}`);
      for (const node of nodes) {
        const status = await node.sql`select s.subscription_name, s.status, e.error_message
          from spock.sub_show_status() s left join spock.subscription u
            on u.sub_name = s.subscription_name
          left join spock._sub_error e on e.sub_id = u.sub_id`.catch((e) => [String(e)]);
        const rows = await node.sql`select k, v, note from kv order by k`.catch(() => []);
        console.error(
          `--- ${node.name}: ${JSON.stringify(status)}\n${
            rows.map((r) => `${r.k}:${r.v}:${r.note}`).join(" ")
          }`,
        );
      }
      throw error;
    } finally {
      await daemon?.kill();
      await closeNodes(nodes);
      for (const cluster of clusters) await cluster.stop();
    }
  },
});
