/**
 * FlushTracker against a real server: where to resume (the origin's applied
 * position) and what to confirm (its flushed position, or an idle
 * keepalive's walEnd once everything applied is flushed), never backwards,
 * for an origin with no progress, across a server restart and, through
 * `confirmableNow()`, without asking the server at all.
 */
import assert from "node:assert/strict";
import { type Cluster, pgTest, pollUntil } from "../_harness/mod.ts";
import { FlushTracker } from "../../mod/apply/mod.ts";
import { formatLsn, type Lsn } from "../../mod/pg/mod.ts";
import { runApply, setupPair } from "./_pair.ts";

const ORIGIN = "tracker_origin";

/** Creates the origin and a table to write in the `postgres` database. */
async function prepare(cluster: Cluster): Promise<void> {
  const sql = cluster.connect();
  await sql`select pg_replication_origin_create(${ORIGIN})`;
  await sql.unsafe("create table t (id int)");
  await sql.end();
}

/**
 * Commits one local transaction as the apply session does: replaying the
 * origin's remote transaction that ended at `remoteEndLsn`.
 */
async function commitReplayed(cluster: Cluster, remoteEndLsn: Lsn): Promise<void> {
  const sql = cluster.connect({ max: 1 });
  try {
    await sql`select pg_replication_origin_session_setup(${ORIGIN})`;
    await sql.begin(async (tx) => {
      await tx`select pg_replication_origin_xact_setup(${formatLsn(remoteEndLsn)}, now())`;
      await tx`insert into t values (1)`;
    });
    await sql`select pg_replication_origin_session_reset()`;
  } finally {
    await sql.end();
  }
}

/** Moves the origin to `remoteLsn` by hand (backwards too), as an operator may. */
async function advance(cluster: Cluster, remoteLsn: Lsn): Promise<void> {
  const sql = cluster.connect();
  await sql`select pg_replication_origin_advance(${ORIGIN}, ${formatLsn(remoteLsn)})`;
  await sql.end();
}

pgTest("FlushTracker confirms only what the origin has flushed", async (_t, cluster) => {
  const pair = await setupPair(cluster, "create table t (id int primary key)");
  const tracker = new FlushTracker(pair.subscriber, pair.slot);
  assert.equal(await tracker.resumeLsn(), 0n, "no origin yet: start at the slot's position");
  assert.equal(await tracker.confirmableLsn(), 0n);
  await pair.provider.unsafe("insert into t (id) values (1)");
  await pair.provider.unsafe("insert into t (id) values (2)");
  const result = await runApply(pair, {
    until: async () => (await pair.subscriber.unsafe("select 1 from t")).length === 2,
    keepMessages: true,
  });
  assert.equal(result.error, undefined);
  const last = result.messages.findLast((m) => m.type === "commit");
  assert.ok(last?.type === "commit");
  const { appliedRemoteLsn } = await tracker.positions();
  assert.equal(appliedRemoteLsn, last.endLsn, "the origin holds the last Commit's end LSN");
  assert.equal(await tracker.resumeLsn(), last.endLsn);
  await pair.subscriber.unsafe("checkpoint");
  const flushed = await pollUntil(async () => {
    const { flushedRemoteLsn } = await tracker.positions();
    return flushedRemoteLsn === last.endLsn && flushedRemoteLsn;
  }, { what: "the origin's flushed position" });
  assert.equal(await tracker.confirmableLsn(), flushed);
  // Nothing open and everything flushed: an idle keepalive's walEnd may be confirmed.
  tracker.noteIdleKeepalive(flushed + 100n);
  assert.equal(await tracker.confirmableLsn(), flushed + 100n);
});

pgTest(
  "FlushTracker answers 0 for a missing origin and for one without progress",
  async (_t, cluster) => {
    await prepare(cluster);
    const sql = cluster.connect();
    for (const name of ["no_such_origin", ORIGIN]) {
      const tracker = new FlushTracker(sql, name);
      assert.deepEqual(await tracker.positions(), { appliedRemoteLsn: 0n, flushedRemoteLsn: 0n });
      assert.equal(await tracker.resumeLsn(), 0n, name);
      assert.equal(await tracker.confirmableLsn(), 0n, name);
      assert.equal(tracker.confirmableNow(0n), 0n, name);
    }
  },
);

pgTest(
  "FlushTracker resumes just past the last transaction committed with the origin",
  async (_t, cluster) => {
    await prepare(cluster);
    const tracker = new FlushTracker(cluster.connect(), ORIGIN);
    await commitReplayed(cluster, 0x1000n);
    assert.equal(await tracker.resumeLsn(), 0x1000n);
    await commitReplayed(cluster, 0x2000n);
    // The origin's flushed position is its applied one, once that commit is durable.
    assert.deepEqual(await tracker.positions(), {
      appliedRemoteLsn: 0x2000n,
      flushedRemoteLsn: 0x2000n,
    });
    assert.equal(await tracker.resumeLsn(), 0x2000n);
    assert.equal(await tracker.confirmableLsn(), 0x2000n);
  },
);

pgTest(
  "FlushTracker after a server restart resumes and confirms the origin's position alone",
  async (_t, cluster) => {
    await prepare(cluster);
    await commitReplayed(cluster, 0x3000n);
    const before = new FlushTracker(cluster.connect(), ORIGIN);
    before.noteIdleKeepalive(0x9000n);
    assert.equal(await before.confirmableLsn(), 0x9000n);
    await cluster.restart();
    // A new daemon process: a new tracker, nothing remembered but the origin.
    const after = new FlushTracker(cluster.connect(), ORIGIN);
    assert.equal(await after.resumeLsn(), 0x3000n);
    assert.equal(await after.confirmableLsn(), 0x3000n);
    assert.equal(after.confirmableNow(0x3000n), 0x3000n);
  },
);

pgTest(
  "FlushTracker.confirmableLsn() never goes backwards, while resumeLsn() follows the origin",
  async (_t, cluster) => {
    await prepare(cluster);
    const tracker = new FlushTracker(cluster.connect(), ORIGIN);
    await advance(cluster, 0x5000n);
    assert.equal(await tracker.confirmableLsn(), 0x5000n);
    await advance(cluster, 0x4000n);
    assert.equal((await tracker.positions()).flushedRemoteLsn, 0x4000n);
    assert.equal(await tracker.resumeLsn(), 0x4000n, "resume where the origin says");
    assert.equal(await tracker.confirmableLsn(), 0x5000n, "but never confirm less than before");
    assert.equal(tracker.confirmableNow(0x4000n), 0x5000n);
    await advance(cluster, 0x6000n);
    assert.equal(await tracker.confirmableLsn(), 0x6000n);
  },
);

pgTest(
  "FlushTracker confirms an idle keepalive's walEnd only beyond the flushed position",
  async (_t, cluster) => {
    await prepare(cluster);
    const tracker = new FlushTracker(cluster.connect(), ORIGIN);
    // Nothing applied yet: WAL up to an idle keepalive had nothing for us.
    tracker.noteIdleKeepalive(0x100n);
    assert.equal(await tracker.confirmableLsn(), 0x100n);
    await commitReplayed(cluster, 0x2000n);
    tracker.noteIdleKeepalive(0x1000n);
    assert.equal(await tracker.confirmableLsn(), 0x2000n, "an older walEnd does not win");
    tracker.noteIdleKeepalive(0x3000n);
    assert.equal(await tracker.confirmableLsn(), 0x3000n);
    // A later keepalive with a smaller walEnd is ignored.
    tracker.noteIdleKeepalive(0x2800n);
    assert.equal(await tracker.confirmableLsn(), 0x3000n);
    await commitReplayed(cluster, 0x4000n);
    assert.equal(await tracker.confirmableLsn(), 0x4000n, "the flushed origin passes the walEnd");
  },
);

pgTest(
  "FlushTracker.confirmableNow() answers without the server, from the flushed position last seen",
  async (_t, cluster) => {
    await prepare(cluster);
    const sql = cluster.connect();
    const tracker = new FlushTracker(sql, ORIGIN);
    await commitReplayed(cluster, 0x2000n);
    assert.equal(await tracker.confirmableLsn(), 0x2000n);
    tracker.noteIdleKeepalive(0x5000n);
    // The server may refuse queries now (it is shutting down): none is sent.
    await sql.end();
    await cluster.stopServer();
    assert.equal(
      tracker.confirmableNow(0x3000n),
      0x2000n,
      "a commit not yet seen flushed holds the idle walEnd back",
    );
    assert.equal(tracker.confirmableNow(0x2000n), 0x5000n, "everything applied is flushed");
    assert.equal(tracker.confirmableNow(0x2000n), 0x5000n);
  },
);
