-- The SQL API around conflicts: retention of spock.resolutions, registration
-- of delta-apply columns, and the per-table apply counters (Spock's channel
-- stats views over spock._channel_stats). Detecting, resolving and logging
-- conflicts is the apply engine's job; these functions only record intent and
-- read what the engine wrote. Installed after the subscription files.

-- Spock HEAD's cleanup_resolutions: deletes the resolutions logged more than
-- days ago (NULL: 30, the engine's default resolutions_retention_days; 0 keeps
-- everything) and returns how many rows went.
CREATE OR REPLACE FUNCTION spock.cleanup_resolutions(days integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  keep_days integer := coalesce(days, 30);
  deleted bigint;
BEGIN
  IF keep_days < 0 THEN
    RAISE EXCEPTION 'invalid value for argument "days" of spock.cleanup_resolutions(): % is negative',
      keep_days USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF keep_days = 0 THEN
    RETURN 0;
  END IF;
  DELETE FROM spock.resolutions r WHERE r.log_time < now() - make_interval(days => keep_days);
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$fn$;

-- Registers (enable) or unregisters a conflict-free delta-apply column: on a
-- remote UPDATE the engine applies local + (new - old) to it instead of the
-- new value. Spock needs a patched server for the old value; here REPLICA
-- IDENTITY FULL makes pgoutput send it, so enabling also sets that. Run it on
-- every node that applies changes to the table: the registration is local.
-- Unregistering leaves the replica identity as it is. Returns whether
-- anything changed.
CREATE OR REPLACE FUNCTION spock.delta_apply(relation regclass, column_name name,
  enable boolean DEFAULT true)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  rel record;
  att record;
  primary_key int2[];
  changed boolean;
BEGIN
  SELECT n.nspname, c.relname, c.relkind, c.relreplident INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
  IF NOT enable THEN
    DELETE FROM spock._delta_apply d
    WHERE d.nspname = rel.nspname AND d.relname = rel.relname AND d.attname = column_name;
    changed := FOUND;
  ELSE
    IF rel.relkind <> 'r' THEN
      RAISE EXCEPTION 'cannot use table % for delta apply: it is not an ordinary table', relation
        USING ERRCODE = 'wrong_object_type',
          HINT = 'Register the column on each partition of a partitioned table.';
    END IF;
    SELECT a.attnum, a.atttypid::regtype AS type_name, a.attnotnull INTO att
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = relation AND a.attname = column_name AND a.attnum > 0
      AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'cannot use column "%" of table % for delta apply: it does not exist',
        column_name, relation USING ERRCODE = 'undefined_column';
    END IF;
    IF att.type_name NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'float4'::regtype,
                             'float8'::regtype, 'numeric'::regtype, 'money'::regtype) THEN
      RAISE EXCEPTION 'cannot use column "%" of table % for delta apply: its type % is not numeric',
        column_name, relation, att.type_name USING ERRCODE = 'datatype_mismatch',
          HINT = 'Supported types are int2, int4, int8, float4, float8, numeric and money.';
    END IF;
    IF NOT att.attnotnull THEN
      RAISE EXCEPTION 'cannot use column "%" of table % for delta apply: it is nullable',
        column_name, relation USING ERRCODE = 'object_not_in_prerequisite_state',
          HINT = format('Run ALTER TABLE %s ALTER COLUMN %I SET NOT NULL first.', relation,
                        column_name);
    END IF;
    SELECT i.indkey::int2[] INTO primary_key FROM pg_catalog.pg_index i
    WHERE i.indrelid = relation AND i.indisprimary;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'cannot use column "%" of table % for delta apply: the table has no primary key',
        column_name, relation USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF att.attnum = ANY (primary_key) THEN
      RAISE EXCEPTION 'cannot use column "%" of table % for delta apply: it is part of the primary key',
        column_name, relation USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO spock._delta_apply (nspname, relname, attname)
    VALUES (rel.nspname, rel.relname, column_name)
    ON CONFLICT DO NOTHING;
    changed := FOUND;
    IF rel.relreplident <> 'f' THEN
      EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', relation);
      changed := true;
    END IF;
  END IF;
  IF changed THEN
    PERFORM spock._notify('delta_apply', format('%I.%I', rel.nspname, rel.relname),
      CASE WHEN enable THEN 'enable' ELSE 'disable' END);
  END IF;
  RETURN changed;
END
$fn$;

-- Spock's per-table apply counters, from what the daemon's workers flush into
-- spock._channel_stats (Spock counts in shared memory). relid is NULL once the
-- local table is gone; n_conflict sums the per-type counters, which follow
-- Spock HEAD's get_subscription_stats.
CREATE OR REPLACE VIEW spock.channel_table_stats AS
  SELECT c.sub_id AS subid,
    to_regclass(quote_ident(c.nspname) || '.' || quote_ident(c.relname))::oid AS relid,
    s.sub_name,
    quote_ident(c.nspname) || '.' || quote_ident(c.relname) AS table_name,
    c.n_tup_ins, c.n_tup_upd, c.n_tup_del,
    c.confl_insert_exists + c.confl_update_origin_differs + c.confl_update_exists
      + c.confl_update_missing + c.confl_delete_origin_differs + c.confl_delete_missing
      + c.confl_delete_exists AS n_conflict,
    c.n_dca,
    c.confl_insert_exists, c.confl_update_origin_differs, c.confl_update_exists,
    c.confl_update_missing, c.confl_delete_origin_differs, c.confl_delete_missing,
    c.confl_delete_exists, c.n_discarded
  FROM spock._channel_stats c
  JOIN spock.subscription s ON s.sub_id = c.sub_id;

CREATE OR REPLACE VIEW spock.channel_summary_stats AS
  SELECT t.subid, t.sub_name,
    sum(t.n_tup_ins)::bigint AS n_tup_ins, sum(t.n_tup_upd)::bigint AS n_tup_upd,
    sum(t.n_tup_del)::bigint AS n_tup_del, sum(t.n_conflict)::bigint AS n_conflict,
    sum(t.n_dca)::bigint AS n_dca, sum(t.n_discarded)::bigint AS n_discarded
  FROM spock.channel_table_stats t
  GROUP BY t.subid, t.sub_name;

-- Zeroes the counters of one subscription (or of all: NULL) by deleting
-- their rows; returns how many table rows went.
CREATE OR REPLACE FUNCTION spock.reset_channel_stats(sub_name name DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  wanted oid;
  deleted bigint;
BEGIN
  IF reset_channel_stats.sub_name IS NULL THEN
    DELETE FROM spock._channel_stats;
  ELSE
    wanted := (spock._sub_find(reset_channel_stats.sub_name, false)).sub_id;
    DELETE FROM spock._channel_stats c WHERE c.sub_id = wanted;
  END IF;
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$fn$;
