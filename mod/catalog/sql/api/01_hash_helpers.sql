-- PostgreSQL's `hash_bytes()` (Bob Jenkins' lookup3, little-endian words) in
-- PL/pgSQL, so ids come out as Spock computes them with `hash_any()`: node
-- ids from names, interface and replication-set ids from (node id, name hash)
-- pairs. `hashtext()` is the same function over a text's bytes, which the tests
-- use as the oracle.

CREATE OR REPLACE FUNCTION spock._le32(key bytea, pos int) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT get_byte(key, pos)::bigint
       | (get_byte(key, pos + 1)::bigint << 8)
       | (get_byte(key, pos + 2)::bigint << 16)
       | (get_byte(key, pos + 3)::bigint << 24)
$fn$;

CREATE OR REPLACE FUNCTION spock._rot(x bigint, k int) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT ((x << k) | (x >> (32 - k))) & 4294967295
$fn$;

CREATE OR REPLACE FUNCTION spock._uint32_le(v bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea,
    0, (v & 255)::int), 1, ((v >> 8) & 255)::int), 2, ((v >> 16) & 255)::int),
    3, ((v >> 24) & 255)::int)
$fn$;
