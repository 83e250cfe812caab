-- Tables in replication sets: repset_add_table, repset_add_all_tables,
-- repset_remove_table, repset_add_partition, repset_remove_partition and
-- repset_show_table, with Spock 5.0's checks and TABLESYNC queue messages; the
-- set's publication follows each change (helpers in 07_repset.sql). Row-filter
-- validation is 08_repset_filter.sql's; sequences are 10_repset_seq.sql's.

-- Announces a table's row filters and column lists in every set of this node,
-- as they are after a change, to every subscriber: a transactional logical
-- message, so each subscriber switches exactly between the provider
-- transactions committed before and after this one. Sent when the table has a
-- row filter somewhere, or when the change removed one (changed_filter): only
-- then do subscribers evaluate filters, and receive columns they must not write.
CREATE OR REPLACE FUNCTION spock._announce_row_filters(relation regclass, changed_filter boolean)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  sets json;
BEGIN
  SELECT json_object_agg(s.set_name, json_build_object('row_filter', r.set_row_filter,
      'columns', r.set_att_list) ORDER BY s.set_name),
    changed_filter OR bool_or(r.set_row_filter IS NOT NULL)
  INTO sets, changed_filter
  FROM spock.replication_set_table r
  JOIN spock.replication_set s ON s.set_id = r.set_id
  JOIN spock.local_node l ON l.node_id = s.set_nodeid
  WHERE r.set_reloid = relation;
  IF NOT coalesce(changed_filter, false) THEN
    RETURN;
  END IF;
  PERFORM pg_catalog.pg_logical_emit_message(true, 'spock_row_filter',
    json_build_object('schema', n.nspname, 'table', c.relname,
      'sets', coalesce(sets, '{}'::json))::text)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
END
$fn$;

-- Adds one relation to a set with Spock's per-relation checks, then to the
-- set's publication. Adding it twice violates the primary key, as in Spock.
CREATE OR REPLACE FUNCTION spock._repset_add_rel(target spock.replication_set, relation regclass,
    att_list text[], row_filter text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', relation);
  SELECT c.* INTO rel FROM pg_catalog.pg_class c WHERE c.oid = relation;
  IF rel.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '"%" is not a table', rel.relname USING ERRCODE = 'wrong_object_type';
  END IF;
  IF rel.relpersistence <> 'p' THEN
    RAISE EXCEPTION 'UNLOGGED and TEMP tables cannot be replicated'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF (target.replicate_update OR target.replicate_delete)
     AND NOT spock._has_replica_identity_index(relation) THEN
    RAISE EXCEPTION 'table % cannot be added to replication set %', rel.relname, target.set_name
      USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'table does not have PRIMARY KEY and given replication set is configured to replicate UPDATEs and/or DELETEs',
      HINT = 'Add a PRIMARY KEY to the table';
  END IF;
  INSERT INTO spock.replication_set_table (set_id, set_reloid, set_att_list, set_row_filter)
  VALUES (target.set_id, relation, CASE WHEN cardinality(att_list) > 0 THEN att_list END, row_filter);
  PERFORM spock._pubs_refresh(relation);
  PERFORM spock._tombstone_trigger(relation, true);
  PERFORM spock._announce_row_filters(relation, row_filter IS NOT NULL);
END
$fn$;

-- Removes one relation from a set and its publication; whether it was there.
CREATE OR REPLACE FUNCTION spock._repset_remove_rel(set_id oid, relation regclass)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  removed record;
BEGIN
  DELETE FROM spock.replication_set_table r
  WHERE r.set_id = _repset_remove_rel.set_id AND r.set_reloid = relation
  RETURNING r.set_row_filter INTO removed;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM spock._pubs_refresh(relation);
  IF NOT EXISTS (SELECT 1 FROM spock.replication_set_table r WHERE r.set_reloid = relation) THEN
    PERFORM spock._tombstone_trigger(relation, false);
  END IF;
  PERFORM spock._announce_row_filters(relation, removed.set_row_filter IS NOT NULL);
  RETURN true;
END
$fn$;

-- Queues Spock's TABLESYNC ('A') message for the set's subscribers.
CREATE OR REPLACE FUNCTION spock._queue_table_sync(set_name name, relation regclass)
RETURNS void LANGUAGE sql VOLATILE AS $fn$
  SELECT spock._queue_command(current_user, ARRAY[set_name::text], 'A',
    format('{"schema_name": %s,"table_name": %s}', to_json(n.nspname::text),
      to_json(c.relname::text))::json)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation
$fn$;

-- A relation and, when it is partitioned and partitions are included, every
-- partition below it (Spock's find_all_inheritors), parent first.
CREATE OR REPLACE FUNCTION spock._rel_and_partitions(relation regclass, include_partitions boolean)
RETURNS SETOF regclass LANGUAGE sql STABLE AS $fn$
  SELECT t.relid FROM pg_catalog.pg_partition_tree(relation) t
  WHERE include_partitions AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = relation) = 'p'
  UNION ALL
  SELECT relation WHERE NOT (include_partitions
    AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = relation) = 'p')
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_add_table(set_name name, relation regclass,
    synchronize_data boolean DEFAULT false, columns text[] DEFAULT NULL,
    row_filter text DEFAULT NULL, include_partitions boolean DEFAULT true)
RETURNS boolean CALLED ON NULL INPUT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.replication_set;
  missing text;
  parsed_filter text;
  member regclass;
BEGIN
  IF set_name IS NULL THEN
    RAISE EXCEPTION 'set_name cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  ELSIF relation IS NULL THEN
    RAISE EXCEPTION 'relation cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  ELSIF synchronize_data IS NULL THEN
    RAISE EXCEPTION 'synchronize_data cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  target := spock._repset_get(set_name);
  EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', relation);
  IF columns IS NOT NULL THEN
    SELECT col INTO missing FROM unnest(columns) AS u(col)
    WHERE col IS NULL OR NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = u.col)
    LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'table % does not have column %', (SELECT format('%I.%I', n.nspname, c.relname)
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = relation), missing USING ERRCODE = 'syntax_error';
    END IF;
    IF EXISTS (
      SELECT 1 FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
        AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
      WHERE c.oid = relation AND NOT (a.attname::text = ANY (columns))) THEN
      RAISE EXCEPTION 'REPLICA IDENTITY columns must be replicated' USING ERRCODE = 'syntax_error';
    END IF;
  END IF;
  IF row_filter IS NOT NULL THEN
    parsed_filter := spock._row_filter_parse(relation, row_filter);
  END IF;
  FOR member IN SELECT * FROM spock._rel_and_partitions(relation, include_partitions) LOOP
    PERFORM spock._repset_add_rel(target, member, columns, parsed_filter);
  END LOOP;
  IF synchronize_data THEN
    PERFORM spock._queue_table_sync(target.set_name, relation);
  END IF;
  PERFORM spock._notify('replication_set', set_name, 'add_table');
  RETURN true;
END
$fn$;

-- Every permanent table (and partitioned table) of the schemas not yet in the
-- set, by name; partitions are added but only the others are queued for sync.
CREATE OR REPLACE FUNCTION spock.repset_add_all_tables(set_name name, schema_names text[],
    synchronize_data boolean DEFAULT false)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.replication_set;
  schema_name text;
  nsp oid;
  rel record;
BEGIN
  target := spock._repset_get(set_name);
  FOREACH schema_name IN ARRAY schema_names LOOP
    nsp := spock._schema_oid(schema_name);
    FOR rel IN
      SELECT c.oid::regclass AS relation, c.relispartition FROM pg_catalog.pg_class c
      WHERE c.relnamespace = nsp AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
        AND nsp <> 'pg_catalog'::regnamespace AND nsp <> 'pg_toast'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM spock.replication_set_table r
                        WHERE r.set_id = target.set_id AND r.set_reloid = c.oid)
      ORDER BY c.relname
    LOOP
      PERFORM spock._repset_add_rel(target, rel.relation, NULL, NULL);
      IF synchronize_data AND NOT rel.relispartition THEN
        PERFORM spock._queue_table_sync(target.set_name, rel.relation);
      END IF;
    END LOOP;
  END LOOP;
  PERFORM spock._notify('replication_set', set_name, 'add_table');
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_remove_table(set_name name, relation regclass,
    include_partitions boolean DEFAULT true)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.replication_set;
  member regclass;
BEGIN
  target := spock._repset_get(set_name);
  FOR member IN SELECT * FROM spock._rel_and_partitions(relation, include_partitions) LOOP
    IF NOT spock._repset_remove_rel(target.set_id, member)
       AND NOT (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = member) THEN
      RAISE EXCEPTION 'replication set table mapping %:% not found', target.set_id, member::oid
        USING ERRCODE = 'internal_error';
    END IF;
  END LOOP;
  PERFORM spock._notify('replication_set', set_name, 'remove_table');
  RETURN true;
END
$fn$;

-- Adds partitions of parent (one, or all) to every set the parent is in, with
-- the parent's column list and the given row filter or else the parent's.
-- Returns how many memberships were added; 0 when parent is not partitioned.
-- Unlike Spock 5.0, a parent's filter is not carried over to the next set, and
-- a given partition must belong to parent.
CREATE OR REPLACE FUNCTION spock.repset_add_partition(parent regclass, partition regclass DEFAULT NULL,
    row_filter text DEFAULT NULL)
RETURNS int CALLED ON NULL INPUT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  parsed_filter text;
  parent_row record;
  member regclass;
  added int := 0;
BEGIN
  IF parent IS NULL THEN
    RAISE EXCEPTION 'parent table cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF row_filter IS NOT NULL THEN
    parsed_filter := spock._row_filter_parse(parent, row_filter);
  END IF;
  PERFORM spock._local_node_id();
  IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = parent) <> 'p' THEN
    RETURN 0;
  END IF;
  IF partition IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_partition_tree(parent) t WHERE t.relid = partition) THEN
    RAISE EXCEPTION '"%" is not a partition of "%"', partition, parent
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR parent_row IN
    SELECT s, r.set_att_list, r.set_row_filter FROM spock.replication_set_table r
    JOIN spock.replication_set s ON s.set_id = r.set_id
    WHERE r.set_reloid = parent AND s.set_nodeid = spock._local_node_id()
  LOOP
    FOR member IN
      SELECT t.relid FROM pg_catalog.pg_partition_tree(parent) t
      WHERE t.relid <> parent AND (partition IS NULL OR t.relid = partition)
        AND NOT EXISTS (SELECT 1 FROM spock.replication_set_table r
                        WHERE r.set_id = (parent_row.s).set_id AND r.set_reloid = t.relid)
    LOOP
      PERFORM spock._repset_add_rel(parent_row.s, member, parent_row.set_att_list,
        coalesce(parsed_filter, parent_row.set_row_filter));
      added := added + 1;
    END LOOP;
    PERFORM spock._notify('replication_set', (parent_row.s).set_name, 'add_partition');
  END LOOP;
  RETURN added;
END
$fn$;

-- Returns the number of memberships removed (Spock counts attempts).
CREATE OR REPLACE FUNCTION spock.repset_remove_partition(parent regclass,
    partition regclass DEFAULT NULL)
RETURNS int CALLED ON NULL INPUT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  set_row record;
  member regclass;
  removed int := 0;
BEGIN
  IF parent IS NULL THEN
    RAISE EXCEPTION 'parent table cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM spock._local_node_id();
  IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = parent) <> 'p' THEN
    RETURN 0;
  END IF;
  FOR set_row IN
    SELECT s.set_id, s.set_name FROM spock.replication_set_table r
    JOIN spock.replication_set s ON s.set_id = r.set_id
    WHERE r.set_reloid = parent AND s.set_nodeid = spock._local_node_id()
  LOOP
    FOR member IN
      SELECT t.relid FROM pg_catalog.pg_partition_tree(parent) t
      WHERE t.relid <> parent AND (partition IS NULL OR t.relid = partition)
    LOOP
      IF spock._repset_remove_rel(set_row.set_id, member) THEN
        removed := removed + 1;
      ELSIF partition IS NOT NULL THEN
        RAISE EXCEPTION 'replication set table mapping %:% not found', set_row.set_id, member::oid
          USING ERRCODE = 'internal_error';
      END IF;
    END LOOP;
    PERFORM spock._notify('replication_set', set_row.set_name, 'remove_partition');
  END LOOP;
  RETURN removed;
END
$fn$;

-- What a subscriber's sync asks the provider about one table: its columns as
-- replicated by the given sets (union of their column lists, else all) and
-- whether any of them filters rows.
CREATE OR REPLACE FUNCTION spock.repset_show_table(relation regclass, repsets text[],
    OUT relid oid, OUT nspname text, OUT relname text, OUT att_list text[],
    OUT has_row_filter boolean, OUT relkind "char", OUT relispartition boolean)
RETURNS record STRICT STABLE LANGUAGE plpgsql AS $fn$
DECLARE
  local_id oid;
  listed text[];
BEGIN
  SELECT l.node_id INTO local_id FROM spock.local_node l;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'local spock node not found' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  PERFORM spock._check_repsets(local_id, repsets);
  SELECT array_agg(DISTINCT l.col) FILTER (WHERE l.col IS NOT NULL), coalesce(bool_or(r.set_row_filter IS NOT NULL), false)
  INTO listed, has_row_filter
  FROM spock.replication_set_table r JOIN spock.replication_set s ON s.set_id = r.set_id
  LEFT JOIN LATERAL unnest(r.set_att_list) AS l(col) ON true
  WHERE s.set_nodeid = local_id AND s.set_name = ANY (repsets) AND r.set_reloid = relation;
  SELECT c.oid, n.nspname::text, c.relname::text, c.relkind, c.relispartition
  INTO relid, nspname, relname, relkind, relispartition
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  att_list := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped
      AND (listed IS NULL OR a.attname::text = ANY (listed))
    ORDER BY a.attnum);
END
$fn$;
