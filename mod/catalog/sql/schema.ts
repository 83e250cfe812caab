/**
 * The catalog's tables and views, as versioned migrations. Version 1 is the
 * Spock 5.0.0 catalog (`spock--5.0.0.sql`); later versions add what Spock 5.0.x
 * added and what the engine keeps privately (tables whose names start with
 * `_`). Migrations only ever append: an installed catalog upgrades by running
 * the versions it lacks, in one transaction.
 */

/** One schema version: the SQL that brings the previous version to it. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

const V1_SPOCK_500 = String.raw`
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
`;

const V2_SPOCK_50X = String.raw`
ALTER TABLE spock.subscription ADD COLUMN sub_skip_schema text[];
ALTER TABLE spock.subscription ADD COLUMN sub_created_at timestamptz;
CREATE INDEX resolutions_log_time_idx ON spock.resolutions (log_time);

-- Private: the apply workers of running daemons, one row per subscription served;
-- sub_show_status() reports a subscription as running only while its heartbeat is fresh.
CREATE TABLE spock._apply_worker (
  sub_id oid PRIMARY KEY REFERENCES spock.subscription (sub_id) ON DELETE CASCADE,
  daemon text NOT NULL,
  pid integer NOT NULL,
  state text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Private: the publication that serves each local replication set to subscribers.
CREATE TABLE spock._set_publication (
  set_id oid PRIMARY KEY REFERENCES spock.replication_set (set_id) ON DELETE CASCADE,
  pubname name NOT NULL UNIQUE
);
`;

const V3_CONFLICTS = String.raw`
-- Private: per-subscription overrides of engine settings (sub_alter_options),
-- e.g. {"conflict_resolution": "keep_local"}.
CREATE TABLE spock._sub_option (
  sub_id oid PRIMARY KEY REFERENCES spock.subscription (sub_id) ON DELETE CASCADE,
  options jsonb NOT NULL DEFAULT '{}'
);

-- Private: columns registered by spock.delta_apply() (conflict-free counters).
CREATE TABLE spock._delta_apply (
  nspname name NOT NULL,
  relname name NOT NULL,
  attname name NOT NULL,
  PRIMARY KEY (nspname, relname, attname)
);

-- Private: apply counters per subscription and remote table, flushed by the
-- daemon's workers (spock.channel_table_stats reads them).
CREATE TABLE spock._channel_stats (
  sub_id oid NOT NULL REFERENCES spock.subscription (sub_id) ON DELETE CASCADE,
  nspname name NOT NULL,
  relname name NOT NULL,
  n_tup_ins bigint NOT NULL DEFAULT 0,
  n_tup_upd bigint NOT NULL DEFAULT 0,
  n_tup_del bigint NOT NULL DEFAULT 0,
  n_dca bigint NOT NULL DEFAULT 0,
  confl_insert_exists bigint NOT NULL DEFAULT 0,
  confl_update_origin_differs bigint NOT NULL DEFAULT 0,
  confl_update_exists bigint NOT NULL DEFAULT 0,
  confl_update_missing bigint NOT NULL DEFAULT 0,
  confl_delete_origin_differs bigint NOT NULL DEFAULT 0,
  confl_delete_missing bigint NOT NULL DEFAULT 0,
  confl_delete_exists bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sub_id, nspname, relname)
);

CREATE INDEX exception_log_retry_errored_at_idx ON spock.exception_log (retry_errored_at);

-- Private: recently deleted keys of replicated tables, so a change older than
-- the delete that arrives after it does not bring the row back. Remote
-- deletes carry the remote commit time; local deletes (trigger) their xid,
-- whose commit time counts once it committed.
CREATE TABLE spock._tombstone (
  nspname name NOT NULL,
  relname name NOT NULL,
  key jsonb NOT NULL,
  deleted_at timestamptz,
  deleted_xid xid8,
  PRIMARY KEY (nspname, relname, key)
);
`;

const V4_OPERATIONS = String.raw`
-- Private: each subscription's last failure, written by the worker that met it
-- (sub_show_status and spock status show it). retry_at is when the worker tries
-- again; NULL when it does not (an operator must act first).
CREATE TABLE spock._sub_error (
  sub_id oid PRIMARY KEY REFERENCES spock.subscription (sub_id) ON DELETE CASCADE,
  error_message text NOT NULL,
  sqlstate text,
  remote_lsn pg_lsn,
  errored_at timestamptz NOT NULL DEFAULT now(),
  attempt integer NOT NULL DEFAULT 1,
  retry_at timestamptz
);

-- Private: the row filters each subscription applies, as of the stream position
-- its origin records ({"schema": {"table": {"set": "filter"}}}): saved by the
-- initial sync, then with each applied transaction that announced a change.
CREATE TABLE spock._sub_filter_state (
  sub_id oid PRIMARY KEY REFERENCES spock.subscription (sub_id) ON DELETE CASCADE,
  filters jsonb NOT NULL
);

-- Private, on providers: channels, the publications serving one list of
-- replication sets with Spock's column lists (see channel.ts), and, on
-- subscribers, the channel each subscription streams from valid_from on
-- (before it, the publications it streamed before).
CREATE TABLE spock._channel (
  channel_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sets text[] NOT NULL UNIQUE
);
CREATE TABLE spock._channel_publication (
  channel_id integer NOT NULL REFERENCES spock._channel (channel_id) ON DELETE CASCADE,
  set_id oid NOT NULL REFERENCES spock.replication_set (set_id) ON DELETE CASCADE,
  pubname name NOT NULL UNIQUE,
  PRIMARY KEY (channel_id, set_id)
);
CREATE TABLE spock._sub_channel (
  sub_id oid PRIMARY KEY REFERENCES spock.subscription (sub_id) ON DELETE CASCADE,
  sets text[] NOT NULL,
  publications name[] NOT NULL,
  valid_from pg_lsn NOT NULL,
  previous_publications name[] NOT NULL DEFAULT '{}'
);

-- Operations discarded by exception handling are counted apart from applied ones.
ALTER TABLE spock._channel_stats ADD COLUMN n_discarded bigint NOT NULL DEFAULT 0;

-- sub_show_status gains the last error's columns: its OUT parameters change.
DROP FUNCTION IF EXISTS spock.sub_show_status(name);
DROP FUNCTION IF EXISTS spock._sub_show_status(name);
`;

/** Every schema version in order. The last one is what `spock install` installs. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: "Spock 5.0.0 catalog", sql: V1_SPOCK_500 },
  {
    version: 2,
    description:
      "Spock 5.0.x additions (skip_schema, created_at, resolutions index); engine tables",
    sql: V2_SPOCK_50X,
  },
  {
    version: 3,
    description: "Conflicts: subscription options, delta apply, channel counters, tombstones",
    sql: V3_CONFLICTS,
  },
  {
    version: 4,
    description:
      "Operations: last error per subscription, discarded-operation counters, row filters in stream order",
    sql: V4_OPERATIONS,
  },
];

/** The newest schema version. */
export const CATALOG_VERSION: number = MIGRATIONS.at(-1)!.version;
