import assert from "node:assert/strict";
import { ApplyError } from "../../mod/apply/mod.ts";
import { describeFailure, isTransientError } from "../../mod/apply/exception_mode.ts";
import { ReplayQueue } from "../../mod/apply/replay_queue.ts";
import type { PgoutputMessage } from "../../mod/pgoutput/mod.ts";

function sqlError(code: string, message = "boom"): Error {
  return Object.assign(new Error(message), { code });
}

Deno.test("isTransientError() retries lost connections and transient SQLSTATEs only", () => {
  assert.equal(isTransientError(new Error("socket closed")), true);
  for (const code of ["08006", "40001", "40P01", "55P03", "57P01", "53300"]) {
    assert.equal(isTransientError(sqlError(code)), true, code);
  }
  for (const code of ["23505", "23514", "22P02", "42P01", "SP001", "SP002"]) {
    assert.equal(isTransientError(sqlError(code)), false, code);
  }
  const wrapped = new ApplyError("Cannot apply", {
    code: "ERR_APPLY_SQL",
    operation: "insert",
    cause: sqlError("40001"),
  });
  assert.equal(isTransientError(wrapped), true);
  const missing = new ApplyError("Cannot map", {
    code: "ERR_APPLY_MISSING_RELATION",
    operation: "relation",
  });
  assert.equal(isTransientError(missing), false);
});

Deno.test("describeFailure() puts the SQLSTATE of the innermost server error first", () => {
  const wrapped = new ApplyError("Cannot apply", {
    code: "ERR_APPLY_SQL",
    operation: "insert",
    cause: sqlError("23514", 'new row violates check constraint "small"'),
  });
  assert.equal(describeFailure(wrapped), '23514: new row violates check constraint "small"');
  assert.equal(describeFailure(new Error("plain")), "plain");
});

Deno.test("ReplayQueue keeps one transaction's messages up to its byte limit", () => {
  const begin = { type: "begin" } as PgoutputMessage;
  const insert = { type: "insert" } as PgoutputMessage;
  const queue = new ReplayQueue(600); // each message also costs 256 bytes of overhead
  queue.note(begin, 10);
  queue.note(insert, 50);
  assert.deepEqual(queue.messages, [begin, insert]);
  queue.note(insert, 50);
  assert.equal(queue.messages, undefined, "over the limit: nothing kept");
  queue.note(insert, 1);
  assert.equal(queue.messages, undefined, "stays empty until the next Begin");
  queue.note(begin, 10);
  assert.deepEqual(queue.messages, [begin]);
  queue.clear();
  assert.equal(queue.messages, undefined);
});
