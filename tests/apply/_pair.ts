/**
 * Apply test fixture: a provider database and a subscriber database in one
 * cluster (the slot decodes only the provider's database), the catalog and a
 * spock node on the subscriber, and a small apply loop — transport → stream
 * decoder → TransactionApplier, feedback from FlushTracker — the way the
 * daemon will wire it.
 */
import type postgres from "postgres";
import { type Cluster, pollUntil } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import { type Lsn, resolveConnectOptions } from "../../mod/pg/mod.ts";
import { type PgoutputMessage, PgoutputStreamDecoder } from "../../mod/pgoutput/mod.ts";
import { choosePgoutputOptions, ReplicationConnection } from "../../mod/transport/mod.ts";
import {
  ApplyError,
  FlushTracker,
  TransactionApplier,
  type TransactionApplierOptions,
} from "../../mod/apply/mod.ts";

/** The provider node's id as the subscriber knows it (no row needed in spock.node). */
export const REMOTE_NODE_ID = 4242;

/** Two databases of one cluster wired for apply tests. */
export interface Pair {
  cluster: Cluster;
  provider: postgres.Sql;
  subscriber: postgres.Sql;
  slot: string;
  localNodeId: number;
}

/** Creates database `sub`, runs `ddl` on both sides, publishes everything, installs the catalog, creates the slot. */
export async function setupPair(
  cluster: Cluster,
  ddl: string,
  subscriberDdl = ddl,
): Promise<Pair> {
  const provider = cluster.connect({ max: 2 });
  await provider.unsafe("create database sub");
  const subscriber = cluster.connect({ database: "sub", max: 4 });
  await provider.unsafe(ddl);
  await subscriber.unsafe(subscriberDdl);
  await provider.unsafe("create publication p for all tables");
  await installCatalog(subscriber, { programVersion: "test" });
  const [node] = await subscriber`select spock.node_create('sub', ${
    cluster.dsn({ dbname: "sub" })
  })::int8 as id`;
  const slot = `sub_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  await conn.createSlot(slot, { snapshot: "nothing" });
  await conn.close();
  // The initial sync creates the subscription's origin; the applier only binds it.
  await subscriber`select pg_replication_origin_create(${slot})`;
  return { cluster, provider, subscriber, slot, localNodeId: Number(node.id) };
}

const STATUS_INTERVAL_MS = 100;

/** What one run of the apply loop saw. */
export interface RunResult {
  startLsn: Lsn;
  commits: number;
  messages: PgoutputMessage[];
  /** The error that ended the run, when it did not end by `until`. */
  error?: unknown;
  /** Milliseconds from the first Begin to the last Commit applied. */
  applyMs: number;
  /** Transactions applied again with conflict handling (TransactionApplier.carefulReplays). */
  carefulReplays: number;
}

/** Options for {@link runApply}. */
export interface RunOptions {
  /** Stop (cleanly) once this is true; checked after each batch. */
  until: () => Promise<boolean>;
  /** Called after each message is applied; may crash the run. */
  afterMessage?: (message: PgoutputMessage, commits: number) => Promise<void>;
  /** Keep every decoded message in the result. */
  keepMessages?: boolean;
  timeoutMs?: number;
  /** Applier options beyond the pair's. */
  applier?: Pick<TransactionApplierOptions, "exceptions" | "carefulAt" | "commitsInDoubt">;
}

/**
 * One run of the apply loop from the origin's position. Errors end the run
 * and are returned, not thrown, so tests can crash it on purpose.
 */
export async function runApply(pair: Pair, options: RunOptions): Promise<RunResult> {
  const applier = await pollUntil(
    () =>
      TransactionApplier.open(resolveConnectOptions(pair.cluster.dsn({ dbname: "sub" })), {
        originName: pair.slot,
        localNodeId: pair.localNodeId,
        remoteNodeId: REMOTE_NODE_ID,
        ...options.applier,
      }),
    { what: "the replication origin to be free" },
  );
  const tracker = new FlushTracker(pair.subscriber, pair.slot);
  const startLsn = await tracker.resumeLsn();
  const conn = await ReplicationConnection.open(resolveConnectOptions(pair.cluster.dsn()));
  const result: RunResult = { startLsn, commits: 0, messages: [], applyMs: 0, carefulReplays: 0 };
  let crashed = false;
  try {
    const chosen = choosePgoutputOptions(conn.serverVersionNum, { publications: ["p"] });
    const stream = await pollUntil(
      () =>
        conn.startReplication(pair.slot, {
          startLsn,
          pluginOptions: chosen.options,
          statusIntervalMs: STATUS_INTERVAL_MS,
        }).catch(() => undefined),
      { what: "the slot to be free" },
    );
    const decoder = new PgoutputStreamDecoder(chosen.protoVersion);
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    let firstBegin = 0;
    let lastStatus = 0;
    let committed = false;
    try {
      for await (const batch of stream) {
        for (const item of batch) {
          if (item.type === "keepalive") {
            if (!applier.inTransaction) {
              await applier.drain();
              tracker.noteIdleKeepalive(item.walEnd);
            }
            continue;
          }
          const message = decoder.decode(item.data);
          if (options.keepMessages) result.messages.push(message);
          if (message.type === "begin" && firstBegin === 0) firstBegin = performance.now();
          applier.noteWalEnd(item.walEnd);
          await applier.applyMessage(message);
          if (message.type === "commit") {
            result.commits++;
            committed = true;
            result.applyMs = performance.now() - firstBegin;
          }
          await options.afterMessage?.(message, result.commits);
        }
        // Feedback on the status interval, as the daemon will do it.
        const tick = performance.now() - lastStatus >= STATUS_INTERVAL_MS;
        if (tick) {
          stream.reportProgress(await tracker.confirmableLsn());
          lastStatus = performance.now();
        }
        if ((tick || committed) && await options.until()) break;
        committed = false;
        if (performance.now() > deadline) throw new Error("Apply loop timed out");
      }
    } catch (error) {
      result.error = error;
      // An ApplyError leaves the session usable (rolled back); anything else is a crash.
      crashed = !(error instanceof ApplyError);
    } finally {
      result.carefulReplays = applier.carefulReplays;
      if (!crashed) {
        stream.reportProgress(await tracker.confirmableLsn());
        await stream.stop();
      }
    }
  } finally {
    await conn.close().catch(() => {});
    if (!crashed) await applier.close();
  }
  return result;
}

/** md5 of a table's rows in id order (the equality check between the sides). */
export async function tableDigest(sql: postgres.Sql, table: string): Promise<string | null> {
  const [row] = await sql.unsafe(
    `select md5(string_agg(t::text, ',' order by t::text)) as digest from ${table} t`,
  );
  return row.digest;
}

/** Terminates the apply session(s) and the walsender of the slot: a crash, no clean stop. */
export async function crash(pair: Pair): Promise<void> {
  await pair.provider.unsafe(
    `select pg_terminate_backend(pid) from pg_stat_activity
     where datname = 'sub' and pid <> pg_backend_pid()`,
  );
  await pair.provider.unsafe(
    "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1",
    [pair.slot],
  );
}
