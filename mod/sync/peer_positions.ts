/**
 * What a provider's snapshot holds of the changes it applied from its own
 * providers (its peers): for each peer, the peer's LSN up to which the
 * snapshot contains everything the provider received from it. A node that
 * copies its data from the provider and then streams from a peer starts that
 * peer's stream exactly there (ZODAN's slot advance), so nothing is lost or
 * applied twice.
 *
 * Spock pauses the provider's apply workers while the slot is created to read
 * this. Here nothing is paused, and it is read from the provider's WAL: the
 * replication origins' positions read before the snapshot, then a temporary
 * logical slot, made before them, decodes up to the snapshot's consistent
 * point, and each transaction committed before that point with a peer's
 * origin names that peer's commit in its ORIGIN message.
 */
import type postgres from "postgres";
import { PinnedSession } from "../catalog/mod.ts";
import { decodeMessage } from "../pgoutput/mod.ts";
import {
  formatLsn,
  formatPgTimestamp,
  type Lsn,
  parseLsn,
  type PgConnectOptions,
  type PgTimestamp,
  quoteIdent,
} from "../pg/mod.ts";

/** A peer's position in a provider's snapshot. */
export interface PeerPosition {
  /** The peer's node id. */
  nodeId: string;
  /** Every change of the peer committed before this peer LSN is in the snapshot (an end LSN). */
  lsn: Lsn;
  /** The peer's commit time of the last such transaction, when known (ISO text). */
  commitTime: string | undefined;
}

const PEER_ORIGINS_SQL = `
select s.sub_origin::text as node_id, s.sub_slot_name::text as origin,
  coalesce(o.remote_lsn, '0/0')::text as lsn, p.remote_commit_ts::text as commit_time
from spock.subscription s
join spock.local_node l on l.node_id = s.sub_target
left join lateral (select pg_catalog.pg_replication_origin_progress(r.roname, false) as remote_lsn
  from pg_catalog.pg_replication_origin r where r.roname = s.sub_slot_name) o on true
left join spock.progress p on p.node_id = l.node_id and p.remote_node_id = s.sub_origin
where s.sub_origin <> $1::text::oid`;

// 'B' (Begin) and 'O' (Origin): the only messages read.
const PEEK_SQL = `
select data from pg_catalog.pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, null,
  'proto_version', '1', 'publication_names', $3)
where get_byte(data, 0) in (66, 79)`;

/**
 * Started before the snapshot's slot is created, finished once its
 * consistent point is known. Holds one provider session (with its temporary
 * slot) in between.
 */
export class PeerPositionProbe {
  #session: PinnedSession | undefined;
  #slot: string;
  #origins: Map<string, PeerPosition>;

  private constructor(
    session: PinnedSession | undefined,
    slot: string,
    origins: Map<string, PeerPosition>,
  ) {
    this.#session = session;
    this.#slot = slot;
    this.#origins = origins;
  }

  /**
   * Starts reading the positions of the provider's peers other than
   * `subscriberNodeId`; a provider with no such peer needs no slot. The probe
   * has a provider session of its own (`providerOptions`) for its slot.
   */
  static async start(
    provider: postgres.Sql,
    options: {
      providerOptions: PgConnectOptions;
      subscriberNodeId: number | string;
      slotName: string;
    },
  ): Promise<PeerPositionProbe> {
    const peers = await provider.unsafe(PEER_ORIGINS_SQL, [String(options.subscriberNodeId)]);
    if (peers.length === 0) return new PeerPositionProbe(undefined, "", new Map());
    const session = await PinnedSession.open(options.providerOptions, "the provider");
    try {
      const slot = `${options.slotName.slice(0, 50)}_peers`;
      await session.unsafe(
        "select pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput', true)",
        [slot],
      );
      // After the slot: every transaction committed later is decoded by it.
      const origins = new Map<string, PeerPosition>();
      for (
        const row of await session.unsafe(PEER_ORIGINS_SQL, [String(options.subscriberNodeId)])
      ) {
        origins.set(row.origin, {
          nodeId: row.node_id,
          lsn: parseLsn(row.lsn),
          commitTime: row.commit_time ?? undefined,
        });
      }
      return new PeerPositionProbe(session, slot, origins);
    } catch (error) {
      await session.end();
      throw error;
    }
  }

  /**
   * The peers' positions in the snapshot whose consistent point is
   * `consistentPoint`, decoding the provider's transactions through the
   * publications `publications`. Ends the probe's session.
   */
  async finish(consistentPoint: Lsn, publications: string[]): Promise<PeerPosition[]> {
    const session = this.#session;
    if (session === undefined) return [];
    try {
      const rows = await session.unsafe(PEEK_SQL, [
        this.#slot,
        formatLsn(consistentPoint),
        publications.map(quoteIdent).join(","),
      ]);
      const context = { protoVersion: 1, inStream: false };
      let begin: { finalLsn: Lsn; commitTime: PgTimestamp } | undefined;
      for (const row of rows) {
        const message = decodeMessage(row.data, context);
        if (message.type === "begin") begin = message;
        if (message.type !== "origin" || begin === undefined) continue;
        // The slot decodes past the point: only commits before it are in the snapshot.
        const peer = this.#origins.get(message.originName);
        if (
          peer !== undefined && begin.finalLsn < consistentPoint && message.originLsn > peer.lsn
        ) {
          peer.lsn = message.originLsn;
          peer.commitTime = formatPgTimestamp(begin.commitTime);
        }
      }
      await session.unsafe("select pg_catalog.pg_drop_replication_slot($1)", [this.#slot]);
      return [...this.#origins.values()];
    } finally {
      this.#session = undefined;
      await session.end();
    }
  }

  /** Ends the probe without reading (its temporary slot goes with it). */
  async abandon(): Promise<void> {
    const session = this.#session;
    if (session === undefined) return;
    this.#session = undefined;
    await session.unsafe("select pg_catalog.pg_drop_replication_slot($1)", [this.#slot])
      .catch(() => {});
    await session.end();
  }
}

/**
 * Records in the subscriber's `spock.progress` that it holds every change of
 * each peer up to its position: Spock's progress copied from the provider at
 * the snapshot. Only for peers the subscriber knows; never moves a row back.
 */
export async function recordPeerPositions(
  local: postgres.Sql | postgres.TransactionSql,
  positions: PeerPosition[],
): Promise<void> {
  for (const peer of positions) {
    await local.unsafe(
      `insert into spock.progress as p (node_id, remote_node_id, remote_commit_ts, remote_lsn,
         remote_insert_lsn, last_updated_ts, updated_by_decode)
       select l.node_id, n.node_id, coalesce($3::text::timestamptz, now()), $2::text::pg_lsn,
         $2::text::pg_lsn, now(), true
       from spock.local_node l, spock.node n where n.node_id = $1::text::oid
       on conflict (node_id, remote_node_id) do update set
         remote_lsn = greatest(p.remote_lsn, excluded.remote_lsn),
         remote_insert_lsn = greatest(p.remote_insert_lsn, excluded.remote_insert_lsn),
         remote_commit_ts = greatest(p.remote_commit_ts, excluded.remote_commit_ts),
         last_updated_ts = now()`,
      [peer.nodeId, formatLsn(peer.lsn), peer.commitTime ?? null],
    );
  }
}
