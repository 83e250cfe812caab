/**
 * Cluster operations that span nodes: adding a node with zero downtime
 * (ZODAN) and removing one. They connect to every node, change catalogs and
 * slots, and wait on positions; the daemons serving the nodes do the
 * copying and streaming.
 */
export { addNode, type AddNodeOptions, type AddNodeResult } from "./add_node.ts";
export { type NodeDirectory } from "./cluster_nodes.ts";
export { ClusterError } from "./errors.ts";
export { removeNode, type RemoveNodeOptions, type RemoveNodeResult } from "./remove_node.ts";
