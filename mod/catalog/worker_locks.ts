/**
 * The advisory lock a daemon's worker holds on the subscriber for as long as
 * it applies one subscription: so two daemons never apply the same one, and
 * so `spock install` can see a daemon at work before changing the SQL it
 * calls. Every build since the first uses the same key.
 */

/** 'SPCK' in the high half of the key, the subscription id in the low half. */
const LOCK_CLASS = 0x5350434bn << 32n;

/** The advisory lock key (`int8`, as text) of subscription `subscriptionId`'s worker. */
export function workerLockKey(subscriptionId: number): string {
  return String(LOCK_CLASS | BigInt(subscriptionId));
}

/**
 * The workers applying into this database from other sessions, by the
 * locks they hold: `subscription` and the daemon's backend `pid`.
 */
export const RUNNING_WORKERS_SQL = `
select s.sub_name::text as subscription, l.pid
from pg_catalog.pg_locks l
join spock.subscription s on s.sub_id = l.objid
where l.locktype = 'advisory' and l.granted and l.objsubid = 1
  and l.classid = ${LOCK_CLASS >> 32n}::pg_catalog.oid
  and l.database = (select d.oid from pg_catalog.pg_database d
    where d.datname = pg_catalog.current_database())
  and l.pid <> pg_catalog.pg_backend_pid()
order by 1`;
