-- The SQL API's subscription alterations: enable, disable, interface, sets,
-- skip LSN, options (with the per-subscription conflict settings in
-- spock._sub_option), and the table sync requests (sub_alter_sync,
-- sub_resync_table, and sub_resync). Each records intent and notifies; restarting workers and
-- copying tables is the engine's job.

-- sub_enable / sub_disable. immediate = true: Spock kills the apply worker at once;
-- here the daemon reacts to the notification at commit, as for immediate = false.
CREATE OR REPLACE FUNCTION spock._sub_set_enabled(subscription_name name, enabled boolean,
    immediate boolean)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  in_block boolean := spock._in_transaction_block();
  sub spock.subscription := spock._sub_find(subscription_name, true);
  action text := CASE WHEN enabled THEN 'enable' ELSE 'disable' END;
BEGIN
  PERFORM spock._lock_local_node();
  UPDATE spock.subscription SET sub_enabled = enabled WHERE sub_id = sub.sub_id;
  IF immediate AND in_block THEN
    RAISE EXCEPTION 'alter_subscription_% with immediate = true cannot be run inside a transaction block',
      action USING ERRCODE = 'active_sql_transaction';
  END IF;
  PERFORM spock._notify('subscription', sub.sub_name, action);
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_enable(subscription_name name, immediate boolean DEFAULT false)
RETURNS boolean LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT spock._sub_set_enabled(subscription_name, true, immediate)
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_disable(subscription_name name, immediate boolean DEFAULT false)
RETURNS boolean LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT spock._sub_set_enabled(subscription_name, false, immediate)
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_alter_interface(subscription_name name, interface_name name)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
  new_if oid;
BEGIN
  PERFORM spock._lock_local_node();
  SELECT i.if_id INTO new_if FROM spock.node_interface i
  WHERE i.if_nodeid = sub.sub_origin AND i.if_name = interface_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node interface "%" not found for nod %', interface_name, sub.sub_origin
      USING ERRCODE = 'undefined_object';
  END IF;
  IF new_if = sub.sub_origin_if THEN
    RETURN false;
  END IF;
  UPDATE spock.subscription SET sub_origin_if = new_if WHERE sub_id = sub.sub_id;
  PERFORM spock._notify('subscription', sub.sub_name, 'alter');
  RETURN true;
END
$fn$;

-- The set name is not checked here: the provider checks it when streaming starts.
CREATE OR REPLACE FUNCTION spock.sub_add_repset(subscription_name name, replication_set name)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
BEGIN
  IF sub_add_repset.replication_set::text = ANY (coalesce(sub.sub_replication_sets, '{}')) THEN
    RETURN false;
  END IF;
  UPDATE spock.subscription
  SET sub_replication_sets = coalesce(sub_replication_sets, '{}') || sub_add_repset.replication_set::text
  WHERE sub_id = sub.sub_id;
  PERFORM spock._notify('subscription', sub.sub_name, 'alter');
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_remove_repset(subscription_name name, replication_set name)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
  sets text[] := coalesce(sub.sub_replication_sets, '{}');
  pos integer := array_position(sets, sub_remove_repset.replication_set::text);
BEGIN
  IF pos IS NULL THEN
    RETURN false;
  END IF;
  UPDATE spock.subscription SET sub_replication_sets = nullif(sets[:pos - 1] || sets[pos + 1:], '{}')
  WHERE sub_id = sub.sub_id;
  PERFORM spock._notify('subscription', sub.sub_name, 'alter');
  RETURN true;
END
$fn$;

-- The engine skips the one remote transaction whose commit LSN equals lsn, then clears it.
CREATE OR REPLACE FUNCTION spock.sub_alter_skiplsn(subscription_name name, lsn pg_lsn)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
BEGIN
  PERFORM spock._lock_local_node();
  UPDATE spock.subscription SET sub_skip_lsn = lsn WHERE sub_id = sub.sub_id;
  PERFORM spock._notify('subscription', sub.sub_name, 'alter');
  RETURN true;
END
$fn$;

-- Spock HEAD's sub_alter_options: keys forward_origins (only "all"),
-- apply_delay (an interval as a string) and skip_schema; {} changes nothing.
-- Our keys conflict_resolution and update_missing override the engine
-- settings of that name for this subscription (spock._sub_option); JSON null
-- removes an override.
CREATE OR REPLACE FUNCTION spock.sub_alter_options(subscription_name name, options jsonb)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
  opt record;
  bad text;
  allowed text[];
  overrides jsonb := '{}';
  merged jsonb;
  changed boolean := false;
BEGIN
  PERFORM spock._lock_local_node();
  IF jsonb_typeof(options) <> 'object' THEN
    RAISE EXCEPTION 'subscription options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR opt IN SELECT * FROM jsonb_each(options) LOOP
    IF opt.key IN ('forward_origins', 'skip_schema') THEN
      IF jsonb_typeof(opt.value) <> 'array' THEN
        RAISE EXCEPTION 'option "%" must be a JSON array of strings', opt.key
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      IF EXISTS (SELECT 1 FROM jsonb_array_elements(opt.value) e WHERE jsonb_typeof(e) <> 'string') THEN
        RAISE EXCEPTION 'option "%" must contain only strings', opt.key
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      IF opt.key = 'forward_origins' THEN
        SELECT e INTO bad FROM jsonb_array_elements_text(opt.value) e WHERE e <> 'all' LIMIT 1;
        IF FOUND THEN
          RAISE EXCEPTION 'invalid value "%" for option "forward_origins"', bad
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The only supported value is "all".';
        END IF;
        sub.sub_forward_origins := nullif(ARRAY(SELECT jsonb_array_elements_text(opt.value)), '{}');
      ELSE
        sub.sub_skip_schema := nullif(ARRAY(SELECT jsonb_array_elements_text(opt.value)), '{}');
      END IF;
    ELSIF opt.key = 'apply_delay' THEN
      IF jsonb_typeof(opt.value) <> 'string' THEN
        RAISE EXCEPTION 'option "apply_delay" must be a string' USING ERRCODE = 'invalid_parameter_value';
      END IF;
      sub.sub_apply_delay := (opt.value #>> '{}')::interval;
    ELSIF opt.key IN ('conflict_resolution', 'update_missing') THEN
      allowed := CASE opt.key
        WHEN 'conflict_resolution' THEN
          ARRAY['last_update_wins', 'first_update_wins', 'apply_remote', 'keep_local', 'error']
        ELSE ARRAY['error', 'insert'] END;
      IF jsonb_typeof(opt.value) <> 'null'
         AND (jsonb_typeof(opt.value) <> 'string' OR NOT (opt.value #>> '{}') = ANY (allowed)) THEN
        RAISE EXCEPTION 'invalid value % for option "%"', opt.value::text, opt.key
          USING ERRCODE = 'invalid_parameter_value',
            HINT = format('Valid values are: %s, or null to use the engine setting.',
                          array_to_string(allowed, ', '));
      END IF;
      overrides := overrides || jsonb_build_object(opt.key, opt.value);
    ELSE
      RAISE EXCEPTION 'unrecognized subscription option "%"', opt.key
        USING ERRCODE = 'invalid_parameter_value',
          HINT = 'Valid options are: "forward_origins", "apply_delay", "skip_schema", '
            '"conflict_resolution", "update_missing".';
    END IF;
    changed := true;
  END LOOP;
  IF NOT changed THEN
    RETURN false;
  END IF;
  UPDATE spock.subscription
  SET sub_forward_origins = sub.sub_forward_origins, sub_skip_schema = sub.sub_skip_schema,
      sub_apply_delay = sub.sub_apply_delay
  WHERE sub_id = sub.sub_id;
  IF overrides <> '{}' THEN
    merged := jsonb_strip_nulls(coalesce(
      (SELECT o.options FROM spock._sub_option o WHERE o.sub_id = sub.sub_id), '{}') || overrides);
    IF merged = '{}' THEN
      DELETE FROM spock._sub_option o WHERE o.sub_id = sub.sub_id;
    ELSE
      INSERT INTO spock._sub_option (sub_id, options) VALUES (sub.sub_id, merged)
      ON CONFLICT (sub_id) DO UPDATE SET options = excluded.options;
    END IF;
  END IF;
  PERFORM spock._notify('subscription', sub.sub_name, 'alter');
  RETURN true;
END
$fn$;

-- The local half of sub_alter_sync, given the provider's tables of the
-- subscribed sets (the CLI reads them itself and calls this directly): every
-- table without a sync row gets one (kind d, status i), truncated first when
-- asked; sync rows of tables no longer replicated are deleted.
CREATE OR REPLACE FUNCTION spock._sub_alter_sync_local(subscription_name name, nspnames text[],
  relnames text[], truncate boolean)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
  remote record;
BEGIN
  IF cardinality(nspnames) <> cardinality(relnames) THEN
    RAISE EXCEPTION 'spock._sub_alter_sync_local() needs as many schema names as table names'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR remote IN SELECT DISTINCT t.nsp, t.rel FROM unnest(nspnames, relnames) AS t(nsp, rel) ORDER BY 1, 2 LOOP
    IF NOT EXISTS (SELECT 1 FROM spock.local_sync_status y WHERE y.sync_subid = sub.sub_id
                   AND y.sync_nspname = remote.nsp AND y.sync_relname = remote.rel) THEN
      INSERT INTO spock.local_sync_status (sync_kind, sync_subid, sync_nspname, sync_relname,
        sync_status, sync_statuslsn)
      VALUES ('d', sub.sub_id, remote.nsp, remote.rel, 'i', '0/0');
      IF _sub_alter_sync_local.truncate THEN
        PERFORM spock._truncate_table(remote.nsp, remote.rel);
      END IF;
    END IF;
  END LOOP;
  DELETE FROM spock.local_sync_status y
  WHERE y.sync_subid = sub.sub_id AND y.sync_nspname IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM unnest(nspnames, relnames) AS t(nsp, rel)
                    WHERE t.nsp = y.sync_nspname AND t.rel = y.sync_relname);
  PERFORM spock._notify('subscription', sub.sub_name, 'sync');
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_alter_sync(subscription_name name, truncate boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
  dblink_schema name := spock._dblink_schema();
  origin_dsn text;
  nsps text[];
  rels text[];
  detail text;
  code text;
BEGIN
  IF dblink_schema IS NULL THEN
    RAISE EXCEPTION 'spock.sub_alter_sync() needs the dblink extension to read the provider''s tables'
      USING ERRCODE = 'feature_not_supported',
        HINT = 'Run "spock sub alter-sync" from the command line instead, or install dblink and re-run "spock install".';
  END IF;
  SELECT i.if_dsn INTO origin_dsn FROM spock.node_interface i WHERE i.if_id = sub.sub_origin_if;
  BEGIN
    EXECUTE format(
      'SELECT coalesce(array_agg(t.nspname ORDER BY t.nspname, t.relname), ''{}''),
              coalesce(array_agg(t.relname ORDER BY t.nspname, t.relname), ''{}'')
       FROM %I.dblink(%L, %L) AS t(nspname text, relname text)',
      dblink_schema, spock._dblink_dsn(origin_dsn),
      format('SELECT DISTINCT nspname::text, relname::text FROM spock.tables WHERE set_name = ANY (%L::text[])',
        coalesce(sub.sub_replication_sets, '{}')))
    INTO nsps, rels;
  EXCEPTION
    WHEN sqlclient_unable_to_establish_sqlconnection THEN
      GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
      RAISE EXCEPTION 'could not connect to the postgresql server: %',
        coalesce(nullif(btrim(detail, E' \n'), ''), SQLERRM)
        USING ERRCODE = 'sqlclient_unable_to_establish_sqlconnection';
    WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE;
      RAISE EXCEPTION 'could not get table list: %', SQLERRM USING ERRCODE = code;
  END;
  RETURN spock._sub_alter_sync_local(subscription_name, nsps, rels, sub_alter_sync.truncate);
END
$fn$;

CREATE OR REPLACE FUNCTION spock.sub_resync_table(subscription_name name, relation regclass,
  truncate boolean DEFAULT true)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
  rel record;
  old_status "char";
BEGIN
  SELECT n.nspname::text AS nspname, c.relname::text AS relname, c.relkind INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  IF rel.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
  END IF;
  SELECT y.sync_status INTO old_status FROM spock.local_sync_status y
  WHERE y.sync_subid = sub.sub_id AND y.sync_nspname = rel.nspname AND y.sync_relname = rel.relname
  FOR UPDATE;
  IF FOUND THEN
    IF old_status NOT IN ('r', 'y', '') THEN
      RAISE EXCEPTION 'table %.% is already being synchronized', rel.nspname, rel.relname
        USING ERRCODE = 'object_in_use';
    END IF;
    UPDATE spock.local_sync_status y SET sync_status = 'i', sync_statuslsn = '0/0'
    WHERE y.sync_subid = sub.sub_id AND y.sync_nspname = rel.nspname AND y.sync_relname = rel.relname;
  ELSE
    INSERT INTO spock.local_sync_status (sync_kind, sync_subid, sync_nspname, sync_relname,
      sync_status, sync_statuslsn)
    VALUES ('d', sub.sub_id, rel.nspname, rel.relname, 'i', '0/0');
  END IF;
  IF sub_resync_table.truncate THEN
    PERFORM spock._truncate_table(rel.nspname, rel.relname);
  END IF;
  PERFORM spock._notify('subscription', sub.sub_name, 'resync');
  RETURN true;
END
$fn$;

-- sub_resync (not in Spock): every table copied again under a new slot, the way out
-- of a slot the provider invalidated. The subscription's sync restarts at its data
-- step: the engine drops the old slot, creates a new one, truncates each table and
-- copies it; the structure is kept. The node's own writes that its peers have not
-- received yet are emptied with the tables.
CREATE OR REPLACE FUNCTION spock.sub_resync(subscription_name name)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  sub spock.subscription := spock._sub_find(subscription_name, true);
BEGIN
  PERFORM spock._lock_local_node();
  UPDATE spock.local_sync_status y SET sync_kind = 'd', sync_status = 'd', sync_statuslsn = '0/0'
  WHERE y.sync_subid = sub.sub_id AND y.sync_nspname IS NULL AND y.sync_relname IS NULL;
  IF NOT FOUND THEN
    INSERT INTO spock.local_sync_status (sync_kind, sync_subid, sync_nspname, sync_relname,
      sync_status, sync_statuslsn)
    VALUES ('d', sub.sub_id, NULL, NULL, 'd', '0/0');
  END IF;
  PERFORM spock._notify('subscription', sub.sub_name, 'resync');
  RETURN true;
END
$fn$;
