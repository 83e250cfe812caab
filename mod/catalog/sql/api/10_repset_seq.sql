-- Sequences in replication sets (repset_add_seq, repset_add_all_seqs,
-- repset_remove_seq) with their `spock.sequence_state` rows and 'S' queue
-- messages; pushing them ahead to subscribers (sync_seq, sync_sequences);
-- and the `sql_drop` event trigger that takes dropped tables, sequences and
-- columns out of sets, as Spock does through `spock.depend`.

-- A sequence's last_value as stored (Spock's sequence_get_last_value).
CREATE OR REPLACE FUNCTION spock._sequence_last_value(seq regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  value bigint;
BEGIN
  EXECUTE format('SELECT last_value FROM %s', seq) INTO value;
  RETURN value;
END
$fn$;

-- Drops the sequence_state row of a sequence no local set holds any more.
CREATE OR REPLACE FUNCTION spock._sequence_state_forget(seq oid) RETURNS void
LANGUAGE sql VOLATILE AS $fn$
  DELETE FROM spock.sequence_state st
  WHERE st.seqoid = seq AND NOT EXISTS (
    SELECT 1 FROM spock.replication_set_seq r WHERE r.set_seqoid::oid = seq)
$fn$;

-- Queues an 'S' message (Spock's JSON) that sets seq to value on the
-- subscribers of sets (repset_add_seq, sync_seq and sync_sequences).
CREATE OR REPLACE FUNCTION spock._queue_sequence_value(seq regclass, value bigint, sets text[])
RETURNS void LANGUAGE sql VOLATILE AS $fn$
  SELECT spock._queue_command(current_user, sets, 'S',
    format('{"schema_name": %s,"sequence_name": %s,"last_value": "%s"}',
      to_json(n.nspname::text), to_json(c.relname::text), value)::json)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = seq
$fn$;

-- The push of sync_seq and sync_sequences: buffers seq at current_value +
-- cache (at most its MAXVALUE, so a sequence near its end cannot overflow)
-- in sequence_state, with cache as its cache_size, and queues that value for
-- the sequence's sets on this node. Returns the buffered value.
CREATE OR REPLACE FUNCTION spock._sequence_push(seq regclass, current_value bigint, cache integer)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  buffered bigint;
BEGIN
  SELECT least(current_value::numeric + cache, s.seqmax)::bigint INTO buffered
  FROM pg_catalog.pg_sequence s WHERE s.seqrelid = seq;
  UPDATE spock.sequence_state SET cache_size = cache, last_value = buffered WHERE seqoid = seq;
  PERFORM spock._queue_sequence_value(seq, buffered, ARRAY(
    SELECT r.set_name::text FROM spock.replication_set_seq m
    JOIN spock.replication_set r ON r.set_id = m.set_id
    JOIN spock.local_node l ON l.node_id = r.set_nodeid
    WHERE m.set_seqoid = seq ORDER BY r.set_name));
  RETURN buffered;
END
$fn$;

CREATE OR REPLACE FUNCTION spock._repset_add_sequence(target spock.replication_set, seq regclass,
    synchronize_data boolean)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  SELECT c.* INTO rel FROM pg_catalog.pg_class c WHERE c.oid = seq;
  IF rel.relkind <> 'S' THEN
    RAISE EXCEPTION '"%" is not a sequence', rel.relname USING ERRCODE = 'wrong_object_type';
  END IF;
  IF rel.relpersistence <> 'p' THEN
    RAISE EXCEPTION 'UNLOGGED and TEMP sequences cannot be replicated'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- (no ON CONFLICT: PostgreSQL refuses it on user catalog tables)
  INSERT INTO spock.sequence_state (seqoid, cache_size, last_value)
  SELECT seq, 1000, spock._sequence_last_value(seq)
  WHERE NOT EXISTS (SELECT 1 FROM spock.sequence_state st WHERE st.seqoid = seq);
  INSERT INTO spock.replication_set_seq (set_id, set_seqoid) VALUES (target.set_id, seq);
  IF synchronize_data THEN
    PERFORM spock._queue_sequence_value(seq, spock._sequence_last_value(seq),
      ARRAY[target.set_name::text]);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_add_seq(set_name name, relation regclass,
    synchronize_data boolean DEFAULT false)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM spock._repset_add_sequence(spock._repset_get(set_name), relation, synchronize_data);
  PERFORM spock._notify('replication_set', set_name, 'add_seq');
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_add_all_seqs(set_name name, schema_names text[],
    synchronize_data boolean DEFAULT false)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.replication_set;
  schema_name text;
  nsp oid;
  seq regclass;
BEGIN
  target := spock._repset_get(set_name);
  FOREACH schema_name IN ARRAY schema_names LOOP
    nsp := spock._schema_oid(schema_name);
    FOR seq IN
      SELECT c.oid FROM pg_catalog.pg_class c
      WHERE c.relnamespace = nsp AND c.relkind = 'S' AND c.relpersistence = 'p'
        AND NOT EXISTS (SELECT 1 FROM spock.replication_set_seq r
                        WHERE r.set_id = target.set_id AND r.set_seqoid = c.oid)
      ORDER BY c.relname
    LOOP
      PERFORM spock._repset_add_sequence(target, seq, synchronize_data);
    END LOOP;
  END LOOP;
  PERFORM spock._notify('replication_set', set_name, 'add_seq');
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_remove_seq(set_name name, relation regclass)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.replication_set;
BEGIN
  target := spock._repset_get(set_name);
  DELETE FROM spock.replication_set_seq r WHERE r.set_id = target.set_id AND r.set_seqoid = relation;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'replication set sequence mapping %:% not found', target.set_id, relation::oid
      USING ERRCODE = 'internal_error';
  END IF;
  PERFORM spock._sequence_state_forget(relation);
  PERFORM spock._notify('replication_set', set_name, 'remove_seq');
  RETURN true;
END
$fn$;

-- Run on the provider: buffers last_value + cache_size (at most MAXVALUE) in
-- sequence_state and queues an 'S' message for the sequence's sets.
CREATE OR REPLACE FUNCTION spock.sync_seq(relation regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  rel record;
  state record;
BEGIN
  PERFORM spock._local_node_id(); -- raises on a database that is not a node
  PERFORM 1 FROM spock.local_node FOR UPDATE;
  SELECT c.relkind, c.relname INTO rel FROM pg_catalog.pg_class c WHERE c.oid = relation;
  IF rel.relkind IS DISTINCT FROM 'S' THEN
    RAISE EXCEPTION '"%" is not a sequence', rel.relname USING ERRCODE = 'wrong_object_type';
  END IF;
  SELECT * INTO state FROM spock.sequence_state WHERE seqoid = relation FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION '"%" is not a replicated sequence', rel.relname
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  PERFORM spock._sequence_push(relation, spock._sequence_last_value(relation), state.cache_size);
  RETURN true;
END
$fn$;

-- pglogical's synchronize_sequences(), which Spock 5.0 has but never calls;
-- not in Spock's API (the daemon calls it every sequence_sync_interval).
-- Pushes every ascending sequence of a local set that has come within half
-- its cache_size of the value pushed last (sequence_state.last_value), or
-- passed it, to last_value + cache_size; the cache doubles (up to 1,000,000)
-- when the sequence ran a whole cache past that value, as in pglogical.
-- Callers take turns on the rows. Returns how many it queued (0 on a
-- database that is not a node).
CREATE OR REPLACE FUNCTION spock.sync_sequences() RETURNS integer
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  state record;
  current_value bigint;
  cache integer;
  queued integer := 0;
BEGIN
  FOR state IN
    SELECT st.seqoid::regclass AS seq, st.cache_size, st.last_value, s.seqmax
    FROM spock.sequence_state st
    JOIN pg_catalog.pg_sequence s ON s.seqrelid = st.seqoid
    WHERE s.seqincrement > 0 AND EXISTS (
      SELECT 1 FROM spock.replication_set_seq m
      JOIN spock.replication_set r ON r.set_id = m.set_id
      JOIN spock.local_node l ON l.node_id = r.set_nodeid
      WHERE m.set_seqoid::oid = st.seqoid)
    ORDER BY st.seqoid
    FOR UPDATE OF st
  LOOP
    current_value := spock._sequence_last_value(state.seq);
    -- Still half a cache ahead, or already at MAXVALUE: nothing new to promise.
    CONTINUE WHEN state.last_value::numeric - current_value >= state.cache_size / 2
      OR state.last_value >= state.seqmax;
    cache := state.cache_size;
    IF current_value::numeric >= state.last_value::numeric + cache THEN
      cache := least(cache::bigint * 2, 1000000);
    END IF;
    PERFORM spock._sequence_push(state.seq, current_value, cache);
    queued := queued + 1;
  END LOOP;
  RETURN queued;
END
$fn$;

-- sql_drop: a dropped table or sequence leaves every set (PostgreSQL already
-- took it out of the publications); a dropped column leaves the column lists.
-- SECURITY DEFINER so that roles without rights on the spock schema can still
-- drop their own tables; it only touches rows of objects being dropped.
CREATE OR REPLACE FUNCTION spock._drop_cleanup() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  dropped record;
  member record;
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() o WHERE o.is_temporary) THEN
    -- For automatic DDL replication, at this command's ddl_command_end.
    PERFORM pg_catalog.set_config('spock._dropped_temp', 'on', true);
  END IF;
  IF to_regclass('spock.replication_set_table') IS NULL THEN
    RETURN;
  END IF;
  FOR dropped IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects()
                 WHERE classid = 'pg_catalog.pg_class'::regclass LOOP
    IF dropped.objsubid = 0 THEN
      DELETE FROM spock.replication_set_table r WHERE r.set_reloid::oid = dropped.objid;
      DELETE FROM spock.replication_set_seq r WHERE r.set_seqoid::oid = dropped.objid;
      DELETE FROM spock.sequence_state st WHERE st.seqoid = dropped.objid;
    ELSE
      -- A row filter that used the column would break: refuse, as Spock's
      -- dependency does under RESTRICT (re-validating the stored filters).
      FOR member IN SELECT s.set_name, r.set_row_filter FROM spock.replication_set_table r
                    JOIN spock.replication_set s ON s.set_id = r.set_id
                    WHERE r.set_reloid::oid = dropped.objid AND r.set_row_filter IS NOT NULL LOOP
        BEGIN
          PERFORM spock._row_filter_parse(dropped.objid::regclass, member.set_row_filter);
        EXCEPTION WHEN undefined_column THEN
          RAISE EXCEPTION 'cannot drop column % of table % because the row_filter of replication set % uses it',
            dropped.address_names[3], dropped.objid::regclass, member.set_name
            USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Remove the table from the replication set first (spock.repset_remove_table).';
        END;
      END LOOP;
      -- The column leaves the sets' lists; the publications follow (DROP COLUMN …
      -- CASCADE may have taken the table out of them), and the subscribers.
      UPDATE spock.replication_set_table r
      SET set_att_list = array_remove(r.set_att_list, dropped.address_names[3])
      WHERE r.set_reloid::oid = dropped.objid AND dropped.address_names[3] = ANY (r.set_att_list);
      IF FOUND THEN
        PERFORM spock._pubs_refresh(dropped.objid::regclass);
        PERFORM spock._announce_row_filters(dropped.objid::regclass, false);
      END IF;
    END IF;
  END LOOP;
END
$fn$;

DO $do$
BEGIN
  DROP EVENT TRIGGER IF EXISTS spock_drop_cleanup;
  CREATE EVENT TRIGGER spock_drop_cleanup ON sql_drop EXECUTE FUNCTION spock._drop_cleanup();
  -- Also for a DROP that a queue brought to an apply session (replica role).
  ALTER EVENT TRIGGER spock_drop_cleanup ENABLE ALWAYS;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'cannot create event trigger spock_drop_cleanup: only a superuser can; dropped tables stay in replication sets until removed with spock.repset_remove_table()';
END
$do$;
