

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
