/**
 * mod/daemon/worker_seat.ts against a real catalog: a seat holds the
 * subscription's advisory lock (a second daemon waits for it, or gives up
 * when told to stop) and records the worker's state and heartbeat in
 * `spock._apply_worker`; release writes the final state and unlocks. A seat
 * whose session is terminated says so at once, and fails instead of waiting.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type Cluster, pgTest, pollUntil } from "../_harness/mod.ts";
import { WorkerSeat } from "../../mod/daemon/worker_seat.ts";
import { type PgConnectOptions, resolveConnectOptions } from "../../mod/pg/mod.ts";
import { createSubscription, localNode } from "./_local_node.ts";

/** 'SPCK': the high half of every subscription lock's key. */
const LOCK_CLASS = 0x5350434b;

/** Connection settings of another daemon, named for pg_stat_activity. */
function daemonClient(cluster: Cluster, name: string): PgConnectOptions {
  return resolveConnectOptions(cluster.dsn(), { applicationName: name });
}

function acquire(
  options: PgConnectOptions,
  id: number,
  daemon: string,
  signal = new AbortController().signal,
  onLost: (error: unknown) => void = (error) => {
    throw new Error("Seat lost unexpectedly", { cause: error });
  },
) {
  return WorkerSeat.acquire(options, {
    subscriptionId: id,
    subscriptionName: "sub1",
    daemon,
    signal,
    onLost,
  });
}

/** The application_name of the session holding subscription `id`'s lock, if any. */
async function lockHolder(sql: postgres.Sql, id: number): Promise<string | undefined> {
  const rows = await sql`select a.application_name from pg_locks l
    join pg_stat_activity a using (pid)
    where l.locktype = 'advisory' and l.classid = ${LOCK_CLASS}::oid and l.objid = ${id}::oid
      and l.granted`;
  return rows[0]?.application_name;
}

/** Waits until daemon `name` has asked for a lock (and been refused, as it is waiting). */
function triedLock(sql: postgres.Sql, name: string): Promise<boolean> {
  return pollUntil(async () => {
    const rows = await sql`select 1 from pg_stat_activity
      where application_name = ${name} and query like '%pg_try_advisory_lock%'`;
    return rows.length > 0;
  }, { what: `${name} to try the lock` });
}

async function worker(sql: postgres.Sql, id: number) {
  // Timestamps as text: microseconds kept (a Date would round them to milliseconds).
  const rows = await sql`select daemon, pid, state, started_at::text as started_at,
      heartbeat_at::text as heartbeat_at
    from spock._apply_worker where sub_id = ${id}`;
  return rows[0];
}

pgTest(
  "WorkerSeat.acquire() takes the subscription's lock; a second daemon waits until it is released",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    const id = await createSubscription(sql, "sub1");
    const first = await acquire(daemonClient(cluster, "d1"), id, "d1");
    assert.ok(first !== undefined);
    assert.equal(await lockHolder(sql, id), "d1");
    const row = await worker(sql, id);
    assert.deepEqual([row.daemon, row.pid, row.state], ["d1", Deno.pid, "starting"]);
    let secondSettled = false;
    const second = acquire(daemonClient(cluster, "d2"), id, "d2").finally(() => {
      secondSettled = true;
    });
    await triedLock(sql, "d2");
    assert.equal(secondSettled, false, "waits while d1 holds the lock");
    await first.release("stopped");
    const seat = await second;
    assert.ok(seat !== undefined);
    assert.equal(await lockHolder(sql, id), "d2");
    assert.equal((await worker(sql, id)).daemon, "d2");
    await seat.release("stopped");
    assert.equal(await lockHolder(sql, id), undefined);
  },
);

pgTest(
  "WorkerSeat.acquire() waiting for the lock gives up with undefined when its signal aborts",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    const id = await createSubscription(sql, "sub1");
    const first = await acquire(daemonClient(cluster, "d1"), id, "d1");
    const controller = new AbortController();
    const second = acquire(daemonClient(cluster, "d2"), id, "d2", controller.signal);
    await triedLock(sql, "d2");
    controller.abort();
    assert.equal(await second, undefined);
    assert.equal(await lockHolder(sql, id), "d1");
    assert.equal((await worker(sql, id)).daemon, "d1", "the waiting daemon wrote nothing");
    await first!.release("stopped");
  },
);

pgTest(
  "WorkerSeat records the worker's state, keeping started_at while the state stays, and the final state on release",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    const id = await createSubscription(sql, "sub1");
    const seat = (await acquire(daemonClient(cluster, "d1"), id, "d1"))!;
    const starting = await worker(sql, id);
    await seat.setState("syncing");
    const syncing = await worker(sql, id);
    assert.equal(syncing.state, "syncing");
    assert.ok(syncing.started_at > starting.started_at, "a new state starts now");
    await seat.setState("syncing");
    const again = await worker(sql, id);
    assert.equal(again.started_at, syncing.started_at, "same state: kept");
    assert.ok(again.heartbeat_at > syncing.heartbeat_at, "the heartbeat moves");
    await seat.release("failed");
    assert.equal((await worker(sql, id)).state, "failed");
    assert.equal(await lockHolder(sql, id), undefined, "unlocked");
  },
);

pgTest(
  "WorkerSeat reports a terminated session at once, and its writes then fail",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    const id = await createSubscription(sql, "sub1");
    const lost = Promise.withResolvers<unknown>();
    const seat = (await acquire(
      daemonClient(cluster, "d1"),
      id,
      "d1",
      undefined,
      lost.resolve,
    ))!;
    const started = performance.now();
    await sql`select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = 'd1'`;
    const error = await lost.promise;
    const ms = performance.now() - started;
    assert.match(String(error), /the connection to the local database was lost/);
    assert.ok(ms < 2_000, `reported after ${Math.round(ms)} ms, before any heartbeat`);
    await assert.rejects(seat.setState("syncing"), /the connection to the local database was lost/);
    await seat.release("failed");
  },
);
