/**
 * The SQL API: node_create, node_drop, node_add_interface, node_drop_interface, node_info.
 */

/** SQL creating this group's functions. */
export const NODE_SQL = String.raw``;
