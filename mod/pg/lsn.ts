/**
 * Log sequence numbers: PostgreSQL's 64-bit WAL positions, kept as `bigint`
 * and printed the way the server prints them (`16/B374D848`).
 */

/** A WAL position. `0n` is PostgreSQL's InvalidXLogRecPtr. */
export type Lsn = bigint;

/** The invalid LSN `0/0`, used by the protocol for "not set". */
export const INVALID_LSN: Lsn = 0n;

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses `X/Y` (two hexadecimal halves of at most 8 digits each) into an LSN.
 *
 * @throws {RangeError} when the text is not an LSN.
 */
export function parseLsn(text: string): Lsn {
  const match = LSN_PATTERN.exec(text.trim());
  if (match === null) {
    throw new RangeError(
      `Cannot parse LSN "${text}": expected two hexadecimal numbers like "16/B374D848"`,
    );
  }
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats an LSN as `X/Y` in upper-case hexadecimal, as `pg_lsn` output does. */
export function formatLsn(lsn: Lsn): string {
  const high = Number(lsn >> 32n);
  const low = Number(lsn & 0xffffffffn);
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}
