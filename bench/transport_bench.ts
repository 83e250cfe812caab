/**
 * `deno task bench` (second part): how fast the transport (postgres.js
 * CopyBoth + ReplicationStream) drains a backlog of ~1.06 M row changes,
 * against PostgreSQL's own C client pg_recvlogical on identical slots, in the
 * same run. Tells whether postgres.js bounds throughput or the walsender does.
 */
import { Cluster, discoverInstalls } from "../local_pg/mod.ts";
import { resolveConnectOptions } from "../mod/pg/mod.ts";
import { PgoutputStreamDecoder } from "../mod/pgoutput/mod.ts";
import { choosePgoutputOptions, ReplicationConnection } from "../mod/transport/mod.ts";
import { PUBLICATION, SCHEMA_SQL, SENTINEL_SQL, WORKLOAD_SQL } from "./_workload.ts";

const ROUNDS = 3;
const PG_RECVLOGICAL = "/usr/lib/postgresql/15/bin/pg_recvlogical";

interface Drained {
  ms: number;
  messages: number;
  bytes: number;
}

async function drainWithSpock(
  cluster: Cluster,
  slot: string,
  sentinelXid: number,
  decode: boolean,
): Promise<Drained> {
  const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  try {
    const chosen = choosePgoutputOptions(conn.serverVersionNum, { publications: [PUBLICATION] });
    const decoder = new PgoutputStreamDecoder(chosen.protoVersion);
    const started = performance.now();
    const stream = await conn.startReplication(slot, { pluginOptions: chosen.options });
    let messages = 0;
    let bytes = 0;
    let xid = -1;
    let done = false;
    for await (const batch of stream) {
      for (const message of batch) {
        if (message.type !== "xlogdata") continue;
        messages++;
        bytes += message.data.length;
        if (decode) decoder.decode(message.data);
        const data = message.data;
        if (data[0] === 0x42 /* B */) {
          xid = new DataView(data.buffer, data.byteOffset).getUint32(17);
        }
        if (data[0] === 0x43 /* C */ && xid === sentinelXid) {
          stream.reportProgress(message.walEnd);
          done = true;
        }
      }
      if (done) break;
    }
    const ms = performance.now() - started;
    await stream.stop();
    return { ms, messages, bytes };
  } finally {
    await conn.close();
  }
}

async function drainWithPgRecvlogical(
  cluster: Cluster,
  slot: string,
  endLsn: string,
  protoVersion: number,
): Promise<Drained> {
  const started = performance.now();
  const out = await new Deno.Command(PG_RECVLOGICAL, {
    args: [
      "-d",
      cluster.dsn(),
      "--slot",
      slot,
      "--start",
      `--endpos=${endLsn}`,
      "--no-loop",
      "-o",
      `proto_version=${protoVersion}`,
      "-o",
      `publication_names=${PUBLICATION}`,
      "-f",
      "/dev/null",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - started;
  if (!out.success) {
    throw new Error(`pg_recvlogical failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return { ms, messages: Number.NaN, bytes: Number.NaN };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const [install] = await discoverInstalls(); // the newest major
  const hasRecvlogical = await Deno.stat(PG_RECVLOGICAL).then(() => true, () => false);
  const cluster = await Cluster.start(install, { conf: { shared_buffers: "256MB" } });
  try {
    const sql = cluster.connect();
    await sql.unsafe(SCHEMA_SQL);
    const kinds = ["spock", "spock_decode", ...(hasRecvlogical ? ["recvlogical"] : [])];
    const slots: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of kinds) {
        const slot = `tb_${kind}_${round}`;
        await sql`select pg_create_logical_replication_slot(${slot}, 'pgoutput')`;
        slots.push(slot);
      }
    }
    console.log(`PostgreSQL ${install.version}: generating the backlog (~1.06 M row changes)…`);
    await sql.unsafe(WORKLOAD_SQL);
    const [{ xid }] = await sql.unsafe(SENTINEL_SQL);
    const [{ lsn }] = await sql`select pg_current_wal_lsn()::text as lsn`;
    const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
    const protoVersion =
      choosePgoutputOptions(conn.serverVersionNum, { publications: [PUBLICATION] })
        .protoVersion;
    await conn.close();
    const results = new Map<string, Drained[]>(kinds.map((k) => [k, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of kinds) {
        const slot = `tb_${kind}_${round}`;
        const drained = kind === "recvlogical"
          ? await drainWithPgRecvlogical(cluster, slot, lsn, protoVersion)
          : await drainWithSpock(cluster, slot, Number(xid), kind === "spock_decode");
        results.get(kind)!.push(drained);
        console.log(`  round ${round + 1} ${kind.padEnd(12)} ${drained.ms.toFixed(0)} ms`);
      }
    }
    const reference = results.get("spock")![0];
    console.log(
      `\nBacklog: ${reference.messages.toLocaleString("en")} pgoutput messages, ` +
        `${
          (reference.bytes / 1e6).toFixed(1)
        } MB, drained from the walsender (median of ${ROUNDS})`,
    );
    const labels: Record<string, string> = {
      spock: "spock transport (postgres.js CopyBoth)",
      spock_decode: "spock transport + pgoutput decode",
      recvlogical: "pg_recvlogical (libpq, C) to /dev/null",
    };
    for (const kind of kinds) {
      const ms = median(results.get(kind)!.map((r) => r.ms));
      const rate = reference.messages / (ms / 1000);
      console.log(
        `  ${labels[kind].padEnd(42)} ${(ms / 1000).toFixed(2)} s  ` +
          `${(rate / 1e6).toFixed(2)} M messages/s  ${
            (reference.bytes / 1e6 / (ms / 1000)).toFixed(0)
          } MB/s`,
      );
    }
    if (!hasRecvlogical) {
      console.log(`  (${PG_RECVLOGICAL} not found: install postgresql-15 to compare)`);
    }
  } finally {
    await cluster.stop();
  }
}

await main();
