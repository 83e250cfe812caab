/** Unit tests of the protocol timestamp printer: every microsecond survives. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatPgTimestamp, PG_EPOCH_UNIX_MICROS } from "../../mod/pg/timestamp.ts";

/** Reads the printed form back into microseconds since the PostgreSQL epoch. */
function readBack(text: string): bigint {
  const match = /^(.*)\.(\d{6})Z$/.exec(text);
  assert.ok(match, `six fractional digits in ${text}`);
  const unixSeconds = BigInt(Date.parse(`${match[1]}Z`) / 1000);
  return unixSeconds * 1_000_000n + BigInt(match[2]) - PG_EPOCH_UNIX_MICROS;
}

Deno.test("formatPgTimestamp prints known instants", () => {
  assert.equal(formatPgTimestamp(0n), "2000-01-01T00:00:00.000000Z");
  assert.equal(formatPgTimestamp(-1n), "1999-12-31T23:59:59.999999Z");
  assert.equal(formatPgTimestamp(849_596_654_123_456n), "2026-12-03T07:04:14.123456Z");
});

Deno.test("formatPgTimestamp keeps every microsecond, before and after 2000, in any order", () => {
  // 1900 to 2200: the years replication carries.
  const micros = fc.bigInt(-3_155_760_000_000_000n, 6_311_520_000_000_000n);
  fc.assert(fc.property(fc.array(micros, { minLength: 1, maxLength: 8 }), (values) => {
    for (const ts of values) assert.equal(readBack(formatPgTimestamp(ts)), ts);
  }));
  fc.assert(fc.property(micros, fc.integer({ min: 0, max: 999_999 }), (ts, step) => {
    // Two instants within one second, printed one after the other.
    const base = ts - (ts % 1_000_000n);
    assert.equal(readBack(formatPgTimestamp(base + BigInt(step))), base + BigInt(step));
    assert.equal(readBack(formatPgTimestamp(base)), base);
  }));
});
