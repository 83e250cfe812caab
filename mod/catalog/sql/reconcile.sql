-- Brings objects that an older catalog made up to what this one needs. Run by
-- spock install after the API, whenever it installs or re-creates it; every
-- statement is idempotent, so a fresh install runs it as well.
--
-- Catalog version 3 added the tombstone trigger (spock._tombstone_trigger),
-- created when a table joins a set: tables already in sets get it here.
SELECT spock._tombstone_trigger(t.reloid, true)
FROM (SELECT DISTINCT r.set_reloid AS reloid FROM spock.replication_set_table r) t
JOIN pg_catalog.pg_class c ON c.oid = t.reloid
WHERE NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
    WHERE g.tgrelid = t.reloid AND g.tgname = 'spock_tombstone');
