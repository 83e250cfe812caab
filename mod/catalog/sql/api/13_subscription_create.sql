

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
    PERFORM spock._ensure_origin(slot);
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
