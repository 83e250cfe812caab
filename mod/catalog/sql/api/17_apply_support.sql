-- SQL functions the apply engine calls inside its row statements: the
-- tiebreaker of Spock's `conflict_resolve_by_timestamp`, the node behind a
-- replication origin, the error raised when a conflict must go to exception
-- handling, and the one place each of these is written: a resolution in
-- spock.resolutions, a remote delete's tombstones. Building the statements,
-- and with them the conflict rule itself, is `apply/`'s job
-- (mod/apply/conflicts/statements.ts), so that it is inlined in each one.

-- The node that wrote a row with replication origin roident: 0 is the local
-- node, another origin is the provider of the subscription it belongs to
-- (origins are named after subscription slots). NULL when unknown (e.g. the
-- origin of a finished data copy).
CREATE OR REPLACE FUNCTION spock._origin_node(roident oid) RETURNS oid
LANGUAGE sql STABLE AS $fn$
  SELECT CASE WHEN roident = 0 THEN (SELECT l.node_id FROM spock.local_node l)
    ELSE (SELECT s.sub_origin FROM pg_catalog.pg_replication_origin o
          JOIN spock.subscription s ON s.sub_slot_name = o.roname
          WHERE o.roident = _origin_node.roident LIMIT 1) END
$fn$;

-- A node's tiebreaker: info->>'tiebreaker' when set, else its id.
CREATE OR REPLACE FUNCTION spock._tiebreaker(node_id oid) RETURNS int8
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce((n.info ->> 'tiebreaker')::int8, n.node_id::int8)
  FROM spock.node n WHERE n.node_id = _tiebreaker.node_id
$fn$;

-- Raises the error a conflict or a missing row becomes under
-- conflict_resolution = error or update_missing = error (SQLSTATE SP001 /
-- SP002), so the remote transaction goes to exception handling.
CREATE OR REPLACE FUNCTION spock._apply_conflict_error(conflict_type text, relation text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
  IF conflict_type = 'update_missing' THEN
    RAISE EXCEPTION 'logical replication did not find row to be updated in replication target relation %',
      relation USING ERRCODE = 'SP002';
  END IF;
  RAISE EXCEPTION 'conflict % on relation % (conflict_resolution = error)', conflict_type, relation
    USING ERRCODE = 'SP001';
END
$fn$;

-- A fast UPDATE or DELETE of a remote transaction (one row, or a batch of
-- expected rows) changed fewer rows than it was sent for: there is a
-- conflict to handle. SQLSTATE SP003 fails the statement, and the daemon
-- applies the transaction again with conflict handling. (Called only then;
-- earlier builds counted rows in a setting first, and their body raises the
-- same way.)
CREATE OR REPLACE FUNCTION spock._check_applied(expected integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
  RAISE EXCEPTION 'remote changes found fewer than the % rows they were sent for: applying the transaction again with conflict handling',
    expected USING ERRCODE = 'SP003';
END
$fn$;

-- Equal commit timestamps: the tiebreaker of the node that wrote the local
-- row against the remote node's; the lower wins, equal lets the remote win.
CREATE OR REPLACE FUNCTION spock._tiebreak_remote_wins(local_origin oid, remote_node oid)
RETURNS boolean LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(spock._tiebreaker(spock._origin_node(local_origin))
    >= spock._tiebreaker(remote_node), true)
$fn$;

-- Records one resolved conflict in spock.resolutions, with Spock's columns:
-- the relation as quote_ident(schema) || '.' || quote_ident(table), and the
-- node that wrote the local row behind its replication origin.
CREATE OR REPLACE FUNCTION spock._record_resolution(node_name text, nspname text,
  relname text, index_name text, conflict_type text, resolution text, local_origin oid,
  local_tuple text, local_xid xid, local_ts timestamptz, remote_node int, remote_tuple text,
  remote_xid xid, remote_ts timestamptz, remote_lsn pg_lsn)
RETURNS boolean LANGUAGE sql VOLATILE AS $fn$
  INSERT INTO spock.resolutions (node_name, log_time, relname, idxname, conflict_type,
    conflict_resolution, local_origin, local_tuple, local_xid, local_timestamp, remote_origin,
    remote_tuple, remote_xid, remote_timestamp, remote_lsn)
  VALUES (_record_resolution.node_name, now(),
    quote_ident(_record_resolution.nspname) || '.' || quote_ident(_record_resolution.relname),
    _record_resolution.index_name, _record_resolution.conflict_type,
    _record_resolution.resolution, spock._origin_node(_record_resolution.local_origin)::int,
    _record_resolution.local_tuple, _record_resolution.local_xid, _record_resolution.local_ts,
    _record_resolution.remote_node, _record_resolution.remote_tuple,
    _record_resolution.remote_xid, _record_resolution.remote_ts, _record_resolution.remote_lsn)
  RETURNING true
$fn$;

-- When a tombstone's delete happened: the remote commit time, or the local
-- deleting transaction's commit time (NULL while in progress or aborted).
CREATE OR REPLACE FUNCTION spock._tombstone_time(deleted_at timestamptz, deleted_xid xid8)
RETURNS timestamptz LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(deleted_at, pg_catalog.pg_xact_commit_timestamp(pg_catalog.xid(deleted_xid)))
$fn$;

-- Leaves a tombstone for each key of a table deleted by a remote change
-- committed at deleted_at, unless a later delete of the key is already
-- known, so that an older change arriving later does not bring the row
-- back. Returns how many it wrote. (Local deletes have their trigger,
-- _record_local_delete, which records the deleting transaction instead.)
CREATE OR REPLACE FUNCTION spock._remember_remote_deletes(nspname text, relname text,
  keys jsonb[], deleted_at timestamptz)
RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
  WITH written AS (
    INSERT INTO spock._tombstone AS s (nspname, relname, key, deleted_at)
    SELECT _remember_remote_deletes.nspname, _remember_remote_deletes.relname, k.key,
      _remember_remote_deletes.deleted_at
    FROM unnest(_remember_remote_deletes.keys) AS k(key)
    ON CONFLICT (nspname, relname, key) DO UPDATE
      SET deleted_at = excluded.deleted_at, deleted_xid = NULL
      WHERE coalesce(spock._tombstone_time(s.deleted_at, s.deleted_xid) < excluded.deleted_at, true)
    RETURNING 1)
  SELECT count(*) FROM written
$fn$;

-- AFTER DELETE trigger of replicated tables (an ordinary trigger: it fires
-- for local deletes, not under the apply's replica role). Arguments: schema,
-- table, then the key columns. SECURITY DEFINER, as the deleting role may
-- have no rights on schema spock; no SET clause (it would cost more than the
-- insert, on every row): every name in the body is schema-qualified instead.
CREATE OR REPLACE FUNCTION spock._record_local_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
DECLARE
  old_row jsonb := pg_catalog.to_jsonb(OLD);
  deleted_key jsonb;
BEGIN
  SELECT pg_catalog.jsonb_object_agg(a.name, pg_catalog.jsonb_object_field(old_row, a.name))
  INTO deleted_key
  FROM pg_catalog.unnest(TG_ARGV[2:]) AS a(name);
  INSERT INTO spock._tombstone AS t (nspname, relname, key, deleted_at, deleted_xid)
  VALUES (TG_ARGV[0], TG_ARGV[1], deleted_key, NULL, pg_catalog.pg_current_xact_id())
  ON CONFLICT (nspname, relname, key) DO UPDATE
    SET deleted_at = NULL, deleted_xid = excluded.deleted_xid;
  RETURN NULL;
END
$fn$;

-- Creates (or, with enable = false, drops) the tombstone trigger of a table,
-- keyed by its primary key or replica identity index; none without one, and
-- none of its own on a partition (its partitioned table's trigger covers it).
CREATE OR REPLACE FUNCTION spock._tombstone_trigger(relation regclass, enable boolean)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel record;
  key_columns text[];
BEGIN
  SELECT n.nspname::text AS nspname, c.relname::text AS relname, c.relreplident,
    c.relispartition INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  IF rel.relispartition THEN
    -- A partitioned table's row trigger is cloned to its partitions.
    RETURN;
  END IF;
  EXECUTE format('DROP TRIGGER IF EXISTS spock_tombstone ON %s', relation);
  IF NOT enable THEN
    RETURN;
  END IF;
  SELECT array_agg(a.attname::text ORDER BY k.ord) INTO key_columns
  FROM pg_catalog.pg_index i
  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
  WHERE i.indrelid = relation
    AND CASE rel.relreplident WHEN 'i' THEN i.indisreplident ELSE i.indisprimary END;
  IF key_columns IS NULL OR rel.relreplident = 'n' THEN
    RETURN;
  END IF;
  EXECUTE format('CREATE TRIGGER spock_tombstone AFTER DELETE ON %s FOR EACH ROW '
    'EXECUTE FUNCTION spock._record_local_delete(%s)', relation,
    (SELECT string_agg(quote_literal(a), ', ')
     FROM unnest(ARRAY[rel.nspname, rel.relname] || key_columns) AS a));
END
$fn$;

-- Drops the tombstones no change can still be older than: deleted before
-- every provider's last applied commit (less a minute for commit-time
-- skew), and those of aborted local deletes. Returns how many went.
CREATE OR REPLACE FUNCTION spock.cleanup_tombstones() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  horizon timestamptz;
  deleted bigint;
BEGIN
  SELECT min(p.remote_commit_ts) - interval '1 minute' INTO horizon
  FROM spock.progress p JOIN spock.local_node l ON l.node_id = p.node_id;
  DELETE FROM spock._tombstone t
  WHERE spock._tombstone_time(t.deleted_at, t.deleted_xid) < horizon
     OR (t.deleted_xid IS NOT NULL AND pg_catalog.pg_xact_status(t.deleted_xid) = 'aborted');
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$fn$;

-- "col1" IS NOT DISTINCT FROM $1[1]::type1 AND … for the named columns of a relation (types from
-- the catalog, names quoted), for the slow paths below.
CREATE OR REPLACE FUNCTION spock._match_sql(relation regclass, names text[], param integer)
RETURNS text LANGUAGE sql STABLE AS $fn$
  SELECT string_agg(format('t.%I IS NOT DISTINCT FROM ($%s[%s])::%s', a.attname, param, k.i,
      format_type(a.atttypid, a.atttypmod)), ' AND ' ORDER BY k.i)
  FROM unnest(names) WITH ORDINALITY AS k(name, i)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = relation AND a.attname = k.name
$fn$;

-- ($1[1])::type1 AS "col1", … for the named columns of a relation.
CREATE OR REPLACE FUNCTION spock._values_sql(relation regclass, names text[], param integer)
RETURNS text LANGUAGE sql STABLE AS $fn$
  SELECT string_agg(format('($%s[%s])::%s AS %I', param, k.i,
      format_type(a.atttypid, a.atttypmod), a.attname), ', ' ORDER BY k.i)
  FROM unnest(names) WITH ORDINALITY AS k(name, i)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = relation AND a.attname = k.name
$fn$;

-- The slow path of a remote UPDATE or DELETE that changed no row: finds out
-- why (the row is missing, or kept by the resolution), applies update_missing
-- (a newer tombstone skips it; 'insert' inserts the sent columns; 'error'
-- raises SP002), records the conflict in spock.resolutions when asked, and
-- returns it. Nothing when the row is there and not a conflict (a row filter
-- or a concurrent change kept it, or the row filter). "change" is what the
-- statement knows for good (kind update|delete, key and new column names,
-- remote node, session origin, update_missing, save, node_name, index); the
-- row's values and the remote commit come as the other arguments.
CREATE OR REPLACE FUNCTION spock._row_not_changed(relation regclass, change jsonb,
  key_values text[], new_values text[], remote_ts timestamptz, remote_xid text,
  remote_lsn text, passes boolean)
RETURNS TABLE (conflict_type text, resolution text, index_name text, recorded boolean,
  local_xid text, local_ts text, local_node int8)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  key_names text[] := ARRAY(SELECT jsonb_array_elements_text(change -> 'key_names'));
  new_names text[] := ARRAY(SELECT jsonb_array_elements_text(change -> 'new_names'));
  is_update boolean := change ->> 'kind' = 'update';
  rel record;
  found_row record;
  local_json text;
  remote_json text;
  deleted_key jsonb;
  gone boolean := false;
BEGIN
  IF NOT passes THEN
    RETURN;
  END IF;
  SELECT n.nspname::text AS nspname, c.relname::text AS relname INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  EXECUTE format('SELECT t.xmin AS xid, c.timestamp AS ts, c.roident AS origin, '
      'row_to_json(t.*)::text AS tup FROM %s AS t LEFT JOIN LATERAL '
      'pg_catalog.pg_xact_commit_timestamp_origin(t.xmin) AS c ON true WHERE %s LIMIT 1',
      relation, spock._match_sql(relation, key_names, 1))
    INTO found_row USING key_values;
  IF found_row.xid IS NOT NULL THEN
    IF found_row.ts IS NULL OR found_row.origin = (change ->> 'session_origin')::oid THEN
      RETURN;
    END IF;
    conflict_type := CASE WHEN is_update THEN 'update_origin_differs' ELSE 'delete_exists' END;
    resolution := CASE WHEN is_update THEN 'keep_local' ELSE 'skip' END;
    local_json := found_row.tup;
  ELSE
    EXECUTE format('SELECT EXISTS (SELECT FROM spock._tombstone s WHERE s.nspname = $2 '
        'AND s.relname = $3 AND s.key = (SELECT to_jsonb(k.*) FROM (SELECT %s) AS k) '
        'AND spock._tombstone_time(s.deleted_at, s.deleted_xid) >= $4)',
        spock._values_sql(relation, key_names, 1))
      INTO gone USING key_values, rel.nspname, rel.relname, remote_ts;
    IF NOT is_update THEN
      conflict_type := 'delete_missing';
      resolution := 'skip';
      EXECUTE format('SELECT to_jsonb(k.*) FROM (SELECT %s) AS k',
          spock._values_sql(relation, key_names, 1))
        INTO deleted_key USING key_values;
      PERFORM spock._remember_remote_deletes(rel.nspname, rel.relname, ARRAY[deleted_key],
        remote_ts);
    ELSE
      conflict_type := 'update_missing';
      IF gone THEN
        resolution := 'skip';
      ELSIF change ->> 'update_missing' = 'insert' THEN
        EXECUTE format('INSERT INTO %s (%s) SELECT %s', relation,
            (SELECT string_agg(quote_ident(n), ', ') FROM unnest(new_names) AS n),
            spock._values_sql(relation, new_names, 1))
          USING new_values;
        resolution := 'apply_remote';
      ELSE
        PERFORM spock._apply_conflict_error('update_missing', rel.nspname || '.' || rel.relname);
      END IF;
    END IF;
  END IF;
  index_name := change ->> 'index';
  recorded := true;
  local_xid := found_row.xid::text;
  local_ts := found_row.ts::text;
  local_node := spock._origin_node(found_row.origin)::int8;
  IF (change ->> 'save')::boolean THEN
    EXECUTE format('SELECT row_to_json(v.*)::text FROM (SELECT %s) AS v',
        spock._values_sql(relation, CASE WHEN is_update THEN new_names ELSE key_names END, 1))
      INTO remote_json USING CASE WHEN is_update THEN new_values ELSE key_values END;
    PERFORM spock._record_resolution(change ->> 'node_name', rel.nspname, rel.relname,
      index_name, conflict_type, resolution, found_row.origin, local_json, found_row.xid,
      found_row.ts, (change ->> 'remote_node')::int, remote_json, remote_xid::xid, remote_ts,
      remote_lsn::pg_lsn);
  END IF;
  RETURN NEXT;
END
$fn$;

-- Reports a conflict found inside a statement (an INSERT's upsert) to the
-- apply session as a NOTICE with SQLSTATE SP100 and the conflict as JSON in
-- DETAIL (no row values), and records it in spock.resolutions when asked.
CREATE OR REPLACE FUNCTION spock._report_conflict(relation regclass, change jsonb,
  conflict_type text, resolution text, local_xid xid, local_ts timestamptz, local_origin oid,
  local_row text, remote_names text[], remote_values text[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel record;
  local_node int8 := spock._origin_node(local_origin)::int8;
  remote_json text;
BEGIN
  SELECT n.nspname::text AS nspname, c.relname::text AS relname INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  RAISE NOTICE 'spock conflict' USING ERRCODE = 'SP100', DETAIL = json_build_object(
    'relation', change ->> 'relation', 'conflict_type', conflict_type, 'resolution', resolution,
    'index_name', change ->> 'index', 'local_xid', local_xid::text, 'local_ts', local_ts::text,
    'local_node', local_node)::text;
  IF (change ->> 'save')::boolean THEN
    EXECUTE format('SELECT row_to_json(v.*)::text FROM (SELECT %s) AS v',
        spock._values_sql(relation, remote_names, 1))
      INTO remote_json USING remote_values;
    PERFORM spock._record_resolution(change ->> 'node_name', rel.nspname, rel.relname,
      change ->> 'index', conflict_type, resolution, local_origin, local_row, local_xid, local_ts,
      (change ->> 'remote_node')::int, remote_json, (change ->> 'remote_xid')::xid,
      (change ->> 'remote_ts')::timestamptz, (change ->> 'remote_lsn')::pg_lsn);
  END IF;
END
$fn$;

-- The ON CONFLICT condition of an INSERT: called only for a row whose key
-- exists, with that row's xmin and image and whether the remote change wins
-- over it (the statement's conflict rule). Reports insert_exists and
-- returns the decision.
CREATE OR REPLACE FUNCTION spock._insert_exists(relation regclass, local_xmin xid,
  local_row text, change jsonb, wins boolean)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  commit_ts record;
BEGIN
  SELECT c.timestamp, c.roident INTO commit_ts
  FROM pg_catalog.pg_xact_commit_timestamp_origin(local_xmin) c;
  PERFORM spock._report_conflict(relation, change, 'insert_exists',
    CASE WHEN wins THEN 'apply_remote' ELSE 'keep_local' END, local_xmin, commit_ts.timestamp,
    commit_ts.roident, local_row,
    ARRAY(SELECT jsonb_array_elements_text(change -> 'new_names')),
    ARRAY(SELECT jsonb_array_elements_text(change -> 'new_values')));
  RETURN wins;
END
$fn$;

-- Whether an INSERT's key was deleted at or after the remote commit (a
-- tombstone): then the row is not inserted, and that is reported.
CREATE OR REPLACE FUNCTION spock._insert_deleted_later(relation regclass, key jsonb, change jsonb)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel record;
BEGIN
  SELECT n.nspname::text AS nspname, c.relname::text AS relname INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  IF NOT EXISTS (SELECT FROM spock._tombstone s WHERE s.nspname = rel.nspname
      AND s.relname = rel.relname AND s.key = _insert_deleted_later.key
      AND spock._tombstone_time(s.deleted_at, s.deleted_xid) >= (change ->> 'remote_ts')::timestamptz) THEN
    RETURN false;
  END IF;
  PERFORM spock._report_conflict(relation, change, 'insert_exists', 'skip', NULL, NULL, NULL,
    NULL, ARRAY(SELECT jsonb_array_elements_text(change -> 'new_names')),
    ARRAY(SELECT jsonb_array_elements_text(change -> 'new_values')));
  RETURN true;
END
$fn$;
