/**
 * The publications a subscription streams: its channel on the provider (one
 * publication per subscribed set, with Spock's column lists for that list of
 * sets; see the catalog's channel.ts), recorded in the subscriber's
 * `spock._sub_channel` with the provider LSN from which it may be streamed.
 *
 * A slot can stream only publications older than the changes it decodes. A
 * new subscription opens its channel before creating its slot; one whose
 * sets changed (or one synchronized by an older spock, which streamed the
 * sets' own publications) opens the new channel, keeps streaming the old
 * publications, and switches once it has applied past the point where no
 * provider transaction older than the channel is left (`valid_from`).
 */
import type postgres from "postgres";
import { formatLsn, type Lsn, parseLsn } from "../pg/mod.ts";

type Sql = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

/** A subscription's channel as the subscriber records it. */
export interface SubscriptionChannel {
  sets: string[];
  publications: string[];
  /** From this provider LSN on, `publications`; before it, `previousPublications`. */
  validFrom: Lsn;
  previousPublications: string[];
}

/** Opens (or finds) the provider's channel for `sets`; its publication names. */
export async function openChannel(provider: Sql, sets: string[]): Promise<string[]> {
  const rows = await provider.unsafe(
    "select p::text as pubname from spock.channel_publications($1::text[]) as p",
    [sets],
  );
  if (rows.length === 0) {
    throw new Error(
      `Cannot stream: none of the replication sets ${JSON.stringify(sets)} exists on the provider`,
    );
  }
  return rows.map((row) => row.pubname);
}

/**
 * The provider LSN after which every transaction began after now: waits
 * (polling) until the transactions running now have ended.
 */
export async function quietPoint(provider: Sql, signal?: AbortSignal): Promise<Lsn> {
  const [start] = await provider.unsafe(
    "select pg_snapshot_xmax(pg_current_snapshot())::text as xmax",
  );
  for (;;) {
    signal?.throwIfAborted();
    const [row] = await provider.unsafe(
      `select pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8 as quiet,
         pg_current_wal_lsn()::text as lsn`,
      [start.xmax],
    );
    if (row.quiet) return parseLsn(row.lsn);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The channel recorded for a subscription, if any. */
export async function readSubscriptionChannel(
  local: Sql,
  subscriptionId: number,
): Promise<SubscriptionChannel | undefined> {
  const [row] = await local.unsafe(
    `select sets, publications::text[] as publications, valid_from::text as valid_from,
       previous_publications::text[] as previous
     from spock._sub_channel where sub_id = $1::int8::oid`,
    [subscriptionId],
  );
  if (row === undefined) return undefined;
  return {
    sets: row.sets,
    publications: row.publications,
    validFrom: parseLsn(row.valid_from),
    previousPublications: row.previous,
  };
}

/** Records the channel a subscription streams. */
export async function saveSubscriptionChannel(
  local: Sql,
  subscriptionId: number,
  channel: SubscriptionChannel,
): Promise<void> {
  await local.unsafe(
    `insert into spock._sub_channel (sub_id, sets, publications, valid_from,
       previous_publications)
     values ($1::int8::oid, $2::text[], $3::text[]::name[], $4::text::pg_lsn, $5::text[]::name[])
     on conflict (sub_id) do update set sets = excluded.sets,
       publications = excluded.publications, valid_from = excluded.valid_from,
       previous_publications = excluded.previous_publications`,
    [
      subscriptionId,
      channel.sets,
      channel.publications,
      formatLsn(channel.validFrom),
      channel.previousPublications,
    ],
  );
}
