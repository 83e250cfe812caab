/**
 * Every conflict_resolution mode, set per subscription with
 * sub_alter_options over the node's default, on the same row changed on both
 * nodes while the subscription is disabled; and the tiebreaker deciding
 * between equal commit timestamps (forced through a replication origin), in
 * both directions.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  type TestNode,
  waitForRow,
  waitForSync,
} from "./_mesh.ts";

async function value(node: TestNode, k: number): Promise<string | undefined> {
  const [row] = await node.sql`select v from t where k = ${k}`;
  return row?.v;
}

pgTest("each conflict_resolution mode picks its winner", async (_t, cluster) => {
  const nodes = await createNodes(
    cluster,
    ["mp", "ms"],
    "create table t (k int primary key, v text)",
  );
  const [provider, subscriber] = nodes;
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider);
  const daemon = runDaemon([subscriber], { save_resolutions: true });
  try {
    await waitForSync(subscriber, sub);
    const expected: [string, "remote" | "local"][] = [
      ["last_update_wins", "local"],
      ["first_update_wins", "remote"],
      ["apply_remote", "remote"],
      ["keep_local", "local"],
      ["error", "local"],
    ];
    let marker = 1000;
    for (const [index, [mode, winner]] of expected.entries()) {
      const k = index + 1;
      await provider.sql`insert into t values (${k}, 'start')`;
      await waitForRow(subscriber, "t", "k", k);
      await subscriber.sql`select spock.sub_disable(${sub})`;
      await subscriber.sql`select spock.sub_alter_options(${sub},
        ${JSON.stringify({ conflict_resolution: mode })}::text::jsonb)`;
      await provider.sql`update t set v = 'remote' where k = ${k}`; // older
      await subscriber.sql`update t set v = 'local' where k = ${k}`; // newer
      await provider.sql`insert into t values (${++marker}, 'marker')`;
      await subscriber.sql`select spock.sub_enable(${sub})`;
      await waitForRow(subscriber, "t", "k", marker);
      assert.equal(await value(subscriber, k), winner, `winner under ${mode}`);
      if (mode === "error") {
        const [logged] = await subscriber.sql`
          select error_message from spock.exception_log where operation = 'UPDATE'`;
        assert.match(logged.error_message, /^SP001: conflict update_origin_differs on relation/);
      } else {
        const [resolution] = await subscriber.sql`
          select conflict_type, conflict_resolution from spock.resolutions
          where local_tuple::json ->> 'k' = ${String(k)}`;
        if (winner === "local") {
          assert.deepEqual(
            [resolution.conflict_type, resolution.conflict_resolution],
            ["update_origin_differs", "keep_local"],
          );
        } else {
          assert.equal(resolution, undefined, "a remote win over another origin is not recorded");
        }
      }
    }
    const [counted] = await pollUntil(async () => {
      const rows = await subscriber.sql`
        select confl_update_origin_differs::int as n from spock.channel_table_stats
        where table_name = 'public.t'`;
      return rows[0]?.n >= 2 ? rows : undefined;
    }, { what: "update_origin_differs counted" });
    assert.equal(counted.n, 2, "the two local wins (a remote win is not counted)");
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});

pgTest("equal commit timestamps go to the lower tiebreaker", async (_t, cluster) => {
  const nodes = await createNodes(
    cluster,
    ["tp", "ts", "tq"],
    "create table t (k int primary key, v text)",
  );
  const [p, s, q] = nodes;
  await addAllTables([p, q]);
  const sub = await subscribe(s, p);
  // A subscription to tq that never runs: its origin stands for tq's changes.
  await s.sql`select spock.sub_create(subscription_name := 'sub_ts_tq', provider_dsn := ${q.dsn},
    enabled := false)`;
  const [{ slot }] = await s.sql`
    select sub_slot_name::text as slot from spock.subscription where sub_name = 'sub_ts_tq'`;
  const daemon = runDaemon([s], { save_resolutions: true });
  try {
    await waitForSync(s, sub);
    const rounds: [number, number, string][] = [[2, 1, "from tq"], [1, 2, "from tp"]];
    let marker = 1000;
    for (const [k, [tpTiebreaker, tqTiebreaker, winner]] of rounds.entries()) {
      await s
        .sql`update spock.node set info = jsonb_build_object('tiebreaker', ${tpTiebreaker}::int)
        where node_name = 'tp'`;
      await s
        .sql`update spock.node set info = jsonb_build_object('tiebreaker', ${tqTiebreaker}::int)
        where node_name = 'tq'`;
      await p.sql`insert into t values (${k}, 'start')`;
      await waitForRow(s, "t", "k", k);
      await s.sql`select spock.sub_disable(${sub})`;
      const [{ ts }] = await p.sql.begin(async (tx) => {
        await tx`update t set v = 'from tp' where k = ${k}`;
        return await tx`select pg_current_xact_id()::text::xid as xid`;
      }).then(async ([{ xid }]) =>
        await p.sql`select pg_xact_commit_timestamp(${xid}::xid)::text as ts`
      );
      // tq's "change" carries exactly tp's commit timestamp.
      const session = await s.sql.reserve();
      try {
        await session`select pg_replication_origin_session_setup(${slot})`;
        await session`begin`;
        await session`update t set v = 'from tq' where k = ${k}`;
        await session`select pg_replication_origin_xact_setup('0/0', ${ts}::text::timestamptz)`;
        await session`commit`;
        await session`select pg_replication_origin_session_reset()`;
      } finally {
        session.release();
      }
      await p.sql`insert into t values (${++marker}, 'marker')`;
      await s.sql`select spock.sub_enable(${sub})`;
      await waitForRow(s, "t", "k", marker);
      assert.equal(await value(s, k), winner, `round ${k}`);
    }
    const recorded = await s.sql`
      select conflict_resolution from spock.resolutions order by id`;
    assert.deepEqual(recorded.map((row) => row.conflict_resolution), ["keep_local"]);
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
