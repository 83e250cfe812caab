/**
 * Commits in doubt: a session terminated between setting up its origin and
 * committing aborts, and PostgreSQL 16+ moves the origin all the same; the next
 * apply session asks how the transactions ended and puts the origin back to
 * the last one that committed. The choice itself is pure and tested first.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { ApplyError, CommitsInDoubt, TransactionApplier } from "../../mod/apply/mod.ts";
import {
  lastCommittedEnd,
  unreportedMover,
  type XactStatus,
} from "../../mod/apply/commits_in_doubt.ts";
import { resolveConnectOptions, WireSession } from "../../mod/pg/mod.ts";
import { REMOTE_NODE_ID, setupPair } from "./_pair.ts";

const T1 = "2026-12-04T01:00:00.000001Z";
const T2 = "2026-12-04T01:00:00.000002Z";

Deno.test("lastCommittedEnd() stops at the first commit that aborted", () => {
  const doubts = new CommitsInDoubt();
  const a = doubts.sent(100n, 200n, T1);
  const b = doubts.sent(200n, 300n, T2);
  const c = doubts.sent(300n, 400n, T2);
  const statuses = (entries: [string, XactStatus][]) => new Map(entries);
  // Nothing reported yet: the server ran the whole query, so the origin is right.
  assert.equal(lastCommittedEnd(doubts.entries, statuses([])), undefined);
  a.xid = "10";
  b.xid = "11";
  assert.equal(lastCommittedEnd(doubts.entries, statuses([["10", "committed"]])), undefined);
  assert.equal(
    lastCommittedEnd(doubts.entries, statuses([["10", "committed"], ["11", "aborted"]])),
    200n,
  );
  assert.equal(lastCommittedEnd(doubts.entries, statuses([["10", "in progress"]])), "wait");
  // One without a reported xid is judged by a later one (it ran only after the earlier committed).
  a.xid = undefined;
  c.xid = null;
  assert.equal(lastCommittedEnd(doubts.entries, statuses([["11", "aborted"]])), 200n);
  doubts.settled(a);
  assert.deepEqual(doubts.entries.map((entry) => entry.endLsn), [300n, 400n]);
  doubts.clear();
  assert.equal(doubts.entries.length, 0);
});

Deno.test("unreportedMover() names the unreported commit the origin stands at", () => {
  const doubts = new CommitsInDoubt();
  doubts.startAt(50n);
  assert.equal(doubts.floorXid, 49n);
  const a = doubts.sent(100n, 200n, T1);
  doubts.sent(200n, 300n, T2);
  const c = doubts.sent(300n, 400n, T2);
  assert.deepEqual(unreportedMover(doubts.entries, 400n), { entry: c, sameTime: 2 });
  assert.equal(unreportedMover(doubts.entries, 100n), undefined, "no entry ends there");
  a.xid = "70";
  assert.equal(unreportedMover(doubts.entries, 200n), undefined, "its xid tells");
  doubts.settled(a);
  assert.equal(doubts.floorXid, 70n, "later commits have larger xids");
});

pgTest(
  "an apply session put back the origin that an aborted commit moved",
  async (t, cluster) => {
    const pair = await setupPair(cluster, "create table t (id int primary key)");
    const open = (commitsInDoubt: CommitsInDoubt) =>
      TransactionApplier.open(resolveConnectOptions(cluster.dsn({ dbname: "sub" })), {
        originName: pair.slot,
        localNodeId: pair.localNodeId,
        remoteNodeId: REMOTE_NODE_ID,
        commitsInDoubt,
      });
    const applied = async () => {
      const [row] = await pair.subscriber`select
        pg_replication_origin_progress(${pair.slot}, false)::text as lsn`;
      return row.lsn;
    };
    const [committed] = await pair.subscriber.begin(async (tx) => {
      await tx`insert into t values (1)`;
      return await tx`select pg_current_xact_id()::text as xid`;
    });
    await pair.subscriber`select pg_replication_origin_advance(${pair.slot}, '0/4000')`;
    const doubts = new CommitsInDoubt();
    doubts.sent(0x3000n, 0x4000n, T1).xid = committed.xid;
    const aborted = doubts.sent(0x4000n, 0x5000n, T2);

    await t.step("a session ended after the origin's setup aborts (and moves it)", async () => {
      const victim = await WireSession.open(resolveConnectOptions(cluster.dsn({ dbname: "sub" })));
      try {
        const { rows: [row] } = await victim.simple(
          `select pg_replication_origin_session_setup('${pair.slot}'); begin;
           insert into t values (2);
           select pg_backend_pid() as pid, pg_current_xact_id()::text as xid,
             pg_replication_origin_xact_setup('0/5000', now())`,
        );
        aborted.xid = row.xid as string;
        await pair.subscriber`select pg_terminate_backend(${row.pid as number})`;
        await assert.rejects(victim.simple("commit"));
      } finally {
        await victim.close();
      }
      await pollUntil(async () => {
        const [status] = await pair.subscriber`select pg_xact_status(${aborted.xid!}::xid8) as s`;
        return status.s === "aborted" || undefined;
      }, { what: "the terminated transaction to abort" });
      const [{ version }] = await pair.subscriber`select
        current_setting('server_version_num')::int as version`;
      // PostgreSQL 16 and later write the origin into abort records and move it.
      assert.equal(await applied(), version >= 160000 ? "0/5000" : "0/4000");
    });

    await t.step("the next apply session puts it back to the last commit", async () => {
      const applier = await pollUntil(
        () => open(doubts).catch(() => undefined),
        { what: "the origin to be released" },
      );
      try {
        assert.equal(applier.appliedEndLsn, 0x4000n);
        assert.equal(doubts.entries.length, 0);
      } finally {
        await applier.close();
      }
      assert.equal(await applied(), "0/4000");
    });

    await t.step("while the transaction is still open, the session waits for it", async () => {
      const session = await pair.subscriber.reserve();
      try {
        await session`begin`;
        await session`insert into t values (3)`;
        const [row] = await session`select pg_current_xact_id()::text as xid`;
        doubts.sent(0x4000n, 0x6000n, T2).xid = row.xid;
        await assert.rejects(
          open(doubts),
          (error) => error instanceof ApplyError && error.code === "ERR_APPLY_COMMIT_IN_DOUBT",
        );
        await session`rollback`;
      } finally {
        session.release();
      }
      const applier = await open(doubts);
      await applier.close();
      assert.equal(await applied(), "0/4000", "an abort that never moved it leaves it");
    });

    /** A session that sets the origin up for `lsn` at `time`, then commits or is terminated. */
    const endsAfterSetup = async (lsn: string, time: string, id: number, commits: boolean) => {
      const [{ next }] = await pair.subscriber`select
        pg_snapshot_xmax(pg_current_snapshot())::text as next`;
      doubts.startAt(BigInt(next));
      const victim = await WireSession.open(resolveConnectOptions(cluster.dsn({ dbname: "sub" })));
      try {
        const { rows: [row] } = await victim.simple(
          `select pg_replication_origin_session_setup('${pair.slot}'); begin;
           insert into t values (${id});
           select pg_backend_pid() as pid, pg_replication_origin_xact_setup('${lsn}', '${time}')`,
        );
        if (commits) return await victim.simple("commit");
        await pair.subscriber`select pg_terminate_backend(${row.pid as number})`;
        await assert.rejects(victim.simple("commit"));
      } finally {
        await victim.close();
      }
    };

    await t.step("an unreported commit that aborted: the commit timestamps tell", async () => {
      await endsAfterSetup("0/7000", T2, 4, false);
      doubts.sent(0x4000n, 0x7000n, T2);
      const applier = await pollUntil(
        () => open(doubts).catch(() => undefined),
        { what: "the origin to be released" },
      );
      await applier.close();
      assert.equal(await applied(), "0/4000");
    });

    await t.step("an unreported commit that committed: the origin is kept", async () => {
      await endsAfterSetup("0/8000", T2, 5, true);
      doubts.sent(0x4000n, 0x8000n, T2);
      const applier = await open(doubts);
      await applier.close();
      assert.equal(await applied(), "0/8000");
    });
  },
  { everyVersion: true },
);
