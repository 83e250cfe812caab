-- The replicated queue. Every row inserted into spock.queue (replicate_ddl's
-- 'Q', a table sync request 'A', a sequence value 'S') travels to subscribers
-- as a transactional logical message with prefix 'spock_queue' in the same
-- transaction, so each subscriber acts on it at exactly that position in the
-- stream (Spock's output plugin sends the queue table's inserts instead). The
-- apply engine runs what a message asks through the _apply_queued_*
-- functions below, in its own transaction; its session's replica role keeps
-- the trigger from queueing the command again, so a mesh has no loops.

-- AFTER INSERT trigger of spock.queue: the row as the 'spock_queue' message.
CREATE OR REPLACE FUNCTION spock._queue_emit() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_catalog.pg_logical_emit_message(true, 'spock_queue', json_build_object(
    'queued_at', NEW.queued_at, 'role', NEW.role, 'replication_sets', NEW.replication_sets,
    'message_type', NEW.message_type, 'message', NEW.message)::text);
  RETURN NULL;
END
$fn$;

DO $do$
BEGIN
  DROP TRIGGER IF EXISTS spock_queue_emit ON spock.queue;
  CREATE TRIGGER spock_queue_emit AFTER INSERT ON spock.queue
    FOR EACH ROW EXECUTE FUNCTION spock._queue_emit();
END
$do$;

-- Runs a queued 'Q' or 'D' command on a subscriber (replicate_ddl's or
-- automatic DDL's text: SET
-- search_path TO …; the command) as the queued role, each statement alone as
-- on the provider. The session's search_path and role are as before
-- afterwards; a failure rolls them back with the transaction.
CREATE OR REPLACE FUNCTION spock._apply_queued_sql(queued_role text, command text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  saved_path text := current_setting('search_path');
  saved_role text := current_setting('role');
  -- Split first: the role may not use the spock schema.
  statements text[] := ARRAY(SELECT s.statement FROM spock._split_sql(command) AS s);
  one text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = queued_role) THEN
    RAISE EXCEPTION 'role "%" of a queued command does not exist on this node', queued_role
      USING ERRCODE = 'undefined_object';
  END IF;
  IF queued_role <> current_user THEN
    PERFORM pg_catalog.set_config('role', queued_role, true);
  END IF;
  -- Automatic DDL replication does not queue what a queue brought.
  PERFORM pg_catalog.set_config('spock._ddl_queued', 'on', true);
  FOREACH one IN ARRAY statements LOOP
    EXECUTE one;
  END LOOP;
  PERFORM pg_catalog.set_config('spock._ddl_queued', '', true);
  PERFORM pg_catalog.set_config('role', saved_role, true);
  PERFORM pg_catalog.set_config('search_path', saved_path, false);
END
$fn$;

-- Sets a sequence to a queued 'S' value (is_called: the next value follows
-- it), as Spock's handle_sequence does, but only ever forward and within the
-- sequence's bounds here: a value this node may already have handed out is
-- never handed out again. A sequence this node lacks is skipped with a
-- warning, as the initial sync does.
CREATE OR REPLACE FUNCTION spock._apply_queued_sequence(message jsonb)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  seq regclass := pg_catalog.to_regclass(pg_catalog.format('%I.%I',
    message ->> 'schema_name', message ->> 'sequence_name'));
  wanted numeric := (message ->> 'last_value')::numeric;
  bounds record;
  here record;
BEGIN
  IF seq IS NULL THEN
    RAISE WARNING 'sequence %.% of a queued value does not exist on this node: skipped',
      message ->> 'schema_name', message ->> 'sequence_name';
    RETURN;
  END IF;
  SELECT s.seqmin, s.seqmax, s.seqincrement INTO bounds
  FROM pg_catalog.pg_sequence s WHERE s.seqrelid = seq;
  IF NOT FOUND THEN
    RAISE EXCEPTION '"%" is not a sequence', seq USING ERRCODE = 'wrong_object_type';
  END IF;
  EXECUTE pg_catalog.format('SELECT last_value, is_called FROM %s', seq) INTO here;
  IF bounds.seqincrement > 0 THEN
    wanted := least(wanted, bounds.seqmax);
    IF wanted < here.last_value OR (here.is_called AND wanted = here.last_value) THEN
      RETURN;
    END IF;
  ELSE
    wanted := greatest(wanted, bounds.seqmin);
    IF wanted > here.last_value OR (here.is_called AND wanted = here.last_value) THEN
      RETURN;
    END IF;
  END IF;
  PERFORM pg_catalog.setval(seq, wanted::int8, true);
  -- Not this node's own use: its own pushes of the sequence (sync_sequences)
  -- count from a cache beyond, so two nodes that both replicate a sequence do
  -- not push each other ever further.
  UPDATE spock.sequence_state st
  SET last_value = greatest(st.last_value::numeric, least(wanted + st.cache_size, bounds.seqmax))
  WHERE st.seqoid = seq;
END
$fn$;

-- Acts on a queued 'A' (a table added to a set with synchronize_data) as
-- Spock's handle_table_sync does: a table the subscription has no sync state
-- for gets one (data, init), and the daemon copies it before streaming on;
-- one it already has is left alone. The table must exist here.
CREATE OR REPLACE FUNCTION spock._apply_queued_table_sync(subscription_id oid, nspname text,
  relname text)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub_name name;
BEGIN
  SELECT s.sub_name INTO sub_name FROM spock.subscription s WHERE s.sub_id = subscription_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'subscription % not found', subscription_id USING ERRCODE = 'undefined_object';
  END IF;
  IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', nspname, relname)) IS NULL THEN
    RAISE EXCEPTION 'table %.% of a queued table sync does not exist on this node', nspname, relname
      USING ERRCODE = 'undefined_table';
  END IF;
  IF EXISTS (SELECT FROM spock.local_sync_status y WHERE y.sync_subid = subscription_id
             AND y.sync_nspname = nspname AND y.sync_relname = relname) THEN
    RAISE INFO 'table sync came from upstream but table %.% is already being synchronized, skipping',
      nspname, relname;
    RETURN false;
  END IF;
  INSERT INTO spock.local_sync_status (sync_kind, sync_subid, sync_nspname, sync_relname,
    sync_status, sync_statuslsn)
  VALUES ('d', subscription_id, nspname, relname, 'i', '0/0');
  PERFORM spock._notify('subscription', sub_name, 'resync');
  RETURN true;
END
$fn$;
