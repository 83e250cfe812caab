/**
 * The SQL API: replication sets and the publications that serve them.
 */

/** SQL creating this group's functions. */
export const REPSET_SQL = String.raw``;
