-- Catalog version 5: the installed SQL API is recorded (the program's source hash and a
-- checksum of the functions as the server keeps them), so a stale or hand-edited API is seen.
-- Migrations only ever append: a released file never changes.

ALTER TABLE spock._catalog
  ADD COLUMN api_source text,
  ADD COLUMN api_checksum text;
