-- Conflict-free ids for tables every node writes (not in Spock, whose docs
-- point to pgEdge's snowflake extension): spock.snowflake_nextval(seq), a
-- snowflake-style bigint made from the clock, this node's number and a
-- counter, in plain SQL. Replicated sequences (10_repset_seq.sql) are for
-- sequences one node writes.

-- This node's number for snowflake ids: the placeholder setting
-- spock.snowflake_node, which users set per node (ALTER DATABASE … SET or
-- ALTER SYSTEM SET), 0 to 1023.
CREATE OR REPLACE FUNCTION spock._snowflake_node() RETURNS integer
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  setting text := current_setting('spock.snowflake_node', true);
BEGIN
  IF coalesce(setting, '') = '' THEN
    RAISE EXCEPTION 'spock.snowflake_node is not set'
      USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'Give every node its own number from 0 to 1023: ALTER DATABASE <db> SET '
        'spock.snowflake_node = <n> (new sessions see it), or ALTER SYSTEM SET '
        'spock.snowflake_node = <n> and SELECT pg_reload_conf().';
  END IF;
  IF setting !~ '^[0-9]{1,4}$' OR setting::integer > 1023 THEN
    RAISE EXCEPTION 'spock.snowflake_node must be a number from 0 to 1023, got "%"', setting
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN setting::integer;
END
$fn$;

-- The next snowflake id of seq on this node: bits 22-62 the milliseconds
-- since 2023-01-01 UTC, bits 12-21 spock.snowflake_node, bits 0-11 a counter.
-- Ids of different nodes never collide (each node needs its own number), so
-- a bigint key every node inserts into needs no conflict resolution; they
-- sort by time across nodes, up to the nodes' clock skew.
--
-- seq holds the last (millisecond << 12 | counter) this node gave out: each
-- call takes the next value, or the clock's if that is later, under an
-- advisory lock on seq (held for the call, not the transaction). So every
-- id is greater than all ids seq gave out before on this node, even when the
-- clock steps back: the ids then run ahead of the clock (as they do past
-- 4,096 ids in one millisecond), one millisecond per 4,096 ids, until it
-- catches up. seq must be INCREMENT 1, CACHE 1 and reach 2^53 (a bigint
-- sequence), be used only through this function, and stay out of
-- replication sets: it is this node's own.
--
-- For an existing int4 key, or to keep plain sequences, give each node its
-- own arithmetic progression instead: node k of n runs ALTER SEQUENCE …
-- INCREMENT BY n START WITH k (RESTART past the ids in use), and the
-- sequence stays out of replication sets.
CREATE OR REPLACE FUNCTION spock.snowflake_nextval(seq regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  node bigint := spock._snowflake_node();
  lock_class bigint := x'534e4f57'::bigint; -- 'SNOW'
  lock_key bigint := (lock_class << 32) | seq::oid::bigint;
  def record;
  clock_tick bigint;
  tick bigint;
BEGIN
  SELECT c.relname, s.seqincrement, s.seqcache, s.seqmax INTO def
  FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
  WHERE c.oid = seq;
  IF def.seqincrement IS NULL THEN
    RAISE EXCEPTION '"%" is not a sequence', def.relname USING ERRCODE = 'wrong_object_type';
  END IF;
  IF def.seqincrement <> 1 OR def.seqcache <> 1 OR def.seqmax < (1::bigint << 53) THEN
    RAISE EXCEPTION 'sequence "%" cannot give snowflake ids: it needs INCREMENT 1, CACHE 1 and a MAXVALUE of at least 2^53',
      def.relname
      USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = format('ALTER SEQUENCE %s AS bigint NO MAXVALUE INCREMENT 1 CACHE 1', seq);
  END IF;
  BEGIN
    PERFORM pg_catalog.pg_advisory_lock(lock_key);
    clock_tick := greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
      - 1672531200000, 0) << 12;
    tick := pg_catalog.nextval(seq);
    IF tick < clock_tick THEN
      tick := pg_catalog.setval(seq, clock_tick);
    END IF;
    PERFORM pg_catalog.pg_advisory_unlock(lock_key);
  EXCEPTION WHEN query_canceled OR others THEN
    -- A cancel or error at any point: release the lock if this session holds it.
    PERFORM pg_catalog.pg_advisory_unlock(lock_key) FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
      AND l.objsubid = 1 AND l.classid = lock_class::oid AND l.objid = seq::oid;
    RAISE;
  END;
  -- (<<, | and & share one precedence, hence the parentheses)
  RETURN ((tick >> 12) << 22) | (node << 12) | (tick & 4095);
END
$fn$;
