-- Catalog version 3: conflicts: subscription options, delta apply, channel counters, tombstones.
-- Migrations only ever append: a released file never changes.

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
