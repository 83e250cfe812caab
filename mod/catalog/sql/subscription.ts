/**
 * The SQL API for subscriptions: create and drop here, alterations in
 * `subscription_alter.ts`, status and waits in `subscription_show.ts`. These
 * functions record intent in the catalog and tell running daemons through
 * `spock._notify('subscription', name, action)` with action create, drop,
 * enable, disable, alter, sync or resync; the apply engine acts on it.
 */
import { SUBSCRIPTION_ALTER_SQL } from "./subscription_alter.ts";
import { SUBSCRIPTION_SHOW_SQL } from "./subscription_show.ts";

const SUBSCRIPTION_HELPERS_SQL = String.raw`
-- The schema holding dblink's functions, or NULL when dblink is not installed.
CREATE OR REPLACE FUNCTION spock._dblink_schema() RETURNS name
LANGUAGE sql STABLE AS $fn$
  SELECT n.nspname FROM pg_catalog.pg_extension e
  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'dblink'
$fn$;

-- A DSN for dblink with Spock's connect_timeout (30 s); a later setting in the
-- DSN itself wins. URIs are passed unchanged.
CREATE OR REPLACE FUNCTION spock._dblink_dsn(dsn text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $fn$
  SELECT CASE WHEN dsn ~* '^postgres(ql)?://' THEN dsn ELSE 'connect_timeout=30 ' || dsn END
$fn$;

-- A DSN with its password hidden, for error messages.
CREATE OR REPLACE FUNCTION spock._mask_dsn(dsn text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $fn$
  SELECT regexp_replace(
    regexp_replace(dsn, '(password\s*=\s*)(''(?:[^''\\]|\\.)*''|\S*)', '\1********', 'gi'),
    '^(postgres(?:ql)?://[^:/@?]*):[^@/?]*@', '\1:********@', 'i')
$fn$;

-- Spock's validate_subscription_name(): the rule of replication slot names.
CREATE OR REPLACE FUNCTION spock._sub_validate_name(sub_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
BEGIN
  IF sub_name = '' THEN
    RAISE EXCEPTION 'subscription  name "%" is too short', sub_name USING ERRCODE = 'invalid_name';
  END IF;
  IF octet_length(sub_name) >= 64 THEN
    RAISE EXCEPTION 'subscription name "%" is too long', sub_name USING ERRCODE = 'name_too_long';
  END IF;
  IF sub_name !~ '^[a-z0-9_]+$' THEN
    RAISE EXCEPTION 'subscription name "%" contains invalid character', sub_name
      USING ERRCODE = 'invalid_name',
        HINT = 'Subscription names may only contain lower case letters, numbers, and the underscore character.';
  END IF;
END
$fn$;

-- The subscription row by name, optionally locked; Spock's error when missing.
CREATE OR REPLACE FUNCTION spock._sub_find(sub_name name, for_update boolean)
RETURNS spock.subscription LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  found_sub spock.subscription;
BEGIN
  IF for_update THEN
    SELECT * INTO found_sub FROM spock.subscription s WHERE s.sub_name = _sub_find.sub_name FOR UPDATE;
  ELSE
    SELECT * INTO found_sub FROM spock.subscription s WHERE s.sub_name = _sub_find.sub_name;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'subscriber % not found', sub_name USING ERRCODE = 'undefined_object';
  END IF;
  RETURN found_sub;
END
$fn$;

-- Spock's get_local_node(for_update = true): serializes catalog changes.
CREATE OR REPLACE FUNCTION spock._lock_local_node() RETURNS oid
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  id oid := spock._local_node_id();
BEGIN
  PERFORM 1 FROM spock.local_node FOR UPDATE;
  RETURN id;
END
$fn$;

-- Whether this transaction already wrote before the current call: SQL cannot
-- see IsTransactionBlock(), but an assigned xid means earlier statements of an
-- explicit block. Call it before taking row locks (they assign an xid). A block
-- that has not written yet goes unnoticed.
CREATE OR REPLACE FUNCTION spock._in_transaction_block() RETURNS boolean
LANGUAGE sql VOLATILE AS $fn$
  SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL
$fn$;

-- TRUNCATE ... CASCADE of a local table, if it exists (Spock's truncate_table()).
CREATE OR REPLACE FUNCTION spock._truncate_table(nspname text, relname text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
BEGIN
  IF to_regclass(format('%I.%I', nspname, relname)) IS NOT NULL THEN
    EXECUTE format('TRUNCATE TABLE %I.%I CASCADE', nspname, relname);
  END IF;
END
$fn$;
`;

const SUBSCRIPTION_CREATE_SQL = String.raw`
-- Everything sub_create does locally once the provider's node id and name are
-- known (Spock's steps after reading node_info()). The CLI calls it directly
-- after reading node_info() itself; sub_create calls it after asking over dblink.
CREATE OR REPLACE FUNCTION spock._sub_create_local(subscription_name name, provider_dsn text,
  provider_node_id oid, provider_node_name name, replication_sets text[],
  synchronize_structure boolean, synchronize_data boolean, forward_origins text[],
  apply_delay interval, force_text_transfer boolean, enabled boolean, skip_schema text[])
RETURNS oid LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  here record;
  origin_if spock.node_interface;
  overlap record;
  new_id oid;
  slot name;
  created timestamptz := clock_timestamp();
  kind "char";
  status "char" := 'i';
BEGIN
  IF num_nulls(subscription_name, provider_dsn, provider_node_id, provider_node_name,
      synchronize_structure, synchronize_data, apply_delay, force_text_transfer, enabled) > 0 THEN
    RAISE EXCEPTION 'spock._sub_create_local() takes NULL only for its array arguments'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spock._lock_local_node();
  SELECT l.node_id, l.node_local_interface INTO here FROM spock.local_node l;

  PERFORM 1 FROM spock.node n WHERE n.node_name = provider_node_name FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO spock.node (node_id, node_name) VALUES (provider_node_id, provider_node_name);
    INSERT INTO spock.node_interface (if_id, if_name, if_nodeid, if_dsn)
    VALUES (spock._pair_id(provider_node_id, provider_node_name), provider_node_name,
            provider_node_id, provider_dsn)
    RETURNING * INTO origin_if;
  ELSE
    SELECT * INTO origin_if FROM spock.node_interface i
    WHERE i.if_nodeid = provider_node_id AND i.if_name = provider_node_name;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'node interface "%" not found for nod %', provider_node_name, provider_node_id
        USING ERRCODE = 'undefined_object';
    END IF;
    IF origin_if.if_dsn <> provider_dsn THEN
      RAISE EXCEPTION 'dsn "%" points to existing node "%" with different dsn "%"',
        spock._mask_dsn(provider_dsn), provider_node_name, spock._mask_dsn(origin_if.if_dsn)
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END IF;

  FOR overlap IN
    SELECT s.sub_name, e.set_name
    FROM spock.subscription s,
      unnest(s.sub_replication_sets) WITH ORDINALITY AS e(set_name, k),
      unnest(replication_sets) WITH ORDINALITY AS w(set_name, j)
    WHERE s.sub_origin = origin_if.if_nodeid AND e.set_name = w.set_name
    ORDER BY s.sub_name, e.k, w.j
  LOOP
    RAISE WARNING 'existing subscription "%" to node "%" already subscribes to replication set "%"',
      overlap.sub_name, provider_node_name, overlap.set_name USING ERRCODE = 'invalid_parameter_value';
  END LOOP;

  PERFORM spock._sub_validate_name(subscription_name);
  -- Spock's output plugin accepts only these two lists (checked here, before anything is written).
  IF EXISTS (SELECT 1 FROM unnest(forward_origins) o WHERE o IS DISTINCT FROM 'all') THEN
    RAISE EXCEPTION 'Only "all" is allowed in forward origin name list, not %', forward_origins
      USING ERRCODE = 'invalid_parameter_value',
        HINT = 'Use forward_origins := ''{}'' to receive only the provider''s own changes, or ''{all}'' to receive every change it has.';
  END IF;
  IF EXISTS (SELECT 1 FROM spock.subscription s WHERE s.sub_name = subscription_name) THEN
    RAISE EXCEPTION 'subscription % already exists', subscription_name USING ERRCODE = 'duplicate_object';
  END IF;
  new_id := spock._sub_id(subscription_name);
  slot := spock.spock_gen_slot_name(current_database()::name, provider_node_name, subscription_name);
  INSERT INTO spock.subscription (sub_id, sub_name, sub_origin, sub_target, sub_origin_if,
    sub_target_if, sub_enabled, sub_slot_name, sub_replication_sets, sub_forward_origins,
    sub_apply_delay, sub_force_text_transfer, sub_skip_lsn, sub_skip_schema, sub_created_at)
  VALUES (new_id, subscription_name, origin_if.if_nodeid, here.node_id, origin_if.if_id,
    here.node_local_interface, enabled, slot, nullif(replication_sets, '{}'),
    CASE WHEN cardinality(forward_origins) > 0 THEN '{all}'::text[] END, apply_delay,
    force_text_transfer, '0/0',
    nullif(skip_schema, '{}'), created);

  INSERT INTO spock.progress (node_id, remote_node_id, remote_commit_ts, remote_lsn,
    remote_insert_lsn, last_updated_ts, updated_by_decode)
  VALUES (here.node_id, origin_if.if_nodeid, created, '0/0', '0/0', created, true)
  ON CONFLICT DO NOTHING;

  kind := CASE WHEN synchronize_structure AND synchronize_data THEN 'f'
    WHEN synchronize_structure THEN 's' WHEN synchronize_data THEN 'd' ELSE 'i' END;
  IF NOT enabled THEN
    -- Zero-downtime add node: no sync; the slot is created by hand on the provider.
    IF synchronize_structure OR synchronize_data THEN
      RAISE EXCEPTION 'subscription "%" in disabled state is not allowed to synchronize structure or data',
        subscription_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    status := 'r';
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_origin WHERE roname = slot) THEN
      PERFORM pg_catalog.pg_replication_origin_create(slot);
    END IF;
  END IF;
  INSERT INTO spock.local_sync_status (sync_kind, sync_subid, sync_nspname, sync_relname,
    sync_status, sync_statuslsn)
  VALUES (kind, new_id, NULL, NULL, status, '0/0');

  PERFORM spock._notify('subscription', subscription_name, 'create');
  RETURN new_id;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_create(subscription_name name, provider_dsn text,
  replication_sets text[] = '{default,default_insert_only,ddl_sql}',
  synchronize_structure boolean = false, synchronize_data boolean = false,
  forward_origins text[] = '{}', apply_delay interval DEFAULT '0',
  force_text_transfer boolean = false, enabled boolean = true, skip_schema text[] = '{}')
RETURNS oid LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  dblink_schema name;
  remote record;
  remote_count integer := 0;
  provider record;
  known boolean;
  new_id oid;
  detail text;
  code text;
BEGIN
  PERFORM spock._local_node_id();
  dblink_schema := spock._dblink_schema();
  IF dblink_schema IS NULL THEN
    RAISE EXCEPTION 'spock.sub_create() needs the dblink extension to read the provider''s node_info()'
      USING ERRCODE = 'feature_not_supported',
        HINT = 'Run "spock sub create" from the command line instead, or install dblink and re-run "spock install".';
  END IF;
  BEGIN
    FOR remote IN EXECUTE format(
      'SELECT t.* FROM %I.dblink(%L, %L)
         AS t(node_id oid, node_name name, location text, country text, info text)',
      dblink_schema, spock._dblink_dsn(provider_dsn),
      'SELECT node_id, node_name, location, country, info::text FROM spock.node_info()')
    LOOP
      remote_count := remote_count + 1;
      provider := remote;
    END LOOP;
  EXCEPTION
    WHEN sqlclient_unable_to_establish_sqlconnection THEN
      GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
      RAISE EXCEPTION 'could not connect to the postgresql server: %',
        coalesce(nullif(btrim(detail, E' \n'), ''), SQLERRM)
        USING ERRCODE = 'sqlclient_unable_to_establish_sqlconnection';
    WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE;
      RAISE EXCEPTION 'could not fetch remote node info: %', SQLERRM USING ERRCODE = code;
  END;
  IF remote_count = 0 THEN
    RAISE EXCEPTION 'the remote database is not configured as a spock node.'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  ELSIF remote_count > 1 THEN
    RAISE EXCEPTION 'the remote database has multiple nodes configured. That is not supported with current version of spock.'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- Like Spock, a provider node seen for the first time keeps its location, country and info.
  known := EXISTS (SELECT 1 FROM spock.node n WHERE n.node_name = provider.node_name);
  new_id := spock._sub_create_local(subscription_name, provider_dsn, provider.node_id,
    provider.node_name, replication_sets, synchronize_structure, synchronize_data,
    forward_origins, apply_delay, force_text_transfer, enabled, skip_schema);
  IF NOT known THEN
    UPDATE spock.node n SET location = provider.location, country = provider.country,
      info = provider.info::jsonb
    WHERE n.node_id = provider.node_id;
  END IF;
  RETURN new_id;
END
$fn$;
`;

const SUBSCRIPTION_DROP_SQL = String.raw`
-- Drops the subscription's slot on the provider through dblink. A walsender
-- still streaming it for this subscription (application_name = the
-- subscription's name) is terminated first, as Spock kills its apply worker.
CREATE OR REPLACE FUNCTION spock._drop_remote_slot(dsn text, slot name, sub_name name)
RETURNS void LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  dblink_schema name := spock._dblink_schema();
  remote_sql text;
BEGIN
  IF dblink_schema IS NULL THEN
    RAISE EXCEPTION 'dblink is not installed' USING ERRCODE = 'feature_not_supported';
  END IF;
  remote_sql := format($remote$
DO $spock_drop$
DECLARE
  found_slot record;
BEGIN
  SELECT s.plugin, s.active_pid INTO found_slot
  FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = %1$L;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF found_slot.plugin IS NULL OR found_slot.plugin NOT IN ('pgoutput', 'spock_output', 'spock') THEN
    RAISE EXCEPTION 'slot %% is not spock slot', %1$L;
  END IF;
  IF found_slot.active_pid IS NOT NULL THEN
    PERFORM pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a
    WHERE a.pid = found_slot.active_pid AND a.application_name = %2$L;
    FOR i IN 1 .. 50 LOOP
      EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s
                            WHERE s.slot_name = %1$L AND s.active);
      PERFORM pg_catalog.pg_sleep(0.1);
    END LOOP;
  END IF;
  PERFORM pg_catalog.pg_drop_replication_slot(%1$L);
END
$spock_drop$
$remote$, slot, sub_name);
  EXECUTE format('SELECT %I.dblink_exec(%L, %L)', dblink_schema, spock._dblink_dsn(dsn), remote_sql);
END
$fn$;

-- Everything sub_drop does on this node: the catalog rows, the provider node
-- when no other subscription uses it, and the local origin when no worker
-- holds it (else the daemon drops it once its worker has stopped). Returns
-- what sub_drop returns, and the provider's slot to drop (NULL when there is
-- none to drop from here). The CLI calls it, then drops the slot itself.
CREATE OR REPLACE FUNCTION spock._sub_drop_local(subscription_name name, ifexists boolean)
RETURNS TABLE (dropped oid, slot_name name, provider_dsn text, sub_name name)
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription;
  here oid;
  origin_dsn text;
BEGIN
  SELECT * INTO sub FROM spock.subscription s
  WHERE s.sub_name = _sub_drop_local.subscription_name FOR UPDATE;
  IF NOT FOUND THEN
    IF ifexists THEN
      RETURN QUERY SELECT 0::oid, NULL::name, NULL::text, subscription_name;
      RETURN;
    END IF;
    RAISE EXCEPTION 'subscriber % not found', subscription_name USING ERRCODE = 'undefined_object';
  END IF;
  here := spock._lock_local_node();
  SELECT i.if_dsn INTO origin_dsn FROM spock.node_interface i WHERE i.if_id = sub.sub_origin_if;
  DELETE FROM spock.local_sync_status WHERE sync_subid = sub.sub_id;
  DELETE FROM spock.subscription WHERE sub_id = sub.sub_id;
  PERFORM spock._notify('subscription', sub.sub_name, 'drop');
  -- A subscription row naming this node as origin is a provider-side record: nothing more to do.
  IF sub.sub_origin = here THEN
    RETURN QUERY SELECT 1::oid, NULL::name, NULL::text, subscription_name;
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM spock.subscription s WHERE s.sub_origin = sub.sub_origin) THEN
    DELETE FROM spock.node_interface WHERE if_nodeid = sub.sub_origin;
    DELETE FROM spock.node WHERE node_id = sub.sub_origin;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_replication_origin WHERE roname = sub.sub_slot_name) THEN
    BEGIN
      PERFORM pg_catalog.pg_replication_origin_drop(sub.sub_slot_name);
    EXCEPTION WHEN object_in_use THEN
      RAISE NOTICE 'replication origin "%" is still in use: the daemon drops it once its worker has stopped',
        sub.sub_slot_name;
    END;
  END IF;
  RETURN QUERY SELECT 1::oid, sub.sub_slot_name, origin_dsn, subscription_name;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_drop(subscription_name name, ifexists boolean DEFAULT false)
RETURNS oid LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  result record;
BEGIN
  SELECT * INTO result FROM spock._sub_drop_local(subscription_name, ifexists);
  IF result.slot_name IS NOT NULL THEN
    BEGIN
      PERFORM spock._drop_remote_slot(result.provider_dsn, result.slot_name, subscription_name);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'could not drop slot "%" on provider, you will probably have to drop it manually',
        result.slot_name USING DETAIL = SQLERRM;
    END;
  END IF;
  RETURN result.dropped;
END
$fn$;
`;

/** SQL creating this group's functions (installed last). */
export const SUBSCRIPTION_SQL: string = SUBSCRIPTION_HELPERS_SQL + SUBSCRIPTION_CREATE_SQL +
  SUBSCRIPTION_DROP_SQL + SUBSCRIPTION_ALTER_SQL + SUBSCRIPTION_SHOW_SQL;
