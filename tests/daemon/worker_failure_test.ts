/**
 * mod/daemon/worker_failure.ts: which failures stop a worker, the message and
 * SQLSTATE it records (unit tests), and recordWorkerFailure() against a real
 * catalog: the subscription's last error, replaced by the next, nothing for
 * an unknown subscription, and no throw when the local server is down.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { ApplyError, type ApplyErrorCode } from "../../mod/apply/mod.ts";
import {
  failureMessage,
  recordWorkerFailure,
  sqlStateOf,
  stopsWorker,
} from "../../mod/daemon/worker_failure.ts";
import { createSubscription, localNode } from "./_local_node.ts";

function applyError(code: ApplyErrorCode, cause?: unknown): ApplyError {
  return new ApplyError("Cannot apply insert", {
    code,
    operation: "insert",
    relation: "public.t",
    remoteCommitLsn: 0x1_0000_0010n,
    cause,
  });
}

/** A server error as postgres.js and the wire session raise it: a message and a SQLSTATE. */
function serverError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

Deno.test("stopsWorker() is true only for a missing origin or a disabled subscription", () => {
  assert.equal(stopsWorker(applyError("ERR_APPLY_NO_ORIGIN")), true);
  assert.equal(stopsWorker(applyError("ERR_APPLY_SUB_DISABLED")), true);
  for (const code of ["ERR_APPLY_SQL", "ERR_APPLY_MISSING_RELATION", "ERR_APPLY_RETRY"] as const) {
    assert.equal(stopsWorker(applyError(code)), false, code);
  }
  assert.equal(stopsWorker(serverError("connection refused", "ECONNREFUSED")), false);
  assert.equal(stopsWorker("ERR_APPLY_NO_ORIGIN"), false);
});

Deno.test("sqlStateOf() is the server's SQLSTATE, never a client error code", () => {
  assert.equal(sqlStateOf(applyError("ERR_APPLY_SQL", serverError("dup", "23505"))), "23505");
  assert.equal(sqlStateOf(applyError("ERR_APPLY_SQL")), undefined);
  assert.equal(sqlStateOf(serverError("no table", "42P01")), "42P01");
  assert.equal(sqlStateOf(serverError("refused", "ECONNREFUSED")), undefined);
  assert.equal(sqlStateOf(serverError("closed", "CONNECTION_CLOSED")), undefined);
  assert.equal(sqlStateOf(undefined), undefined);
  assert.equal(sqlStateOf("23505"), undefined);
});

Deno.test("failureMessage() adds a server error's SQLSTATE and keeps an ApplyError's message as it is", () => {
  const apply = applyError("ERR_APPLY_SQL", serverError("dup", "23505"));
  assert.equal(failureMessage(apply), apply.message);
  assert.equal(
    failureMessage(serverError("relation missing", "42P01")),
    "relation missing (42P01)",
  );
  assert.equal(failureMessage(serverError("refused", "ECONNREFUSED")), "refused");
  assert.equal(failureMessage(new Error("plain")), "plain");
  assert.equal(failureMessage("a string"), "a string");
});

async function lastError(sql: Awaited<ReturnType<typeof localNode>>["sql"], id: number) {
  const rows = await sql`select error_message, sqlstate, remote_lsn::text as lsn, attempt,
      retry_at is not null as retries,
      round(extract(epoch from retry_at - errored_at))::int as retry_s
    from spock._sub_error where sub_id = ${id}`;
  return rows.length === 0 ? undefined : { ...rows[0] };
}

pgTest(
  "recordWorkerFailure() keeps the subscription's last error, with its attempt and retry time",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    const id = await createSubscription(sql, "sub1");
    const first = serverError("could not connect to the provider", "08006");
    await recordWorkerFailure(sql, {
      subscriptionId: id,
      error: first,
      attempt: 1,
      retryInMs: 4_000,
    });
    assert.deepEqual(await lastError(sql, id), {
      error_message: "could not connect to the provider (08006)",
      sqlstate: "08006",
      lsn: null,
      attempt: 1,
      retries: true,
      retry_s: 4,
    });
    // The next failure replaces it; one the worker does not retry has no retry time.
    const second = applyError("ERR_APPLY_NO_ORIGIN");
    await recordWorkerFailure(sql, {
      subscriptionId: id,
      error: second,
      attempt: 2,
      retryInMs: undefined,
    });
    assert.deepEqual(await lastError(sql, id), {
      error_message: second.message,
      sqlstate: null,
      lsn: "1/10",
      attempt: 2,
      retries: false,
      retry_s: null,
    });
    assert.equal((await sql`select count(*)::int as n from spock._sub_error`)[0].n, 1);
  },
);

pgTest(
  "recordWorkerFailure() writes nothing for an unknown subscription, and does not throw when the server is down",
  async (_t, cluster) => {
    const { sql } = await localNode(cluster);
    const failure = { error: new Error("boom"), attempt: 1, retryInMs: 1_000 };
    await recordWorkerFailure(sql, { subscriptionId: 123456, ...failure });
    assert.equal((await sql`select count(*)::int as n from spock._sub_error`)[0].n, 0);
    const id = await createSubscription(sql, "sub1");
    await cluster.stopServer();
    const down = cluster.connect({ connect_timeout: 1 });
    const start = performance.now();
    await recordWorkerFailure(down, { subscriptionId: id, ...failure });
    assert.ok(performance.now() - start < 2_500, "gives up within its 2 s");
  },
);
