/**
 * Local PostgreSQL servers for the tests, the demo and the benchmarks: which
 * installations this machine has, throwaway clusters on free ports, a TCP
 * proxy in front of one, and waiting on a condition. Importing it starts
 * nothing and reads no environment.
 */
export { Cluster, type ClusterOptions, withCluster } from "./cluster.ts";
export { discoverInstalls, type PgInstall } from "./installs.ts";
export { type PollOptions, pollUntil } from "./poll.ts";
export { freePorts } from "./ports.ts";
export { TcpProxy } from "./tcp_proxy.ts";
