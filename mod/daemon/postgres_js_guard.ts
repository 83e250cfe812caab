/**
 * A guard for two known postgres.js 3.4 faults, each of which would end the
 * whole process from inside the library:
 *
 * - when the server closes a connection while a small write is queued for
 *   the next tick, postgres.js calls `socket.write` on the already-cleared
 *   socket and throws from a timer (or from a promise);
 * - every new connection first reads the server's array types with a query
 *   nobody awaits: a connection that fails or is ended (`sql.end({ timeout })`
 *   running out) during that query rejects it unhandled.
 *
 * Either way the connection is gone and the queries that were really waiting
 * on it fail on their own, which their callers handle; so these two errors
 * are logged and swallowed, and every other error still ends the process.
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["spock", "daemon"]);

const POSTGRES_JS_CONNECTION = /postgres[\\/]src[\\/]connection\.js/;
/** The FROM clause of postgres.js's own array-type query (connection.js, fetchArrayTypes). */
const TYPE_FETCH =
  /from pg_catalog\.pg_type a\s+left join pg_catalog\.pg_type b on b\.oid = a\.typelem/;

/** Whether `error` is postgres.js writing to a socket it has already dropped. */
export function isClosedSocketWrite(error: unknown): boolean {
  return error instanceof TypeError &&
    error.message === "Cannot read properties of null (reading 'write')" &&
    POSTGRES_JS_CONNECTION.test(error.stack ?? "");
}

/**
 * Whether `error` failed postgres.js's array-type query of a new connection:
 * postgres.js names the query it failed in the error's `query` property.
 */
export function isTypeFetchFailure(error: unknown): boolean {
  const query = (error as { query?: unknown } | undefined)?.query;
  return error instanceof Error && typeof query === "string" && TYPE_FETCH.test(query);
}

/** Installs the guard for this process; returns a function removing it. */
export function guardPostgresJsFaults(): () => void {
  const onError = (event: ErrorEvent) => {
    if (!isClosedSocketWrite(event.error)) return;
    event.preventDefault();
    log.debug("Ignored a write to a closed server connection (postgres.js)");
  };
  const onRejection = (event: PromiseRejectionEvent) => {
    if (isClosedSocketWrite(event.reason)) {
      event.preventDefault();
      log.debug("Ignored a write to a closed server connection (postgres.js, in a promise)");
    } else if (isTypeFetchFailure(event.reason)) {
      event.preventDefault();
      log.debug("A connection ended while postgres.js read its array types: {reason}", {
        reason: (event.reason as Error).message,
      });
    }
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}
