/**
 * The SQL API: version, slot names, commit timestamps, sync events, DDL queue, sequences.
 */

/** SQL creating this group's functions. */
export const INFO_SQL = String.raw``;
