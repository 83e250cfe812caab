/**
 * Unit tests of mod/daemon/postgres_js_guard.ts: which error is postgres.js
 * writing to a socket it has dropped, and the guard that swallows that one
 * error (thrown from a timer or rejected in a promise) and nothing else,
 * until it is removed.
 */
import assert from "node:assert/strict";
import { guardClosedSocketWrites, isClosedSocketWrite } from "../../mod/daemon/mod.ts";

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

Deno.test("guardClosedSocketWrites() swallows that one error, thrown or rejected, until removed", () => {
  const unguard = guardClosedSocketWrites();
  try {
    assert.deepEqual(dispatch(closedSocketWrite()), { error: true, rejection: true });
    assert.deepEqual(dispatch(new TypeError("something else")), { error: false, rejection: false });
  } finally {
    unguard();
  }
  assert.deepEqual(dispatch(closedSocketWrite()), { error: false, rejection: false });
});
