/**
 * Waiting between worker restarts: capped exponential backoff, and a sleep
 * that ends early (resolving, not rejecting) when the daemon is told to stop.
 */

/** The delay before restart number `attempt` (1-based): base·2^(attempt-1), at most `capMs`. */
export function restartDelay(attempt: number, options: { baseMs: number; capMs: number }): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(options.capMs, options.baseMs * 2 ** exponent);
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Waits for `promise` at most `ms`: cleanup on a connection the server has
 * dropped may never settle (a reserved postgres.js session does not
 * reconnect), and a worker must still be able to start over.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([promise.then(() => {}, () => {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for `promise`, or only until `signal` aborts (then the promise is
 * left to settle on its own, its rejection ignored). Rethrows its error.
 */
export async function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
): Promise<T | undefined> {
  if (signal.aborted) {
    promise.catch(() => {});
    return undefined;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  promise.catch(() => {});
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort!);
  }
}
