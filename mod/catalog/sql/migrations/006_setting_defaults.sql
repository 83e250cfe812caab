-- Catalog version 6: this node's defaults of Spock's session settings
-- (spock.enable_ddl_replication, …) from the daemon's config, which `spock run`
-- writes at start. A value set for the session, role, database or server wins.
-- Migrations only ever append: a released file never changes.

CREATE TABLE spock._setting_default (
  name text PRIMARY KEY,
  value text NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now()
);
