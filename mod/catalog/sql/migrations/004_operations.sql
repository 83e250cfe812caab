-- Catalog version 4: operations: last error per subscription, discarded-operation counters, row filters in stream order.
-- Migrations only ever append: a released file never changes.

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
-- replication sets with Spock's column lists (see `api/11_channel.sql`), and, on
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
