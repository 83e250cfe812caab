-- Catalog version 2: Spock 5.0.x additions (skip_schema, created_at, resolutions index); engine tables.
-- Migrations only ever append: a released file never changes.

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
