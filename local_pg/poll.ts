/**
 * Waiting on a condition with a deadline, the only way tests wait: never a
 * bare sleep standing in for a condition.
 */

/** Options for {@link pollUntil}. */
export interface PollOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Described in the timeout error, e.g. "the slot to become inactive". */
  what?: string;
}

/**
 * Calls `check` until it returns a value other than `undefined`/`false`, and
 * returns that value; throws when `timeoutMs` passes first.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: PollOptions = {},
): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 20, what = "the condition" } = options;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
}
