-- The SQL API's subscription status and waits: sub_show_status (running only
-- while a daemon's heartbeat in spock._apply_worker is fresh, never a fake
-- "replicating"), sub_show_table, sub_wait_for_sync and table_wait_for_sync,
-- get_apply_worker_status and wait_for_apply_worker.
-- The daemons that write the heartbeats are elsewhere.

-- Spock's sync_status_to_string().
CREATE OR REPLACE FUNCTION spock._sync_status_name(status "char") RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT CASE status
    WHEN 'i' THEN 'sync_init' WHEN 's' THEN 'sync_structure' WHEN 'd' THEN 'sync_data'
    WHEN 'c' THEN 'sync_constraints' WHEN 'w' THEN 'sync_waiting' WHEN 'u' THEN 'catchup'
    WHEN 'y' THEN 'synchronized' WHEN 'r' THEN 'replicating' ELSE 'unknown'
  END
$fn$;

-- A subscription's apply worker counts as running while its daemon's heartbeat
-- is under 30 seconds old and it has not reported itself stopped or failed.
CREATE OR REPLACE FUNCTION spock._sub_worker_running(sub_id oid) RETURNS boolean
LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT EXISTS (SELECT 1 FROM spock._apply_worker w
    WHERE w.sub_id = _sub_worker_running.sub_id
      AND w.heartbeat_at > clock_timestamp() - interval '30 seconds'
      AND w.state NOT IN ('stopped', 'failed'))
$fn$;

-- Spock's get_apply_worker_status(): one row per subscription whose apply
-- worker a daemon runs or ran here (spock._apply_worker), in Spock's words:
-- running while its heartbeat is fresh (starting and syncing included),
-- stopped or failed as it reported, stopped once its heartbeat is stale.
-- worker_pid is the daemon's process id, on its host (the apply session is a
-- client of this server, not one of its processes). VOLATILE, not Spock's
-- STABLE: freshness is measured at each call.
CREATE OR REPLACE FUNCTION spock.get_apply_worker_status(OUT worker_pid bigint,
  OUT worker_dboid int, OUT worker_subid bigint, OUT worker_status text)
RETURNS SETOF record LANGUAGE sql VOLATILE AS $fn$
  SELECT w.pid::bigint,
    (SELECT d.oid::int FROM pg_catalog.pg_database d WHERE d.datname = current_database()),
    w.sub_id::bigint,
    CASE WHEN w.state IN ('stopped', 'failed') THEN w.state
      WHEN spock._sub_worker_running(w.sub_id) THEN 'running'
      ELSE 'stopped' END
  FROM spock._apply_worker w
  ORDER BY w.sub_id
$fn$;

-- Spock 5.0's wait_for_apply_worker(): false as soon as the subscription's
-- worker is missing or not running; true when it still runs after timeout
-- milliseconds; with timeout 0 it waits until the worker stops. Polls every
-- 200 ms, each poll with a fresh snapshot.
CREATE OR REPLACE FUNCTION spock.wait_for_apply_worker(p_subbid bigint, timeout int DEFAULT 0)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  started timestamptz := clock_timestamp();
BEGIN
  LOOP
    IF NOT EXISTS (SELECT FROM spock.get_apply_worker_status() s
                   WHERE s.worker_subid = p_subbid AND s.worker_status = 'running') THEN
      RETURN false;
    END IF;
    IF timeout > 0 AND clock_timestamp() - started >= timeout * interval '1 millisecond' THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.2);
  END LOOP;
END
$fn$;

-- The body of sub_show_status (PL/pgSQL cannot name an input and an output
-- parameter alike, as Spock's signature does). After Spock's columns come the
-- subscription's last error, as its worker recorded it, and when the worker
-- tries again (NULL when it does not: it waits for an operator).
CREATE OR REPLACE FUNCTION spock._sub_show_status(wanted name)
RETURNS TABLE (subscription_name text, status text, provider_node text, provider_dsn text,
  slot_name text, replication_sets text[], forward_origins text[], last_error text,
  last_error_sqlstate text, last_error_at timestamptz, last_error_lsn pg_lsn,
  next_retry_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  here oid := spock._local_node_id();
  wanted_id oid;
BEGIN
  IF wanted IS NOT NULL THEN
    wanted_id := (spock._sub_find(wanted, false)).sub_id;
  END IF;
  RETURN QUERY
  SELECT s.sub_name::text,
    CASE
      WHEN spock._sub_worker_running(s.sub_id) THEN
        CASE WHEN y.sync_status IS NULL THEN 'unknown'
          WHEN y.sync_status = 'r' THEN 'replicating' ELSE 'initializing' END
      WHEN NOT s.sub_enabled THEN 'disabled'
      ELSE 'down'
    END,
    o.node_name::text, i.if_dsn, s.sub_slot_name::text, s.sub_replication_sets,
    s.sub_forward_origins, e.error_message, e.sqlstate, e.errored_at, e.remote_lsn,
    CASE WHEN s.sub_enabled THEN e.retry_at END
  FROM spock.subscription s
  JOIN spock.node o ON o.node_id = s.sub_origin
  JOIN spock.node_interface i ON i.if_id = s.sub_origin_if
  LEFT JOIN spock.local_sync_status y
    ON y.sync_subid = s.sub_id AND y.sync_nspname IS NULL AND y.sync_relname IS NULL
  LEFT JOIN spock._sub_error e ON e.sub_id = s.sub_id
  WHERE CASE WHEN wanted_id IS NULL THEN s.sub_target = here ELSE s.sub_id = wanted_id END
  ORDER BY s.sub_name;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_show_status(subscription_name name DEFAULT NULL,
  OUT subscription_name text, OUT status text, OUT provider_node text, OUT provider_dsn text,
  OUT slot_name text, OUT replication_sets text[], OUT forward_origins text[],
  OUT last_error text, OUT last_error_sqlstate text, OUT last_error_at timestamptz,
  OUT last_error_lsn pg_lsn, OUT next_retry_at timestamptz)
RETURNS SETOF record LANGUAGE sql STABLE AS $fn$
  SELECT * FROM spock._sub_show_status($1)
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_show_table(subscription_name name, relation regclass,
  OUT nspname text, OUT relname text, OUT status text)
RETURNS record LANGUAGE plpgsql STABLE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, false);
BEGIN
  SELECT n.nspname::text, c.relname::text INTO nspname, relname
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  status := coalesce((SELECT spock._sync_status_name(y.sync_status) FROM spock.local_sync_status y
    WHERE y.sync_subid = sub.sub_id AND y.sync_nspname = sub_show_table.nspname
      AND y.sync_relname = sub_show_table.relname), 'unknown');
END
$fn$;

-- Whether the subscription's own sync row is ready and, with a table given,
-- that table's row too (Spock errors when it has none), or else every table's.
CREATE OR REPLACE FUNCTION spock._sub_sync_done(sub_id oid, nspname text, relname text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  table_status "char";
BEGIN
  IF NOT EXISTS (SELECT 1 FROM spock.local_sync_status y WHERE y.sync_subid = _sub_sync_done.sub_id
                 AND y.sync_nspname IS NULL AND y.sync_relname IS NULL AND y.sync_status = 'r') THEN
    RETURN false;
  END IF;
  IF relname IS NULL THEN
    RETURN NOT EXISTS (SELECT 1 FROM spock.local_sync_status y
      WHERE y.sync_subid = _sub_sync_done.sub_id AND y.sync_nspname IS NOT NULL AND y.sync_status <> 'r');
  END IF;
  SELECT y.sync_status INTO table_status FROM spock.local_sync_status y
  WHERE y.sync_subid = _sub_sync_done.sub_id AND y.sync_nspname = _sub_sync_done.nspname
    AND y.sync_relname = _sub_sync_done.relname;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'subscription % table %.% status not found', sub_id, nspname, relname
      USING ERRCODE = 'undefined_object';
  END IF;
  RETURN table_status = 'r';
END
$fn$;

-- Whether a daemon serves the subscription now: its worker's heartbeat is
-- fresh, or the worker failed and retries soon.
CREATE OR REPLACE FUNCTION spock._sub_served(sub_id oid) RETURNS boolean
LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT spock._sub_worker_running(sub_id) OR EXISTS (SELECT 1 FROM spock._sub_error e
    WHERE e.sub_id = _sub_served.sub_id AND e.retry_at > clock_timestamp() - interval '5 seconds')
$fn$;

-- Polls every 200 ms; each poll is a new statement, so READ COMMITTED gives it
-- a fresh snapshot. It does not wait in vain: a subscription that is disabled,
-- whose worker stopped on an error, or that no daemon has served for 10
-- seconds ends the wait with an error saying so. Else no timeout: use
-- statement_timeout.
CREATE OR REPLACE FUNCTION spock._sub_wait_for_sync(sub_name name, relation regclass)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  sub spock.subscription;
  nsp text;
  rel text;
  unserved_since timestamptz;
  stopped spock._sub_error;
BEGIN
  IF current_setting('transaction_isolation') IN ('repeatable read', 'serializable') THEN
    RAISE EXCEPTION 'cannot wait for sync in REPEATABLE READ or SERIALIZABLE isolation'
      USING ERRCODE = 'active_sql_transaction';
  END IF;
  sub := spock._sub_find(sub_name, false);
  IF relation IS NOT NULL THEN
    SELECT n.nspname::text, c.relname::text INTO nsp, rel
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = relation;
  END IF;
  WHILE NOT spock._sub_sync_done(sub.sub_id, nsp, rel) LOOP
    IF NOT coalesce((SELECT s.sub_enabled FROM spock.subscription s WHERE s.sub_id = sub.sub_id),
                    false) THEN
      RAISE EXCEPTION 'subscription "%" is disabled', sub.sub_name
        USING ERRCODE = 'object_not_in_prerequisite_state',
          DETAIL = coalesce('Last error: ' || (SELECT e.error_message FROM spock._sub_error e
            WHERE e.sub_id = sub.sub_id), 'It was disabled with sub_disable.'),
          HINT = format('Enable it with spock.sub_enable(%L).', sub.sub_name);
    END IF;
    IF spock._sub_served(sub.sub_id) THEN
      unserved_since := NULL;
    ELSE
      unserved_since := coalesce(unserved_since, clock_timestamp());
      -- A worker that stopped on an error after its last heartbeat waits for an operator.
      SELECT e.* INTO stopped FROM spock._sub_error e
      WHERE e.sub_id = sub.sub_id AND e.retry_at IS NULL
        AND e.errored_at >= coalesce((SELECT w.heartbeat_at FROM spock._apply_worker w
                                      WHERE w.sub_id = sub.sub_id), '-infinity');
      IF FOUND AND clock_timestamp() - unserved_since > interval '2 seconds' THEN
        RAISE EXCEPTION 'subscription "%" stopped on an error: %', sub.sub_name,
          stopped.error_message USING ERRCODE = 'object_not_in_prerequisite_state';
      END IF;
      IF clock_timestamp() - unserved_since > interval '10 seconds' THEN
        RAISE EXCEPTION 'no spock daemon is serving subscription "%"', sub.sub_name
          USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Start one for this node (spock run --dsn ''...''): the subscription synchronizes once a daemon serves it.';
      END IF;
    END IF;
    PERFORM pg_sleep(0.2);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_wait_for_sync(subscription_name name)
RETURNS void LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT spock._sub_wait_for_sync($1, NULL)
$fn$;

CREATE OR REPLACE FUNCTION spock.table_wait_for_sync(subscription_name name, relation regclass)
RETURNS void LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT spock._sub_wait_for_sync($1, $2)
$fn$;
