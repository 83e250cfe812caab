/**
 * Captures the bench's pgoutput stream from a real server: a throwaway
 * cluster, the workload of `_workload.ts` running while the transport
 * streams a slot into a capture file, until the sentinel transaction's
 * Commit arrives. Reading the file back is `_capture_file.ts`'s job.
 */
import { Cluster, discoverInstalls } from "../local_pg/mod.ts";
import { resolveConnectOptions } from "../mod/pg/mod.ts";
import {
  choosePgoutputOptions,
  encodeCaptureFrame,
  encodeCaptureHeader,
  ReplicationConnection,
  type ReplicationStream,
} from "../mod/transport/mod.ts";
import { PUBLICATION, SCHEMA_SQL, SENTINEL_SQL, WORKLOAD_SQL } from "./_workload.ts";

/** What a capture produced and how long it took. */
export interface CaptureSummary {
  serverVersion: string;
  frames: number;
  fileBytes: number;
  transactions: number;
  /** The workload's SQL alone (streaming ran alongside it). */
  workloadMs: number;
}

const SLOT = "bench_slot";
/** Give up when the sentinel's Commit has not arrived by then. */
const DEADLINE_MS = 10 * 60_000;
const BEGIN = 0x42; // 'B'
const COMMIT = 0x43; // 'C'
/** Begin: type byte, final LSN (8), commit time (8), then the xid. */
const BEGIN_XID_OFFSET = 17;

/**
 * Runs the workload on a fresh cluster of PostgreSQL 17 (else the newest
 * server found) and writes its stream to `path`. The file is
 * written beside `path` first and renamed once complete, so an interrupted
 * capture never looks like a finished one.
 */
export async function captureWorkload(path: string): Promise<CaptureSummary> {
  const installs = await discoverInstalls();
  const install = installs.find((candidate) => candidate.major === 17) ?? installs[0];
  const cluster = await Cluster.start(install);
  try {
    const sql = cluster.connect();
    await sql.unsafe(SCHEMA_SQL);
    const [{ server_version: serverVersion }] = await sql`SHOW server_version`;
    const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
    try {
      await conn.createSlot(SLOT, { snapshot: "nothing" });
      const chosen = choosePgoutputOptions(conn.serverVersionNum, { publications: [PUBLICATION] });
      const stream = await conn.startReplication(SLOT, { pluginOptions: chosen.options });
      const partial = `${path}.partial`;
      const file = await Deno.open(partial, { write: true, create: true, truncate: true });
      let streamed: StreamedCounts;
      let workloadMs = 0;
      try {
        await writeAll(
          file,
          encodeCaptureHeader({
            format: "spock-capture",
            version: 1,
            protoVersion: chosen.protoVersion,
            serverVersionNum: conn.serverVersionNum,
            options: chosen.options,
          }),
        );
        const workloadStarted = performance.now();
        const sentinel = (async () => {
          await sql.unsafe(WORKLOAD_SQL);
          const [{ xid }] = await sql.unsafe(SENTINEL_SQL);
          workloadMs = performance.now() - workloadStarted;
          return Number(xid);
        })();
        streamed = await streamUntilSentinel(stream, file, sentinel);
      } catch (error) {
        await Deno.remove(partial).catch(() => {});
        throw error;
      } finally {
        file.close();
        await stream.stop();
      }
      await Deno.rename(partial, path);
      const fileBytes = (await Deno.stat(path)).size;
      return {
        serverVersion: String(serverVersion),
        frames: streamed.frames,
        fileBytes,
        transactions: streamed.transactions,
        workloadMs,
      };
    } finally {
      await conn.close();
    }
  } finally {
    await cluster.stop();
  }
}

interface StreamedCounts {
  frames: number;
  transactions: number;
}

/**
 * Writes every XLogData of `stream` to `file`, one write per received
 * batch, until the Commit of the transaction whose xid `sentinel` resolves
 * to. The xid may become known after that Commit arrived (two sockets race),
 * so the xids of all commits are remembered.
 */
async function streamUntilSentinel(
  stream: ReplicationStream,
  file: Deno.FsFile,
  sentinel: Promise<number>,
): Promise<StreamedCounts> {
  const committed = new Set<number>();
  let sentinelXid: number | undefined;
  let workloadError: unknown;
  sentinel.then(
    (xid) => {
      sentinelXid = xid;
      // The stream may be idle, everything received: end the iteration.
      if (committed.has(xid)) void stream.stop();
    },
    (error) => {
      workloadError = error;
      void stream.stop();
    },
  );
  const deadline = setTimeout(() => void stream.stop(), DEADLINE_MS);
  let frames = 0;
  let currentXid = -1;
  let done = false;
  try {
    for await (const batch of stream) {
      const encoded: Uint8Array[] = [];
      for (const message of batch) {
        if (message.type !== "xlogdata") continue;
        encoded.push(encodeCaptureFrame(message));
        const data = message.data;
        if (data[0] === BEGIN) {
          currentXid = new DataView(data.buffer, data.byteOffset).getUint32(BEGIN_XID_OFFSET);
        } else if (data[0] === COMMIT) {
          committed.add(currentXid);
          if (currentXid === sentinelXid) {
            done = true;
            break;
          }
        }
      }
      frames += encoded.length;
      await writeAll(file, concat(encoded));
      if (done) break;
    }
  } finally {
    clearTimeout(deadline);
  }
  if (workloadError !== undefined) throw workloadError;
  if (sentinelXid === undefined || !committed.has(sentinelXid)) {
    throw new Error(`Cannot capture: the stream ended before the last transaction's commit`);
  }
  return { frames, transactions: committed.size };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
