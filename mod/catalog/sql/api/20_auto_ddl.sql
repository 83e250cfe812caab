-- Automatic DDL replication (Spock's spock.enable_ddl_replication,
-- spock.include_ddl_repset and spock.allow_ddl_from_functions), done with a
-- ddl_command_end event trigger instead of a ProcessUtility hook. The
-- settings are placeholders each session reads as users set them (ALTER
-- SYSTEM, ALTER DATABASE … SET, SET), with the daemon's config as this
-- node's defaults (spock._setting_default). A captured statement is queued as a
-- 'D' command for default_insert_only, as Spock does, and subscribers run it
-- through the queue (19_queue.sql) at its position in the stream.
--
-- The statement's text: a top-level one is found in current_query() (the
-- client's query string, split into statements, the next one with the
-- event's command tag); one run by a PL/pgSQL function or DO block is the
-- innermost "SQL statement" of the error context. An SQL-language function
-- shows no text, so its DDL is not replicated (with a warning).

-- Replaces this node's setting defaults (spock._setting_default) with
-- `settings` ({"spock.enable_ddl_replication": "on", …}): `spock run` writes
-- its config's values at start.
CREATE OR REPLACE FUNCTION spock._set_setting_defaults(settings jsonb) RETURNS void
LANGUAGE sql VOLATILE STRICT AS $fn$
  DELETE FROM spock._setting_default;
  INSERT INTO spock._setting_default (name, value) SELECT key, value FROM jsonb_each_text(settings);
$fn$;

-- Whether a boolean placeholder setting is on: its value for this session
-- (SET, ALTER ROLE/DATABASE … SET, ALTER SYSTEM), else this node's default
-- from the daemon's config (not for spock's own transaction flags, spock._…);
-- neither is off, and a value that is not a boolean is off with a warning
-- naming it.
CREATE OR REPLACE FUNCTION spock._setting_on(setting text) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT AS $fn$
DECLARE
  value text := nullif(btrim(current_setting(setting, true)), '');
BEGIN
  IF value IS NULL AND setting NOT LIKE 'spock.\_%' THEN
    SELECT d.value INTO value FROM spock._setting_default d WHERE d.name = setting;
  END IF;
  RETURN coalesce(value::boolean, false);
EXCEPTION WHEN invalid_text_representation THEN
  RAISE WARNING '% = "%" is not a boolean: taken as off', setting, value;
  RETURN false;
END
$fn$;

-- Whether a statement's skeleton starts with its command tag's first word and
-- holds the tag's other words in order ('CREATE UNIQUE INDEX' has 'CREATE INDEX').
CREATE OR REPLACE FUNCTION spock._statement_has_tag(skeleton text, tag text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
  words text[] := regexp_split_to_array(upper(btrim(skeleton)), '[[:space:]]+');
  wanted text[] := regexp_split_to_array(upper(tag), ' ');
  i integer := 2;
  word text;
BEGIN
  IF words[1] IS DISTINCT FROM wanted[1] THEN
    RETURN false;
  END IF;
  FOREACH word IN ARRAY words[2:] LOOP
    EXIT WHEN i > cardinality(wanted);
    IF word = wanted[i] THEN
      i := i + 1;
    END IF;
  END LOOP;
  RETURN i > cardinality(wanted);
END
$fn$;

-- The top-level statement a ddl_command_end event with command tag `tag`
-- fired for, with its skeleton: the next statement of the client's query
-- string with that tag, after the one the previous event of the same query
-- string took (one query string can hold several statements); NULL when
-- there is none.
CREATE OR REPLACE FUNCTION spock._ddl_top_level_statement(tag text,
  OUT statement text, OUT skeleton text)
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  query text := current_query();
  query_key text := md5(query) || '@' || extract(epoch FROM statement_timestamp())::text;
  taken text := coalesce(current_setting('spock._ddl_position', true), '');
  last_taken integer := 0;
  taken_at integer;
BEGIN
  IF split_part(taken, '#', 1) = query_key THEN
    last_taken := split_part(taken, '#', 2)::integer;
  END IF;
  SELECT s.statement, s.skeleton, s.k INTO statement, skeleton, taken_at
  FROM spock._split_sql(query) WITH ORDINALITY AS s(statement, skeleton, k)
  WHERE s.k > last_taken AND spock._statement_has_tag(s.skeleton, tag)
  ORDER BY s.k LIMIT 1;
  IF taken_at IS NOT NULL THEN
    PERFORM set_config('spock._ddl_position', query_key || '#' || taken_at, false);
  END IF;
END
$fn$;

-- Whether the frames of an error context below the event trigger's own show
-- a spock function: the DDL is spock's own work (a set's publication, say),
-- never queued. A function's signature is schema-qualified unless the
-- caller's search_path has its schema.
CREATE OR REPLACE FUNCTION spock._ddl_from_spock(frames text) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT AS $fn$
DECLARE
  signature text;
  found_oid oid;
BEGIN
  FOR signature IN SELECT m[1] FROM regexp_matches(frames,
                     'PL/pgSQL function ([^\n]+?\)) line [0-9]+ at ', 'g') AS m LOOP
    BEGIN
      found_oid := to_regprocedure(CASE WHEN split_part(signature, '(', 1) LIKE '%.%'
        THEN signature ELSE 'spock.' || signature END);
    EXCEPTION WHEN OTHERS THEN
      -- (PostgreSQL 15 raises on a signature it cannot parse)
      CONTINUE;
    END;
    IF EXISTS (SELECT FROM pg_catalog.pg_proc p
               WHERE p.oid = found_oid AND p.pronamespace = 'spock'::regnamespace) THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END
$fn$;

-- Queues the statement a ddl_command_end event fired for as a 'D' command,
-- or says why it is not replicated (Spock's rules and messages).
CREATE OR REPLACE FUNCTION spock._auto_ddl_queue(tag text, caller_path text, caller_role text,
  context text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  nested text := substring(context FROM E'\n(.*)$');
  found record;
  statement text;
  skeleton text;
BEGIN
  IF nested IS NULL THEN
    found := spock._ddl_top_level_statement(tag);
    statement := found.statement;
    skeleton := found.skeleton;
    IF statement IS NULL THEN
      RAISE WARNING 'This DDL statement will not be replicated: its text (%) is not in the query string',
        tag USING HINT = 'Run it with spock.replicate_ddl().';
      RETURN;
    END IF;
  ELSE
    IF NOT spock._setting_on('spock.allow_ddl_from_functions') THEN
      RETURN;
    END IF;
    statement := substring(nested FROM
      E'^SQL statement "(.*?)"\n(?=PL/pgSQL function |SQL function |PL/)');
    IF statement IS NULL THEN
      RAISE WARNING 'This DDL statement will not be replicated: the text of a % in this function is not known here',
        tag USING HINT = 'PL/pgSQL functions and DO blocks show it; elsewhere use spock.replicate_ddl().';
      RETURN;
    END IF;
    skeleton := (SELECT s.skeleton FROM spock._split_sql(statement) AS s LIMIT 1);
  END IF;
  IF tag IN ('CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION')
     OR EXISTS (SELECT FROM pg_event_trigger_ddl_commands() c
                WHERE c.schema_name LIKE 'pg\_temp%')
     OR spock._setting_on('spock._dropped_temp')
     OR (tag IN ('CREATE INDEX', 'DROP INDEX', 'ALTER TABLE', 'REINDEX')
         AND upper(coalesce(skeleton, '')) ~ '\mCONCURRENTLY\M') THEN
    PERFORM set_config('spock._dropped_temp', '', true);
    RAISE WARNING 'This DDL statement will not be replicated.';
    RETURN;
  END IF;
  PERFORM spock._queue_command(caller_role, '{default_insert_only}', 'D', to_json(
    CASE WHEN tag = 'CLUSTER' THEN '' ELSE spock._search_path_prefix(caller_path) END
      || statement));
  IF tag IN ('CREATE TABLE AS', 'SELECT INTO') THEN
    RAISE WARNING 'DDL statement replicated, but could be unsafe.';
  ELSE
    RAISE INFO 'DDL statement replicated.';
  END IF;
END
$fn$;

-- Spock's include_ddl_repset for the tables a DDL created or altered: one
-- that is not WAL-logged leaves every set; one with a replica identity index
-- joins default, one without leaves the sets that replicate UPDATE or DELETE
-- and joins default_insert_only. A table already in a set that suits it stays
-- where it is (Spock 6.0's "repset stickiness").
CREATE OR REPLACE FUNCTION spock._auto_ddl_repsets() RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel record;
  member record;
  target name;
BEGIN
  FOR rel IN SELECT DISTINCT c.objid::regclass AS relation, t.relpersistence,
               t.relispartition
             FROM pg_event_trigger_ddl_commands() c
             JOIN pg_catalog.pg_class t ON t.oid = c.objid
             WHERE c.classid = 'pg_catalog.pg_class'::regclass AND c.object_type = 'table'
               AND t.relkind IN ('r', 'p') LOOP
    CONTINUE WHEN rel.relispartition;
    IF rel.relpersistence <> 'p' THEN
      FOR member IN SELECT s.set_name FROM spock.replication_set_table r
                    JOIN spock.replication_set s ON s.set_id = r.set_id
                    WHERE r.set_reloid = rel.relation LOOP
        PERFORM spock.repset_remove_table(member.set_name, rel.relation);
      END LOOP;
      CONTINUE;
    END IF;
    IF spock._has_replica_identity_index(rel.relation) THEN
      target := 'default';
    ELSE
      target := 'default_insert_only';
      FOR member IN SELECT s.set_name FROM spock.replication_set_table r
                    JOIN spock.replication_set s ON s.set_id = r.set_id
                    WHERE r.set_reloid = rel.relation
                      AND (s.replicate_update OR s.replicate_delete) LOOP
        PERFORM spock.repset_remove_table(member.set_name, rel.relation);
      END LOOP;
    END IF;
    CONTINUE WHEN EXISTS (SELECT FROM spock.replication_set_table r
                          WHERE r.set_reloid = rel.relation);
    IF NOT EXISTS (SELECT FROM spock.replication_set s
                   WHERE s.set_nodeid = spock._local_node_id() AND s.set_name = target) THEN
      RAISE WARNING 'table % was not added to a replication set: this node has no set %',
        rel.relation, target;
      CONTINUE;
    END IF;
    PERFORM spock.repset_add_table(target, rel.relation);
    RAISE LOG 'table ''%'' was added to ''%'' replication set.', rel.relation, target;
  END LOOP;
END
$fn$;

-- What one ddl_command_end event does, once the caller's search_path and role
-- are known: nothing unless automatic DDL is on and this is a spock node;
-- queue the statement unless a queue brought it or replicate_ddl queued it
-- (spock._ddl_queued) or it is spock's own; then include_ddl_repset. Apply
-- and copy sessions (replica role) act only on what a queue brought.
CREATE OR REPLACE FUNCTION spock._auto_ddl_run(tag text, caller_path text, caller_role text,
  context text)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  from_queue boolean := spock._setting_on('spock._ddl_queued');
BEGIN
  IF spock._setting_on('spock._auto_ddl_busy')
     OR NOT spock._setting_on('spock.enable_ddl_replication')
     OR NOT EXISTS (SELECT FROM spock.local_node)
     OR (current_setting('session_replication_role') = 'replica' AND NOT from_queue)
     OR EXISTS (SELECT FROM pg_event_trigger_ddl_commands() c WHERE c.schema_name = 'spock') THEN
    PERFORM set_config('spock._dropped_temp', '', true);
    RETURN;
  END IF;
  IF NOT from_queue THEN
    IF spock._ddl_from_spock(coalesce(substring(context FROM E'\n(.*)$'), '')) THEN
      RETURN;
    END IF;
    PERFORM spock._auto_ddl_queue(tag, caller_path, caller_role, context);
  END IF;
  IF spock._setting_on('spock.include_ddl_repset') THEN
    PERFORM set_config('spock._auto_ddl_busy', 'on', true);
    PERFORM spock._auto_ddl_repsets();
    PERFORM set_config('spock._auto_ddl_busy', '', true);
  END IF;
END
$fn$;

-- The ddl_command_end event trigger. SECURITY DEFINER, as roles without
-- rights on the spock schema run DDL too; it reads the caller's search_path
-- and role before anything else, with schema-qualified calls only, then pins
-- its own search_path for the rest and puts the caller's back.
CREATE OR REPLACE FUNCTION spock._auto_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
DECLARE
  caller_path text := pg_catalog.current_setting('search_path');
  caller_role text := pg_catalog.current_setting('role');
  context text;
BEGIN
  GET DIAGNOSTICS context = PG_CONTEXT;
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  IF caller_role = 'none' THEN
    caller_role := session_user;
  END IF;
  PERFORM spock._auto_ddl_run(tg_tag, caller_path, caller_role, context);
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
END
$fn$;

-- ENABLE ALWAYS: it also fires in apply sessions (replica role), where it
-- only adds the tables a queued DDL created to sets.
DO $do$
BEGIN
  DROP EVENT TRIGGER IF EXISTS spock_auto_ddl;
  CREATE EVENT TRIGGER spock_auto_ddl ON ddl_command_end EXECUTE FUNCTION spock._auto_ddl();
  ALTER EVENT TRIGGER spock_auto_ddl ENABLE ALWAYS;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'cannot create event trigger spock_auto_ddl: only a superuser can; DDL is then replicated only with spock.replicate_ddl()';
END
$do$;
