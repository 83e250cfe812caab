/**
 * `spock run --metrics-listen ADDR`: an HTTP server beside the daemon with
 * `/metrics` (Prometheus text, see metrics.ts) and `/health`: 200 while every
 * served node is readable and each of its subscriptions is replicating, else
 * 503 with the reasons, for load balancers and orchestrators.
 */
import { getLogger } from "@logtape/logtape";
import type { Daemon, NodeReading } from "./daemon.ts";
import { DaemonMetrics } from "./metrics.ts";

import type { ListenAddress } from "../config/mod.ts";

const log = getLogger(["spock", "daemon"]);

export type { ListenAddress };

/** Why the daemon is not healthy; empty when it is. */
export function healthProblems(readings: NodeReading[]): string[] {
  const problems: string[] = [];
  for (const reading of readings) {
    if (reading.snapshot === undefined) {
      problems.push(`node ${reading.node}: ${reading.error}`);
      continue;
    }
    for (const sub of reading.snapshot.status.subscriptions) {
      if (sub.status === "replicating") continue;
      const error = sub.last_error ? `: ${sub.last_error}` : "";
      problems.push(
        `subscription ${sub.subscription} of node ${reading.snapshot.node} is ${sub.status}${error}`,
      );
    }
  }
  return problems;
}

/**
 * Serves `/metrics` and `/health` for `daemon` on `address` until `signal`
 * aborts; resolves once listening, with the address bound (port 0 picks one).
 */
export async function serveMonitoring(
  daemon: Pick<Daemon, "snapshots">,
  options: ListenAddress & { signal: AbortSignal },
): Promise<{ address: ListenAddress; finished: Promise<void> }> {
  const metrics = new DaemonMetrics(() => daemon.snapshots());
  const listening = Promise.withResolvers<ListenAddress>();
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: ({ hostname, port }) => listening.resolve({ hostname, port }),
    onError: (error) => {
      log.warning("The monitoring server failed a request: {error}", {
        error: error instanceof Error ? error.message : String(error),
      });
      return new Response("Internal error\n", { status: 500 });
    },
  }, async (request) => {
    const path = new URL(request.url).pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Only GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/metrics") {
      const { body, contentType } = await metrics.render();
      return new Response(body, { headers: { "content-type": contentType } });
    }
    if (path === "/health") {
      const problems = healthProblems(await daemon.snapshots());
      return Response.json({ healthy: problems.length === 0, problems }, {
        status: problems.length === 0 ? 200 : 503,
      });
    }
    return new Response("Not found: try /metrics or /health\n", { status: 404 });
  });
  const address = await listening.promise;
  log.info("Serving /metrics and /health on {hostname}:{port}", { ...address });
  return { address, finished: server.finished };
}
