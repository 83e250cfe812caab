/**
 * The subscriptions cluster operations make, one per provider → subscriber
 * link, named `sub_<provider>_<subscriber>` as ZODAN names them. A link is
 * created disabled with its slot made here (not by the daemon), so the slot's
 * start is known and fixed before anything else happens, and enabled when
 * its turn comes; every step finds what an earlier, interrupted run made.
 */
import { ORIGIN_SQL } from "../catalog/mod.ts";
import { formatLsn, type Lsn, parseLsn } from "../pg/mod.ts";
import { openChannel, saveSubscriptionChannel } from "../sync/mod.ts";
import type { ClusterNode } from "./cluster_nodes.ts";
import { ClusterError } from "./errors.ts";

/** The spock sets a link subscribes to unless the cluster's own links say otherwise. */
export const DEFAULT_SETS = ["default", "default_insert_only", "ddl_sql"];

/** A subscription as the cluster tools see it. */
export interface Link {
  name: string;
  id: string;
  slotName: string;
  enabled: boolean;
  sets: string[];
  /** Its sync row's state letter. */
  syncStatus: string | undefined;
}

/** ZODAN's subscription name for a link. */
export function linkName(provider: string, subscriber: string): string {
  return `sub_${provider}_${subscriber}`;
}

/** The subscription on `subscriber` from `provider`, if any (whatever its name). */
export async function findLink(
  subscriber: ClusterNode,
  provider: { id: string },
): Promise<Link | undefined> {
  const [row] = await subscriber.sql`select s.sub_name::text as name, s.sub_id::text as id,
      s.sub_slot_name::text as slot, s.sub_enabled as enabled,
      coalesce(s.sub_replication_sets, '{}') as sets,
      (select y.sync_status::text from spock.local_sync_status y
       where y.sync_subid = s.sub_id and y.sync_relname is null) as status
    from spock.subscription s
    where s.sub_origin = ${provider.id}::oid and s.sub_target = ${subscriber.id}::oid
    order by s.sub_name limit 1`;
  if (row === undefined) return undefined;
  return {
    name: row.name,
    id: row.id,
    slotName: row.slot,
    enabled: row.enabled,
    sets: row.sets,
    syncStatus: row.status ?? undefined,
  };
}

/**
 * Creates the subscription of `subscriber` to `provider`, disabled and
 * without sync, unless it exists; returns it.
 */
export async function createDisabledLink(
  provider: ClusterNode,
  subscriber: ClusterNode,
  sets: string[],
): Promise<Link> {
  const found = await findLink(subscriber, provider);
  if (found !== undefined) return found;
  await subscriber.sql`select spock._sub_create_local(${linkName(provider.name, subscriber.name)},
    ${provider.dsn}, ${provider.id}::oid, ${provider.name}, ${sets}::text[], false, false,
    '{}'::text[], '0'::interval, false, false, '{}'::text[])`;
  return (await findLink(subscriber, provider))!;
}

/**
 * Creates the subscription of `subscriber` to `provider` that copies the
 * provider's data (and structure, with `structure`), enabled: the
 * subscriber's daemon runs it.
 */
export async function createSyncingLink(
  provider: ClusterNode,
  subscriber: ClusterNode,
  sets: string[],
  structure: boolean,
): Promise<Link> {
  const found = await findLink(subscriber, provider);
  if (found !== undefined) return found;
  await subscriber.sql`select spock._sub_create_local(${linkName(provider.name, subscriber.name)},
    ${provider.dsn}, ${provider.id}::oid, ${provider.name}, ${sets}::text[], ${structure}, true,
    '{}'::text[], '0'::interval, false, true, '{}'::text[])`;
  return (await findLink(subscriber, provider))!;
}

/** The link's slot on its provider, if it exists. */
export async function readSlot(
  provider: ClusterNode,
  link: Link,
): Promise<{ confirmed: Lsn; active: boolean } | undefined> {
  const [slot] = await provider.sql`select confirmed_flush_lsn::text as confirmed, active
    from pg_catalog.pg_replication_slots where slot_name = ${link.slotName}`;
  return slot === undefined
    ? undefined
    : { confirmed: parseLsn(slot.confirmed), active: slot.active };
}

/**
 * Opens the link's channel on the provider and records it on the
 * subscriber, then creates its slot there unless it exists. Returns the
 * slot's start: the provider's changes committed from there on reach the
 * subscriber once the link is enabled.
 */
export async function ensureLinkSlot(
  provider: ClusterNode,
  subscriber: ClusterNode,
  link: Link,
): Promise<{ start: Lsn; created: boolean }> {
  const existing = await readSlot(provider, link);
  if (existing !== undefined) return { start: existing.confirmed, created: false };
  // A slot streams only publications older than it.
  const publications = await openChannel(provider.sql, link.sets);
  await saveSubscriptionChannel(subscriber.sql, Number(link.id), {
    sets: link.sets,
    publications,
    validFrom: 0n,
    previousPublications: [],
  });
  await subscriber.sql.unsafe(ORIGIN_SQL.createIfMissing, [link.slotName]);
  const [slot] = await provider.sql`select lsn::text from
    pg_catalog.pg_create_logical_replication_slot(${link.slotName}, 'pgoutput')`;
  return { start: parseLsn(slot.lsn), created: true };
}

/**
 * Moves the disabled link's slot on the provider, and its origin on the
 * subscriber, to `target`: the provider's changes committed before it are
 * never sent. A slot already there is left as it is.
 *
 * @throws {ClusterError} when the slot is past `target` (changes before
 * its start would be missing) or does not exist.
 */
export async function advanceLink(
  provider: ClusterNode,
  subscriber: ClusterNode,
  link: Link,
  target: Lsn,
): Promise<"advanced" | "already"> {
  const slot = await readSlot(provider, link);
  if (slot === undefined) {
    throw new ClusterError(`Slot ${link.slotName} of ${link.name} is missing on ${provider.name}`);
  }
  if (slot.confirmed > target) {
    throw new ClusterError(
      `Slot ${link.slotName} on ${provider.name} starts at ${formatLsn(slot.confirmed)}, after ` +
        `${formatLsn(target)}: ${provider.name}'s changes in between would be lost`,
    );
  }
  const moved = slot.confirmed < target;
  if (moved) {
    await provider.sql`select pg_catalog.pg_replication_slot_advance(${link.slotName},
      ${formatLsn(target)}::pg_lsn)`;
  }
  await subscriber.sql.unsafe(ORIGIN_SQL.createIfMissing, [link.slotName]);
  await subscriber.sql.unsafe(ORIGIN_SQL.advance, [link.slotName, formatLsn(target)]);
  return moved ? "advanced" : "already";
}

/** Enables the link (its worker starts in the subscriber's daemon). */
export async function enableLink(subscriber: ClusterNode, link: Link): Promise<void> {
  if (link.enabled) return;
  await subscriber.sql`select spock.sub_enable(${link.name}, true)`;
  link.enabled = true;
}
