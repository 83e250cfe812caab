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

-- Whether a remote change wins over the local row version local_xmin.
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
  RETURN coalesce(spock._tiebreaker(spock._origin_node(local_origin))
    >= spock._tiebreaker(remote_node), true);
END
$fn$;
`;
