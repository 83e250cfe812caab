/**
 * PostgreSQL timestamps as the replication protocol carries them: microseconds
 * since 2000-01-01 00:00:00 UTC in a `bigint`. They are never rounded through
 * `Date`; only printing converts them, keeping all six fractional digits.
 */

/** Microseconds since the PostgreSQL epoch (2000-01-01 UTC). */
export type PgTimestamp = bigint;

/** Microseconds between the Unix epoch and the PostgreSQL epoch. */
export const PG_EPOCH_UNIX_MICROS = 946_684_800_000_000n;

/** The current time as a PostgreSQL timestamp, for standby status messages. */
export function pgTimestampNow(): PgTimestamp {
  const unixMicros = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  return unixMicros - PG_EPOCH_UNIX_MICROS;
}

/** Converts Unix epoch microseconds to a PostgreSQL timestamp. */
export function pgTimestampFromUnixMicros(unixMicros: bigint): PgTimestamp {
  return unixMicros - PG_EPOCH_UNIX_MICROS;
}

/** The last whole second formatted, as commits of one second follow each other. */
let formattedSecond = { seconds: Number.NaN, text: "" };

/**
 * Formats a timestamp as ISO 8601 in UTC with exactly six fractional digits,
 * e.g. `2026-11-26T07:04:14.123456Z`.
 */
export function formatPgTimestamp(ts: PgTimestamp): string {
  // Microseconds since 1970 are exact in a double until the year 2255.
  const unixMicros = Number(ts + PG_EPOCH_UNIX_MICROS);
  const seconds = Math.floor(unixMicros / 1_000_000);
  const micros = unixMicros - seconds * 1_000_000;
  if (formattedSecond.seconds !== seconds) {
    // toISOString ends in ".000Z".
    formattedSecond = { seconds, text: new Date(seconds * 1000).toISOString().slice(0, -5) };
  }
  return `${formattedSecond.text}.${String(micros).padStart(6, "0")}Z`;
}

/** Milliseconds between two timestamps, as a float keeping microseconds. */
export function pgTimestampDiffMillis(later: PgTimestamp, earlier: PgTimestamp): number {
  return Number(later - earlier) / 1000;
}
