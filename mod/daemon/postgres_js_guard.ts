/**
 * A guard for one known postgres.js 3.4 fault: when the server closes a
 * connection while a small write is queued for the next tick, postgres.js
 * calls `socket.write` on the already-cleared socket and throws from a timer,
 * (or from a promise) which would end the whole daemon. The connection is gone either way and its
 * queries fail with CONNECTION_CLOSED, which the workers handle by restarting;
 * so this one error is logged and swallowed, and every other error still
 * ends the process.
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["spock", "daemon"]);

/** Whether `error` is postgres.js writing to a socket it has already dropped. */
export function isClosedSocketWrite(error: unknown): boolean {
  return error instanceof TypeError &&
    error.message === "Cannot read properties of null (reading 'write')" &&
    /postgres[\\/]src[\\/]connection\.js/.test(error.stack ?? "");
}

/** Installs the guard for this process; returns a function removing it. */
export function guardClosedSocketWrites(): () => void {
  const onError = (event: ErrorEvent) => {
    if (!isClosedSocketWrite(event.error)) return;
    event.preventDefault();
    log.debug("Ignored a write to a closed server connection (postgres.js)");
  };
  // The same fault also surfaces as a rejected promise (a write inside an async handler).
  const onRejection = (event: PromiseRejectionEvent) => {
    if (!isClosedSocketWrite(event.reason)) return;
    event.preventDefault();
    log.debug("Ignored a write to a closed server connection (postgres.js, in a promise)");
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}
