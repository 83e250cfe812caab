/**
 * An initial sync killed midway resumes by itself: `spock run` is SIGKILLed
 * during the data copy of a 300,000-row table (and, with
 * synchronize_structure, during the structure step and then during the copy
 * that follows the restored structure); after a restart the subscription
 * reaches ready with the provider's data, indexes and later changes. A copy
 * whose local server restarts midway goes on by itself in the same daemon.
 */
import assert from "node:assert/strict";
import { Cluster, pgInstalls, pgTest, pollUntil } from "../_harness/mod.ts";
import { findPgDump } from "../../mod/sync/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  tableDigest,
  type TestNode,
  waitForRow,
  waitForSync,
} from "./_mesh.ts";

const ROWS = 300_000;

/** Majors for which this machine has a pg_dump new enough (structure sync needs one). */
const dumpable = new Set<number>();
for (const install of pgInstalls()) {
  if (await findPgDump(install.major * 10_000).catch(() => undefined)) dumpable.add(install.major);
}

/** Waits until the subscriber's COPY into `big` has processed some rows. */
async function copyUnderWay(node: TestNode): Promise<void> {
  await pollUntil(async () => {
    const [row] = await node.sql`select tuples_processed::int8 as n from pg_stat_progress_copy
      where datname = current_database() and command = 'COPY FROM'`;
    return Number(row?.n ?? 0) > 50_000 || undefined;
  }, { timeoutMs: 60_000, intervalMs: 10, what: "the data copy to be under way" });
}

async function syncStatus(node: TestNode): Promise<string | undefined> {
  const [row] = await node.sql`select sync_status::text as s from spock.local_sync_status
    where sync_relname is null`;
  return row?.s;
}

async function provider(cluster: Parameters<typeof createNodes>[0], subscriberDdl: string) {
  const nodes = await createNodes(cluster, ["sip", "sis"], "");
  await nodes[0].sql.unsafe(`create table big (k int primary key, v text);
    create index big_v on big (v);
    insert into big select g, md5(g::text) from generate_series(1, ${ROWS}) g`);
  if (subscriberDdl) await nodes[1].sql.unsafe(subscriberDdl);
  await addAllTables([nodes[0]]);
  return nodes;
}

/** Restarts spock run until the subscription is ready, then checks data and streaming. */
async function finish(nodes: TestNode[], sub: string): Promise<void> {
  const [source, target] = nodes;
  await using daemon = new SpockProcess(["run", "--dsn", target.dsn]);
  await waitForSync(target, sub);
  assert.equal(await tableDigest(target.sql, "big"), await tableDigest(source.sql, "big"));
  await source.sql`insert into big values (${ROWS + 1}, 'after')`;
  await waitForRow(target, "big", "k", ROWS + 1);
  await daemon.interrupt("SIGTERM");
}

pgTest("an initial data copy killed midway starts over and completes", async (_t, cluster) => {
  const nodes = await provider(cluster, "create table big (k int primary key, v text)");
  try {
    await nodes[1].sql`select spock.sub_create('sub_sis_sip', ${nodes[0].dsn},
      synchronize_data := true)`;
    const killed = new SpockProcess(["run", "--dsn", nodes[1].dsn]);
    await copyUnderWay(nodes[1]);
    await killed.kill();
    assert.equal(await syncStatus(nodes[1]), "d");
    await finish(nodes, "sub_sis_sip");
  } finally {
    await closeNodes(nodes);
  }
});

pgTest(
  "a structure sync killed in its structure step, then in its copy, completes",
  async (_t, cluster) => {
    const nodes = await provider(cluster, "");
    try {
      await nodes[1].sql`select spock.sub_create('sub_sis_sip', ${nodes[0].dsn},
        synchronize_structure := true, synchronize_data := true)`;
      const first = new SpockProcess(["run", "--dsn", nodes[1].dsn]);
      await pollUntil(async () => await syncStatus(nodes[1]) === "s" || undefined, {
        intervalMs: 5,
        what: "the structure step",
      });
      await first.kill();
      const second = new SpockProcess(["run", "--dsn", nodes[1].dsn]);
      await copyUnderWay(nodes[1]);
      await second.kill();
      assert.equal(await syncStatus(nodes[1]), "d", "the structure is restored, the data not");
      await finish(nodes, "sub_sis_sip");
      const [index] = await nodes[1].sql`select count(*)::int as n from pg_indexes
        where indexname = 'big_v'`;
      assert.equal(index.n, 1, "the post-data part (indexes) is restored");
    } finally {
      await closeNodes(nodes);
    }
  },
  { ignore: (install) => !dumpable.has(install.major) },
);

pgTest("an initial data copy goes on by itself after the local server restarts", async (
  _t,
  cluster,
) => {
  const other = await Cluster.start(cluster.install);
  const ddl = "create table big (k int primary key, v text)";
  const [source] = await createNodes(other, ["sip"], ddl);
  const [target] = await createNodes(cluster, ["sis"], ddl);
  const daemon = runDaemon([target], { restart_delay_default: 200 });
  try {
    await source.sql.unsafe(
      `insert into big select g, md5(g::text) from generate_series(1, ${ROWS}) g`,
    );
    await addAllTables([source]);
    await target.sql`select spock.sub_create('sub_sis_sip', ${source.dsn},
      synchronize_data := true)`;
    await copyUnderWay(target);
    await cluster.restart();
    target.sql = cluster.connect({ database: "sis", max: 3 });
    await waitForSync(target, "sub_sis_sip");
    assert.equal(await tableDigest(target.sql, "big"), await tableDigest(source.sql, "big"));
    await source.sql`insert into big values (${ROWS + 1}, 'after')`;
    await waitForRow(target, "big", "k", ROWS + 1);
  } finally {
    await daemon.stop();
    await closeNodes([source, target]);
    await other.stop();
  }
});
