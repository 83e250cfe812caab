/**
 * The daemon: one supervisor per served node, one worker per enabled
 * subscription, wiring transport → pgoutput → apply and the initial sync;
 * restarts with backoff and stops cleanly on one AbortSignal.
 *
 * @example
 * ```ts ignore
 * import { startDaemon } from "./mod.ts";
 * import { DEFAULT_ENGINE } from "../config/mod.ts";
 *
 * const controller = new AbortController();
 * const daemon = startDaemon({
 *   nodes: [{ name: "n1", dsn: "host=/tmp dbname=app" }],
 *   engine: DEFAULT_ENGINE,
 *   env: Deno.env.toObject(),
 *   signal: controller.signal,
 * });
 * Deno.addSignalListener("SIGTERM", () => controller.abort());
 * await daemon.done;
 * ```
 *
 * @module
 */
export { type Daemon, type DaemonOptions, type NodeReading, startDaemon } from "./daemon.ts";
export { healthProblems, type ListenAddress, serveMonitoring } from "./monitoring_server.ts";
export { restartDelay } from "./backoff.ts";
export {
  guardPostgresJsFaults,
  isClosedSocketWrite,
  isTypeFetchFailure,
} from "./postgres_js_guard.ts";
export type { NodeSnapshot, ServedNode, WorkerSummary } from "./node_supervisor.ts";
export { ServedNodeError } from "./served_node.ts";
export { type NodeStatus, readNodeStatus, type StatusRow } from "./node_status.ts";
export {
  readSubscriptions,
  subscriptionFingerprint,
  type SubscriptionRecord,
} from "./subscription_record.ts";
