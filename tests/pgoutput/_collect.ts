/**
 * Real-server message collection for decoder tests: streams a slot through
 * the transport and decodes each XLogData with the stream decoder, until the
 * caller has what it needs.
 */
import type postgres from "postgres";
import type { Cluster } from "../_harness/mod.ts";
import { resolveConnectOptions } from "../../mod/pg/mod.ts";
import { type PgoutputMessage, PgoutputStreamDecoder } from "../../mod/pgoutput/mod.ts";
import {
  choosePgoutputOptions,
  type PgoutputWanted,
  ReplicationConnection,
} from "../../mod/transport/mod.ts";

/** A decoded message and where the server said it starts. */
export interface Collected {
  walStart: bigint;
  message: PgoutputMessage;
}

/** What a decoder test sets up: a slot created before `act` runs. */
export interface CollectOptions extends Omit<PgoutputWanted, "publications"> {
  publications?: string[];
  twoPhaseSlot?: boolean;
  /** Stop once this returns true for the messages so far. */
  until: (messages: PgoutputMessage[]) => boolean;
}

/** Creates a slot, runs `act`, then streams and decodes until `until` is satisfied. */
export async function collect(
  cluster: Cluster,
  sql: postgres.Sql,
  act: () => Promise<unknown>,
  options: CollectOptions,
): Promise<
  { messages: PgoutputMessage[]; collected: Collected[]; decoder: PgoutputStreamDecoder }
> {
  const conn = await ReplicationConnection.open(resolveConnectOptions(cluster.dsn()));
  const slot = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  try {
    await conn.createSlot(slot, { snapshot: "nothing", twoPhase: options.twoPhaseSlot });
    await act();
    const chosen = choosePgoutputOptions(conn.serverVersionNum, {
      ...options,
      publications: options.publications ?? ["p"],
    });
    const stream = await conn.startReplication(slot, { pluginOptions: chosen.options });
    const decoder = new PgoutputStreamDecoder(chosen.protoVersion);
    const collected: Collected[] = [];
    const messages: PgoutputMessage[] = [];
    const deadline = setTimeout(() => void stream.stop(), 30_000);
    try {
      for await (const batch of stream) {
        for (const item of batch) {
          if (item.type !== "xlogdata") continue;
          const message = decoder.decode(item.data);
          collected.push({ walStart: item.walStart, message });
          messages.push(message);
        }
        if (options.until(messages)) break;
      }
    } finally {
      clearTimeout(deadline);
      await stream.stop();
    }
    if (!options.until(messages)) {
      throw new Error(
        `Stream ended before the expected messages: ${messages.map((m) => m.type).join(",")}`,
      );
    }
    return { messages, collected, decoder };
  } finally {
    await conn.close();
    await sql`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = ${slot}`
      .catch(() => {});
  }
}

const utf8 = new TextDecoder();

/** The text value of column `index` of a tuple (null for NULL, "<unchanged>" for TOAST). */
export function text(tuple: { kind: string; bytes?: Uint8Array }[], index: number): string | null {
  const column = tuple[index];
  if (column.kind === "null") return null;
  if (column.kind === "unchanged") return "<unchanged>";
  return utf8.decode(column.bytes);
}

/** Counts messages of a type. */
export function count(messages: PgoutputMessage[], type: PgoutputMessage["type"]): number {
  return messages.filter((m) => m.type === type).length;
}
