/**
 * The SQL API: subscriptions: create, drop, enable, disable, alter, show, wait.
 */

/** SQL creating this group's functions. */
export const SUBSCRIPTION_SQL = String.raw``;
