-- Catalog version 1: the Spock 5.0.0 catalog (spock--5.0.0.sql).
-- Migrations only ever append: a released file never changes.

CREATE TABLE spock.node (
  node_id oid NOT NULL PRIMARY KEY,
  node_name name NOT NULL UNIQUE,
  location text,
  country text,
  info jsonb
) WITH (user_catalog_table = true);

CREATE TABLE spock.node_interface (
  if_id oid NOT NULL PRIMARY KEY,
  if_name name NOT NULL,
  if_nodeid oid REFERENCES spock.node (node_id) ON UPDATE CASCADE,
  if_dsn text NOT NULL,
  UNIQUE (if_nodeid, if_name)
);

CREATE TABLE spock.local_node (
  node_id oid PRIMARY KEY REFERENCES spock.node (node_id),
  node_local_interface oid NOT NULL REFERENCES spock.node_interface (if_id)
);

CREATE TABLE spock.subscription (
  sub_id oid NOT NULL PRIMARY KEY,
  sub_name name NOT NULL UNIQUE,
  sub_origin oid NOT NULL REFERENCES spock.node (node_id) ON UPDATE CASCADE,
  sub_target oid NOT NULL REFERENCES spock.node (node_id) ON UPDATE CASCADE,
  sub_origin_if oid NOT NULL REFERENCES spock.node_interface (if_id),
  sub_target_if oid NOT NULL REFERENCES spock.node_interface (if_id),
  sub_enabled boolean NOT NULL DEFAULT true,
  sub_slot_name name NOT NULL,
  sub_replication_sets text[],
  sub_forward_origins text[],
  sub_apply_delay interval NOT NULL DEFAULT '0',
  sub_force_text_transfer boolean NOT NULL DEFAULT false,
  sub_skip_lsn pg_lsn NOT NULL DEFAULT '0/0'
);

CREATE TABLE spock.local_sync_status (
  sync_kind "char" NOT NULL CHECK (sync_kind IN ('i', 's', 'd', 'f')),
  sync_subid oid NOT NULL REFERENCES spock.subscription (sub_id),
  sync_nspname name,
  sync_relname name,
  sync_status "char" NOT NULL,
  sync_statuslsn pg_lsn NOT NULL,
  UNIQUE (sync_subid, sync_nspname, sync_relname)
);

CREATE TABLE spock.exception_log (
  remote_origin oid NOT NULL,
  remote_commit_ts timestamptz NOT NULL,
  command_counter integer NOT NULL,
  retry_errored_at timestamptz NOT NULL,
  remote_xid bigint NOT NULL,
  local_origin oid,
  local_commit_ts timestamptz,
  table_schema text,
  table_name text,
  operation text,
  local_tup jsonb,
  remote_old_tup jsonb,
  remote_new_tup jsonb,
  ddl_statement text,
  ddl_user text,
  error_message text NOT NULL,
  PRIMARY KEY (remote_origin, remote_commit_ts, command_counter, retry_errored_at)
) WITH (user_catalog_table = true);

CREATE TABLE spock.exception_status (
  remote_origin oid NOT NULL,
  remote_commit_ts timestamptz NOT NULL,
  retry_errored_at timestamptz NOT NULL,
  remote_xid bigint NOT NULL,
  status text NOT NULL,
  resolved_at timestamptz,
  resolution_details jsonb,
  PRIMARY KEY (remote_origin, remote_commit_ts, retry_errored_at)
) WITH (user_catalog_table = true);

CREATE TABLE spock.exception_status_detail (
  remote_origin oid NOT NULL,
  remote_commit_ts timestamptz NOT NULL,
  command_counter integer NOT NULL,
  retry_errored_at timestamptz NOT NULL,
  remote_xid bigint NOT NULL,
  status text NOT NULL,
  resolved_at timestamptz,
  resolution_details jsonb,
  PRIMARY KEY (remote_origin, remote_commit_ts, command_counter, retry_errored_at),
  FOREIGN KEY (remote_origin, remote_commit_ts, retry_errored_at)
    REFERENCES spock.exception_status (remote_origin, remote_commit_ts, retry_errored_at)
) WITH (user_catalog_table = true);

CREATE TABLE spock.progress (
  node_id oid NOT NULL,
  remote_node_id oid NOT NULL,
  remote_commit_ts timestamptz NOT NULL,
  remote_lsn pg_lsn NOT NULL,
  remote_insert_lsn pg_lsn NOT NULL,
  last_updated_ts timestamptz NOT NULL,
  updated_by_decode boolean NOT NULL,
  PRIMARY KEY (node_id, remote_node_id)
) WITH (fillfactor = 50);

CREATE TABLE spock.replication_set (
  set_id oid NOT NULL PRIMARY KEY,
  set_nodeid oid NOT NULL REFERENCES spock.node (node_id) ON UPDATE CASCADE,
  set_name name NOT NULL,
  replicate_insert boolean NOT NULL DEFAULT true,
  replicate_update boolean NOT NULL DEFAULT true,
  replicate_delete boolean NOT NULL DEFAULT true,
  replicate_truncate boolean NOT NULL DEFAULT true,
  UNIQUE (set_nodeid, set_name)
) WITH (user_catalog_table = true);

-- set_row_filter holds the filter's text, not a pg_node_tree as in Spock: an
-- unpatched server offers no SQL access to nodeToString().
CREATE TABLE spock.replication_set_table (
  set_id oid NOT NULL,
  set_reloid regclass NOT NULL,
  set_att_list text[],
  set_row_filter text,
  PRIMARY KEY (set_id, set_reloid)
) WITH (user_catalog_table = true);

CREATE TABLE spock.replication_set_seq (
  set_id oid NOT NULL,
  set_seqoid regclass NOT NULL,
  PRIMARY KEY (set_id, set_seqoid)
) WITH (user_catalog_table = true);

CREATE TABLE spock.sequence_state (
  seqoid oid NOT NULL PRIMARY KEY,
  cache_size integer NOT NULL,
  last_value bigint NOT NULL
) WITH (user_catalog_table = true);

CREATE TABLE spock.depend (
  classid oid NOT NULL,
  objid oid NOT NULL,
  objsubid integer NOT NULL,
  refclassid oid NOT NULL,
  refobjid oid NOT NULL,
  refobjsubid integer NOT NULL,
  deptype "char" NOT NULL
) WITH (user_catalog_table = true);

CREATE TABLE spock.pii (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pii_schema text NOT NULL,
  pii_table text NOT NULL,
  pii_column text NOT NULL
) WITH (user_catalog_table = true);

CREATE TABLE spock.resolutions (
  id integer GENERATED ALWAYS AS IDENTITY,
  node_name name NOT NULL,
  log_time timestamptz NOT NULL,
  relname text,
  idxname text,
  conflict_type text,
  conflict_resolution text,
  local_origin integer,
  local_tuple text,
  local_xid xid,
  local_timestamp timestamptz,
  remote_origin integer,
  remote_tuple text,
  remote_xid xid,
  remote_timestamp timestamptz,
  remote_lsn pg_lsn,
  PRIMARY KEY (id, node_name)
) WITH (user_catalog_table = true);

CREATE TABLE spock.queue (
  queued_at timestamptz NOT NULL,
  role name NOT NULL,
  replication_sets text[],
  message_type "char" NOT NULL,
  message json NOT NULL
);

CREATE VIEW spock.tables AS
  WITH set_relations AS (
    SELECT s.set_name, r.set_reloid
    FROM spock.replication_set_table r
    JOIN spock.replication_set s ON s.set_id = r.set_id
    JOIN spock.local_node l ON l.node_id = s.set_nodeid
  ),
  user_tables AS (
    SELECT c.oid AS relid, n.nspname, c.relname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
      AND n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'spock')
  )
  SELECT t.relid, t.nspname, t.relname, s.set_name
  FROM user_tables t JOIN set_relations s ON s.set_reloid = t.relid
  UNION
  SELECT t.relid, t.nspname, t.relname, NULL
  FROM user_tables t WHERE t.relid NOT IN (SELECT set_reloid FROM set_relations);

CREATE VIEW spock.lag_tracker AS
  SELECT origin.node_name AS origin_name,
         receiver.node_name AS receiver_name,
         max(p.remote_commit_ts) AS commit_timestamp,
         max(p.remote_lsn) AS last_received_lsn,
         max(p.remote_insert_lsn) AS remote_insert_lsn,
         CASE WHEN bool_or(p.updated_by_decode)
           THEN pg_catalog.pg_wal_lsn_diff(max(p.remote_insert_lsn), max(p.remote_lsn))
           ELSE 0 END AS replication_lag_bytes,
         CASE WHEN bool_or(p.updated_by_decode)
           THEN now() - max(p.remote_commit_ts)
           ELSE now() - max(p.last_updated_ts) END AS replication_lag
  FROM spock.progress p
  LEFT JOIN spock.subscription sub
    ON p.node_id = sub.sub_target AND p.remote_node_id = sub.sub_origin
  LEFT JOIN spock.node origin ON origin.node_id = p.remote_node_id
  LEFT JOIN spock.node receiver ON receiver.node_id = p.node_id
  GROUP BY origin.node_name, receiver.node_name;

CREATE FUNCTION spock.md5_agg_sfunc(text, anyelement) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$ SELECT md5($1 || $2::text) $fn$;

CREATE AGGREGATE spock.md5_agg (ORDER BY anyelement) (
  STYPE = text,
  SFUNC = spock.md5_agg_sfunc,
  INITCOND = ''
);
