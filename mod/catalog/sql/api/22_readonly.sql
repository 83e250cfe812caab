-- Read-only mode (Spock's spock.readonly: off | local, alias user | all),
-- enforced from outside the server: a statement trigger on every user table
-- and a ddl_command_start event trigger refuse ordinary sessions' DML,
-- TRUNCATE and DDL while the mode is local or all. Both are ENABLE (origin)
-- triggers, so apply sessions (session_replication_role = replica) keep
-- applying in local; in all the daemon stops its apply workers. Superusers
-- are exempt, as in Spock 6.0.
--
-- A session cannot lift a stricter database or server value: its own value
-- (SET, connection options, its role's ALTER ROLE … SET) only counts when it
-- is the stricter one.

-- 0 for off, 1 for local (or user), 2 for all; anything else is an error naming the setting.
CREATE OR REPLACE FUNCTION spock._readonly_level(value text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
  CASE lower(btrim(coalesce(value, '')))
    WHEN '', 'off' THEN RETURN 0;
    WHEN 'local', 'user' THEN RETURN 1;
    WHEN 'all' THEN RETURN 2;
    ELSE
      RAISE EXCEPTION 'invalid value for parameter "spock.readonly": "%"', value
        USING ERRCODE = 'invalid_parameter_value',
          HINT = 'Available values: off, local, user, all.';
  END CASE;
END
$fn$;

-- This database's ALTER DATABASE … SET spock.readonly value, if any.
CREATE OR REPLACE FUNCTION spock._readonly_database_value() RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT substr(c.setting, length('spock.readonly=') + 1)
  FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS c(setting)
  WHERE s.setrole = 0
    AND s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
    AND c.setting LIKE 'spock.readonly=%'
$fn$;

-- The node's mode, as the daemon reads it: the stricter of the server's
-- value (ALTER SYSTEM + reload, as this session sees it) and the database's.
CREATE OR REPLACE FUNCTION spock.readonly_mode() RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT (ARRAY['off', 'local', 'all'])[1 + greatest(
    spock._readonly_level(current_setting('spock.readonly', true)),
    spock._readonly_level(spock._readonly_database_value()))]
$fn$;

-- Whether this session's writes are refused: never a superuser's; else when
-- its own value, the database's or the server's configuration files' is
-- local or all. The files (privileged to read, and slow) are read only when
-- the session sees a value that is off: set by the session, its connection
-- options or its role, it must not lift the server's.
CREATE OR REPLACE FUNCTION spock._readonly_refuses() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  own text := current_setting('spock.readonly', true);
BEGIN
  IF current_setting('is_superuser') = 'on' THEN
    RETURN false;
  END IF;
  IF spock._readonly_level(own) > 0
     OR spock._readonly_level(spock._readonly_database_value()) > 0 THEN
    RETURN true;
  END IF;
  IF own IS NULL OR btrim(own) = '' THEN
    RETURN false;
  END IF;
  BEGIN
    RETURN spock._readonly_level((SELECT f.setting FROM pg_catalog.pg_file_settings f
      WHERE f.name = 'spock.readonly' AND f.error IS NULL ORDER BY f.seqno DESC LIMIT 1)) > 0;
  EXCEPTION WHEN insufficient_privilege THEN
    RETURN false;
  END;
END
$fn$;

-- Refuses the statement when the session may not write.
CREATE OR REPLACE FUNCTION spock._readonly_check() RETURNS void
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
  IF spock._readonly_refuses() THEN
    RAISE EXCEPTION 'spock: invalid statement for a read-only cluster'
      USING ERRCODE = 'read_only_sql_transaction';
  END IF;
END
$fn$;

-- SECURITY DEFINER, as the writer may not reach schema spock; is_superuser
-- stays the writer's. No SET clause (it would cost more than the check, on
-- every statement): every name in the body is schema-qualified instead, and
-- a superuser returns at once.
CREATE OR REPLACE FUNCTION spock._readonly_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
  IF NOT pg_catalog.texteq(pg_catalog.current_setting('is_superuser'), 'on') THEN
    PERFORM spock._readonly_check();
  END IF;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION spock._readonly_ddl_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM spock._readonly_check();
END
$fn$;

-- Puts the read-only guard on a table unless it has it.
CREATE OR REPLACE FUNCTION spock._readonly_attach(relation regclass) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                 WHERE t.tgrelid = relation AND t.tgname = 'spock_readonly') THEN
    EXECUTE format('CREATE TRIGGER spock_readonly BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE '
      'ON %s FOR EACH STATEMENT EXECUTE FUNCTION spock._readonly_guard()', relation);
  END IF;
END
$fn$;

-- The user tables without the guard. `spock run` guards them at start, one
-- table per transaction: CREATE TRIGGER locks the table, and locking many in
-- one transaction (as spock install's would) deadlocks with writers.
CREATE OR REPLACE FUNCTION spock._readonly_unguarded() RETURNS SETOF regclass
LANGUAGE sql STABLE AS $fn$
  SELECT c.oid::regclass FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'spock')
    AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = c.oid AND t.tgname = 'spock_readonly')
$fn$;

-- ddl_command_end: a new table gets the guard (not during a structure sync's
-- restore, whose script carries the provider's).
CREATE OR REPLACE FUNCTION spock._readonly_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  created record;
BEGIN
  IF current_setting('spock._readonly_attach', true) = 'off' THEN
    RETURN;
  END IF;
  FOR created IN
    SELECT e.objid FROM pg_catalog.pg_event_trigger_ddl_commands() e
    JOIN pg_catalog.pg_class c ON c.oid = e.objid
    WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objsubid = 0
      AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND e.schema_name <> 'spock'
  LOOP
    PERFORM spock._readonly_attach(created.objid::regclass);
  END LOOP;
END
$fn$;

-- Ends the transactions that are writing in this database (they hold a
-- transaction id), other than this session's and spock's apply sessions,
-- after switching to read-only. Terminated, not cancelled: a session idle in
-- its transaction would otherwise keep it open.
CREATE OR REPLACE FUNCTION spock.terminate_active_transactions() RETURNS boolean
LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT coalesce(bool_and(pg_catalog.pg_terminate_backend(a.pid)), true)
  FROM pg_catalog.pg_stat_activity a
  WHERE a.datname = current_database() AND a.pid <> pg_catalog.pg_backend_pid()
    AND a.backend_type = 'client backend' AND a.backend_xid IS NOT NULL
    AND a.application_name <> 'spock daemon'
$fn$;

-- The DDL guard stays ENABLE (origin): queued DDL applied in local mode runs.
-- The new-table trigger is ENABLE ALWAYS: tables queued DDL creates get the guard too.
DO $do$
BEGIN
  DROP EVENT TRIGGER IF EXISTS spock_readonly_ddl;
  DROP EVENT TRIGGER IF EXISTS spock_readonly_new_tables;
  CREATE EVENT TRIGGER spock_readonly_ddl ON ddl_command_start
    EXECUTE FUNCTION spock._readonly_ddl_guard();
  CREATE EVENT TRIGGER spock_readonly_new_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION spock._readonly_new_tables();
  ALTER EVENT TRIGGER spock_readonly_new_tables ENABLE ALWAYS;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'cannot create the read-only event triggers: only a superuser can; spock.readonly then does not refuse DDL, and new tables get its guard at the next spock install';
END
$do$;
