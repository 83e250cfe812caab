/**
 * Unit tests of mod/daemon/backoff.ts: the capped exponential restart delay,
 * a sleep that a stop cuts short, and the two bounded waits a worker uses on
 * cleanup that may never settle and on work the daemon is told to abandon.
 */
import assert from "node:assert/strict";
import { restartDelay, settleWithin, sleep, untilAborted } from "../../mod/daemon/backoff.ts";

/** Milliseconds `promise` took to settle, and its value. */
async function timed<T>(promise: Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await promise;
  return { ms: performance.now() - start, value };
}

Deno.test("restartDelay() doubles from the base up to the cap", () => {
  const options = { baseMs: 1_000, capMs: 30_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((attempt) => restartDelay(attempt, options)),
    [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
  );
});

Deno.test("restartDelay() stays finite for any attempt and treats attempts below 1 as the first", () => {
  const options = { baseMs: 500, capMs: 60_000 };
  assert.equal(restartDelay(0, options), 500);
  assert.equal(restartDelay(-3, options), 500);
  assert.equal(restartDelay(1_000_000, options), 60_000);
  assert.equal(restartDelay(Number.MAX_SAFE_INTEGER, { baseMs: 1, capMs: Infinity }), 2 ** 30);
});

Deno.test("sleep() resolves after its delay, at once for no delay or an aborted signal", async () => {
  assert.ok((await timed(sleep(40))).ms >= 30);
  assert.ok((await timed(sleep(0))).ms < 1_000);
  assert.ok((await timed(sleep(-5))).ms < 1_000);
  assert.ok((await timed(sleep(60_000, AbortSignal.abort()))).ms < 1_000);
});

Deno.test("sleep() resolves, not rejects, as soon as its signal aborts", async () => {
  const controller = new AbortController();
  const sleeping = timed(sleep(60_000, controller.signal));
  controller.abort();
  const { ms, value } = await sleeping;
  assert.ok(ms < 1_000, `woke after ${ms} ms`);
  assert.equal(value, undefined);
});

Deno.test("settleWithin() waits for the promise, never rejecting, at most its time", async () => {
  assert.ok((await timed(settleWithin(Promise.resolve(1), 5_000))).ms < 1_000);
  assert.ok((await timed(settleWithin(Promise.reject(new Error("boom")), 5_000))).ms < 1_000);
  const never = new Promise<void>(() => {});
  const { ms } = await timed(settleWithin(never, 50));
  assert.ok(ms >= 40 && ms < 2_000, `gave up after ${ms} ms`);
});

Deno.test("untilAborted() returns the promise's value and rethrows its error", async () => {
  const signal = new AbortController().signal;
  assert.equal(await untilAborted(Promise.resolve("done"), signal), "done");
  await assert.rejects(untilAborted(Promise.reject(new Error("boom")), signal), /boom/);
});

Deno.test("untilAborted() gives up with undefined when the signal aborts, the promise left to settle", async () => {
  const controller = new AbortController();
  let reject: (error: Error) => void = () => {};
  const pending = new Promise<string>((_, no) => (reject = no));
  const waiting = untilAborted(pending, controller.signal);
  controller.abort();
  assert.equal(await waiting, undefined);
  // Its later rejection is ignored (an unhandled one would fail this test).
  reject(new Error("late"));
  assert.equal(
    await untilAborted(Promise.reject(new Error("ignored")), controller.signal),
    undefined,
  );
});
