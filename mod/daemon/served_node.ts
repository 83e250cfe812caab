/**
 * The check a node passes before the daemon serves it: the database is
 * reachable, the catalog is installed at this program's version, and it is a
 * spock node (its name is what the logs call it). A server that is down or
 * starting up is waited for with backoff, and so is a node of the config file
 * not created yet (`spock node add` creates it); anything else cannot work
 * and fails the daemon's start, so `spock run` exits with the reason.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { catalogMismatch, describeMismatch } from "../catalog/mod.ts";
import { maskDsn } from "../pg/mod.ts";
import { restartDelay, sleep } from "./backoff.ts";
import { failureMessage, sqlStateOf } from "./worker_failure.ts";

const log = getLogger(["spock", "daemon"]);

/** A served node that cannot work as configured; the message says what to change. */
export class ServedNodeError extends Error {
  readonly code = "ERR_DAEMON_NODE";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServedNodeError";
  }
}

/** The database has the catalog but no spock node yet. */
class NodeNotCreatedError extends ServedNodeError {}

/** What the daemon learns of a node it serves. */
export interface ServedNodeIdentity {
  /** The local node's name in its catalog. */
  name: string;
  nodeId: number;
}

/**
 * Failures that waiting may cure: the network, a server shutting down or
 * starting up, too many connections. Any other server error (a wrong
 * password, a missing database, missing privileges) will not go away.
 */
export function isUnreachable(error: unknown): boolean {
  const state = sqlStateOf(error);
  if (state !== undefined) return /^(08|53|57)/.test(state);
  if (error instanceof ServedNodeError) return false;
  return true;
}

const BASE_MS = 500;
const CAP_MS = 10_000;
const NODE_WAIT_CAP_MS = 2_000;

/**
 * Checks the node behind `sql` until it answers, waiting with backoff (and
 * a log line per try) while it is unreachable. Returns undefined when
 * `signal` aborts first.
 *
 * @throws {ServedNodeError} when the node cannot work: no catalog, another
 * catalog version, no local node (unless the config names it: then it is
 * waited for), or a server error that is not transient.
 */
export async function waitForServedNode(
  sql: postgres.Sql,
  options: { node: string | undefined; dsn: string; signal: AbortSignal },
): Promise<ServedNodeIdentity | undefined> {
  for (let attempt = 1; !options.signal.aborted; attempt++) {
    try {
      return await checkServedNode(sql, options.dsn);
    } catch (error) {
      if (options.signal.aborted) return undefined;
      if (error instanceof NodeNotCreatedError && options.node !== undefined) {
        if (attempt === 1) {
          log.info("Node {node} is not created yet at {dsn}: waiting for it", {
            node: options.node,
            dsn: maskDsn(options.dsn),
          });
        }
        await sleep(
          restartDelay(attempt, { baseMs: BASE_MS, capMs: NODE_WAIT_CAP_MS }),
          options.signal,
        );
        continue;
      }
      if (!isUnreachable(error)) {
        if (error instanceof ServedNodeError) throw error;
        throw new ServedNodeError(
          `Cannot serve ${options.node === undefined ? "the database" : `node ${options.node}`} ` +
            `at ${maskDsn(options.dsn)}: ${failureMessage(error)}`,
          { cause: error },
        );
      }
      const delay = restartDelay(attempt, { baseMs: BASE_MS, capMs: CAP_MS });
      const properties = {
        node: options.node,
        dsn: maskDsn(options.dsn),
        attempt,
        error: failureMessage(error),
        delay,
      };
      if (options.node === undefined) {
        log.warning(
          "Cannot reach the served database at {dsn} (attempt {attempt}): {error}; trying again in {delay} ms",
          properties,
        );
      } else {
        log.warning(
          "Cannot reach node {node} at {dsn} (attempt {attempt}): {error}; trying again in {delay} ms",
          properties,
        );
      }
      await sleep(delay, options.signal);
    }
  }
  return undefined;
}

async function checkServedNode(sql: postgres.Sql, dsn: string): Promise<ServedNodeIdentity> {
  const where = maskDsn(dsn);
  const [state] = await sql`select current_database()::text as db`;
  const mismatch = await catalogMismatch(sql);
  if (mismatch !== undefined) {
    throw new ServedNodeError(
      `Cannot serve database "${state.db}" at ${where}: ` +
        describeMismatch(mismatch, `spock install --dsn "${where}"`),
    );
  }
  const [node] = await sql`
    select n.node_name::text as name, n.node_id::int8 as id
    from spock.local_node l join spock.node n using (node_id)`;
  if (node === undefined) {
    throw new NodeNotCreatedError(
      `Cannot serve database "${state.db}" at ${where}: it is not a spock node; ` +
        "create one with spock.node_create() or 'spock node create'",
    );
  }
  return { name: node.name, nodeId: Number(node.id) };
}
