/**
 * Unit tests of mod/daemon/postgres_js_guard.ts: which errors are postgres.js
 * writing to a socket it has dropped, or failing its own array-type query,
 * and the guard that swallows those two (thrown from a timer or rejected in a
 * promise) and nothing else, until it is removed. The type-query failure on a
 * real server is in postgres_js_type_fetch_test.ts.
 */
import assert from "node:assert/strict";
import {
  guardPostgresJsFaults,
  isClosedSocketWrite,
  isTypeFetchFailure,
} from "../../mod/daemon/mod.ts";

const MESSAGE = "Cannot read properties of null (reading 'write')";

/** The error as postgres.js 3.4 throws it, its stack in postgres's connection.js. */
function closedSocketWrite(): TypeError {
  const error = new TypeError(MESSAGE);
  error.stack = `TypeError: ${MESSAGE}\n    at write (file:///app/node_modules/.deno/` +
    "postgres@3.4.9/node_modules/postgres/src/connection.js:254:12)";
  return error;
}

Deno.test("isClosedSocketWrite() recognises postgres.js writing to a dropped socket only", () => {
  assert.equal(isClosedSocketWrite(closedSocketWrite()), true);
  const elsewhere = new TypeError(MESSAGE);
  elsewhere.stack = `TypeError: ${MESSAGE}\n    at write (file:///app/mod/daemon/daemon.ts:1:1)`;
  assert.equal(isClosedSocketWrite(elsewhere), false, "the same message from other code");
  const other = closedSocketWrite();
  other.message = "Cannot read properties of null (reading 'end')";
  assert.equal(isClosedSocketWrite(other), false, "another message");
  assert.equal(
    isClosedSocketWrite(Object.assign(new Error(MESSAGE), { stack: other.stack })),
    false,
  );
  assert.equal(isClosedSocketWrite(undefined), false);
});

/** postgres.js 3.4's array-type query, as connection.js sends it. */
const TYPE_QUERY = `
      select b.oid, b.typarray
      from pg_catalog.pg_type a
      left join pg_catalog.pg_type b on b.oid = a.typelem
      where a.typcategory = 'A'
      group by b.oid, b.typarray
      order by b.oid
    `;

/** A connection error as postgres.js hands it to that query (`query` is not enumerable). */
function typeFetchFailure(): Error {
  const error = new Error("write CONNECTION_DESTROYED 127.0.0.1:5432");
  Object.defineProperty(error, "query", { value: TYPE_QUERY });
  return error;
}

Deno.test("isTypeFetchFailure() recognises a failure of postgres.js's own type query only", () => {
  assert.equal(isTypeFetchFailure(typeFetchFailure()), true);
  const ours = Object.assign(new Error("write CONNECTION_DESTROYED 127.0.0.1:5432"), {
    query: "select oid from pg_catalog.pg_type where typname = $1",
  });
  assert.equal(isTypeFetchFailure(ours), false, "a query of ours on pg_type");
  assert.equal(isTypeFetchFailure(new Error("write CONNECTION_DESTROYED")), false, "no query");
  assert.equal(isTypeFetchFailure({ query: TYPE_QUERY }), false, "not an Error");
  assert.equal(isTypeFetchFailure(undefined), false);
});

/** Dispatches an uncaught error event and a rejection event; which of them were prevented. */
function dispatch(error: unknown): { error: boolean; rejection: boolean } {
  const errorEvent = new ErrorEvent("error", { error, cancelable: true });
  globalThis.dispatchEvent(errorEvent);
  const promise = Promise.reject(error);
  promise.catch(() => {});
  const rejection = new PromiseRejectionEvent("unhandledrejection", {
    promise,
    reason: error,
    cancelable: true,
  });
  globalThis.dispatchEvent(rejection);
  return { error: errorEvent.defaultPrevented, rejection: rejection.defaultPrevented };
}

Deno.test("guardPostgresJsFaults() swallows those two errors and no other, until removed", () => {
  const unguard = guardPostgresJsFaults();
  try {
    assert.deepEqual(dispatch(closedSocketWrite()), { error: true, rejection: true });
    assert.deepEqual(dispatch(typeFetchFailure()), { error: false, rejection: true });
    assert.deepEqual(dispatch(new TypeError("something else")), { error: false, rejection: false });
  } finally {
    unguard();
  }
  assert.deepEqual(dispatch(closedSocketWrite()), { error: false, rejection: false });
  assert.deepEqual(dispatch(typeFetchFailure()), { error: false, rejection: false });
});
