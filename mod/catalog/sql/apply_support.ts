/**
 * SQL functions the apply engine calls inside its row statements: the
 * conflict decision on a local row's commit timestamp and origin (Spock's
 * `conflict_resolve_by_timestamp` and tiebreaker), the node behind a
 * replication origin, and the error raised when a conflict must go to
 * exception handling. Building the statements is `apply/`'s job.
 */

/** SQL creating the apply support functions. */
export const APPLY_SUPPORT_SQL = String.raw`
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

-- Equal commit timestamps: the tiebreaker of the node that wrote the local
-- row against the remote node's; the lower wins, equal lets the remote win.
CREATE OR REPLACE FUNCTION spock._tiebreak_remote_wins(local_origin oid, remote_node oid)
RETURNS boolean LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(spock._tiebreaker(spock._origin_node(local_origin))
    >= spock._tiebreaker(remote_node), true)
$fn$;

-- Whether a remote change wins over the local row version local_xmin (the
-- upsert of an INSERT; row statements use the same rules inline).
-- Not a conflict (the remote wins): no commit timestamp (frozen row, row
-- written earlier in this apply transaction, track_commit_timestamp off) or
-- the row came through this same origin (stream order decides). Otherwise the
-- mode decides; equal timestamps go to the tiebreaker of the node that wrote
-- the local row against the remote node's: the lower wins, equal lets the
-- remote win (Spock 5.0's conflict_resolve_by_timestamp).
CREATE OR REPLACE FUNCTION spock._remote_wins(local_xmin xid, remote_ts timestamptz,
  session_origin oid, remote_node oid, mode text, conflict_type text, relation text)
RETURNS boolean LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  local_ts timestamptz;
  local_origin oid;
BEGIN
  SELECT c.timestamp, c.roident INTO local_ts, local_origin
  FROM pg_catalog.pg_xact_commit_timestamp_origin(local_xmin) c;
  IF local_ts IS NULL OR local_origin = session_origin THEN
    RETURN true;
  END IF;
  CASE mode
    WHEN 'apply_remote' THEN RETURN true;
    WHEN 'keep_local' THEN RETURN false;
    WHEN 'last_update_wins' THEN
      IF remote_ts <> local_ts THEN RETURN remote_ts > local_ts; END IF;
    WHEN 'first_update_wins' THEN
      IF remote_ts <> local_ts THEN RETURN remote_ts < local_ts; END IF;
    ELSE
      RETURN spock._apply_conflict_error(conflict_type, relation);
  END CASE;
  RETURN spock._tiebreak_remote_wins(local_origin, remote_node);
END
$fn$;

-- When a tombstone's delete happened: the remote commit time, or the local
-- deleting transaction's commit time (NULL while in progress or aborted).
CREATE OR REPLACE FUNCTION spock._tombstone_time(deleted_at timestamptz, deleted_xid xid8)
RETURNS timestamptz LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(deleted_at, pg_catalog.pg_xact_commit_timestamp(pg_catalog.xid(deleted_xid)))
$fn$;

-- AFTER DELETE trigger of replicated tables (an ordinary trigger: it fires
-- for local deletes, not under the apply's replica role). Arguments: schema,
-- table, then the key columns.
CREATE OR REPLACE FUNCTION spock._record_local_delete() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  old_row jsonb := to_jsonb(OLD);
  deleted_key jsonb;
BEGIN
  SELECT jsonb_object_agg(a.name, old_row -> a.name) INTO deleted_key
  FROM unnest(TG_ARGV[2:]) AS a(name);
  INSERT INTO spock._tombstone AS t (nspname, relname, key, deleted_at, deleted_xid)
  VALUES (TG_ARGV[0], TG_ARGV[1], deleted_key, NULL, pg_catalog.pg_current_xact_id())
  ON CONFLICT (nspname, relname, key) DO UPDATE
    SET deleted_at = NULL, deleted_xid = excluded.deleted_xid;
  RETURN NULL;
END
$fn$;

-- Creates (or, with enable = false, drops) the tombstone trigger of a table,
-- keyed by its primary key or replica identity index; none without one.
CREATE OR REPLACE FUNCTION spock._tombstone_trigger(relation regclass, enable boolean)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  rel record;
  key_columns text[];
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS spock_tombstone ON %s', relation);
  IF NOT enable THEN
    RETURN;
  END IF;
  SELECT n.nspname::text AS nspname, c.relname::text AS relname, c.relreplident INTO rel
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = relation;
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
`;
