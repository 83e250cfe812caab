-- The SQL API's info and misc functions: versions, slot names, commit
-- timestamps with spock node ids, sync events, waits on slots, country and
-- delta-apply helpers. `replicate_ddl` lives in `05_info_ddl.sql`, `sync_seq`
-- with the sequences in `10_repset_seq.sql`; the engine that consumes queue
-- rows and messages is elsewhere.

-- Spock's version functions are created without a schema prefix; its control
-- file puts them in spock. spock_version() reports this program's version,
-- spock_version_num() the Spock API level this catalog implements.
CREATE OR REPLACE FUNCTION spock.spock_version() RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT program_version FROM spock._catalog
$fn$;

CREATE OR REPLACE FUNCTION spock.spock_version_num() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 50000 $fn$;

-- The installed schema version (the migrations in `../migrations/`); not in Spock.
CREATE OR REPLACE FUNCTION spock.catalog_version() RETURNS integer
LANGUAGE sql STABLE AS $fn$
  SELECT version FROM spock._catalog
$fn$;

CREATE OR REPLACE FUNCTION spock.spock_max_proto_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 4 $fn$;

CREATE OR REPLACE FUNCTION spock.spock_min_proto_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT 3 $fn$;

CREATE OR REPLACE FUNCTION spock.get_country() RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(nullif(current_setting('spock.country', true), ''), '??')
$fn$;

-- Spock's shorten_hash(): a string longer than maxlen bytes becomes its first
-- maxlen-8 bytes plus the %08x of hash_any(), cut by snprintf to maxlen-1 bytes.
CREATE OR REPLACE FUNCTION spock._shorten_hash(str bytea, maxlen integer) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT CASE WHEN length(str) <= maxlen THEN str
    ELSE substring(substring(str FROM 1 FOR maxlen - 8)
      || convert_to(lpad(to_hex(spock._hash_bytes(str)), 8, '0'), 'UTF8') FROM 1 FOR maxlen - 1)
  END
$fn$;

-- spk_<db>_<provider>_<subscription>, each part shortened to 16 bytes, every
-- byte outside [a-z0-9_] replaced by '_' (so a multibyte letter gives several).
CREATE OR REPLACE FUNCTION spock.spock_gen_slot_name(name, name, name) RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
  enc text := current_setting('server_encoding');
  raw bytea;
  result text := '';
  b integer;
BEGIN
  raw := convert_to('spk_', enc)
    || spock._shorten_hash(convert_to($1::text, enc), 16) || convert_to('_', enc)
    || spock._shorten_hash(convert_to($2::text, enc), 16) || convert_to('_', enc)
    || spock._shorten_hash(convert_to($3::text, enc), 16);
  FOR i IN 0 .. least(length(raw), 63) - 1 LOOP
    b := get_byte(raw, i);
    IF (b BETWEEN 97 AND 122) OR (b BETWEEN 48 AND 57) OR b = 95 THEN
      result := result || chr(b);
    ELSE
      result := result || '_';
    END IF;
  END LOOP;
  RETURN result;
END
$fn$;

-- The spock node id behind a local replication origin, as Spock's
-- xact_commit_timestamp_origin() reports it: 0 for local transactions; a
-- subscription's origin (named after its slot, or <slot>_<8 hex> for a table
-- sync) maps to the subscription's provider; an origin named spk_node_<id>
-- maps to <id>. Any other origin (native logical replication) keeps its roident.
CREATE OR REPLACE FUNCTION spock._origin_node_id(roident oid) RETURNS oid
LANGUAGE sql STABLE STRICT AS $fn$
  SELECT CASE
    WHEN roident = 0 THEN 0::oid
    ELSE coalesce(
      (SELECT s.sub_origin FROM spock.subscription s
        JOIN pg_catalog.pg_replication_origin o
          ON o.roname = s.sub_slot_name
          OR (starts_with(o.roname, s.sub_slot_name || '_')
              AND substring(o.roname FROM length(s.sub_slot_name) + 2) ~ '^[0-9a-f]{8}$')
        WHERE o.roident = _origin_node_id.roident
        ORDER BY o.roname = s.sub_slot_name DESC LIMIT 1),
      (SELECT substring(o.roname FROM 10)::oid FROM pg_catalog.pg_replication_origin o
        WHERE o.roident = _origin_node_id.roident AND o.roname ~ '^spk_node_[0-9]{1,10}$'
          AND substring(o.roname FROM 10)::bigint <= 4294967295),
      roident)
  END
$fn$;

CREATE OR REPLACE FUNCTION spock.xact_commit_timestamp_origin("xid" xid,
  OUT "timestamp" timestamptz, OUT "roident" oid)
RETURNS record LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT c."timestamp", spock._origin_node_id(c.roident)
  FROM pg_catalog.pg_xact_commit_timestamp_origin($1) c
$fn$;

-- A transactional logical message with prefix "Spock" carrying Spock's
-- SpockSyncEventMessage (int32 mtype = 3, oid origin, NameData name), little-endian.
CREATE OR REPLACE FUNCTION spock.sync_event() RETURNS pg_lsn
LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT pg_catalog.pg_logical_emit_message(true, 'Spock',
    spock._uint32_le(3) || spock._uint32_le(spock._local_node_id()::bigint)
      || decode(repeat('00', 64), 'hex'))
$fn$;

-- Repair mode: a transactional "Spock" message (int32 mtype 1 = on, 2 = off).
-- Subscribers leave out the rows, TRUNCATEs and queued commands (DDL) of
-- this transaction that follow "on", until "off" or the transaction's end.
CREATE OR REPLACE FUNCTION spock.repair_mode(enabled bool) RETURNS pg_lsn
LANGUAGE sql VOLATILE STRICT AS $fn$
  SELECT pg_catalog.pg_logical_emit_message(true, 'Spock',
    spock._uint32_le(CASE WHEN enabled THEN 1 ELSE 2 END))
$fn$;

-- Polls spock.progress for (local node, origin) until remote_lsn >= lsn; the
-- timeout is in seconds (0 = none). ROLLBACK gives each poll a fresh snapshot,
-- hence a procedure: CALL it outside an explicit transaction block.
CREATE OR REPLACE PROCEDURE spock.wait_for_sync_event(OUT result bool, origin_id oid,
  lsn pg_lsn, timeout int DEFAULT 0)
LANGUAGE plpgsql AS $fn$
DECLARE
  target_id oid;
  elapsed_time numeric := 0;
  progress_lsn pg_lsn;
BEGIN
  IF origin_id IS NULL THEN
    RAISE EXCEPTION 'Origin node ''%'' not found', origin_id;
  END IF;
  target_id := spock._local_node_id();
  LOOP
    SELECT p.remote_lsn INTO progress_lsn FROM spock.progress p
    WHERE p.node_id = target_id AND p.remote_node_id = origin_id;
    IF progress_lsn >= lsn THEN
      result := true;
      RETURN;
    END IF;
    elapsed_time := elapsed_time + .2;
    IF timeout <> 0 AND elapsed_time >= timeout THEN
      result := false;
      RETURN;
    END IF;
    ROLLBACK;
    PERFORM pg_sleep(0.2);
  END LOOP;
END
$fn$;

CREATE OR REPLACE PROCEDURE spock.wait_for_sync_event(OUT result bool, origin name,
  lsn pg_lsn, timeout int DEFAULT 0)
LANGUAGE plpgsql AS $fn$
DECLARE
  origin_id oid;
BEGIN
  SELECT n.node_id INTO origin_id FROM spock.node n WHERE n.node_name = origin;
  IF origin_id IS NULL THEN
    RAISE EXCEPTION 'Origin node ''%'' not found', origin;
  END IF;
  CALL spock.wait_for_sync_event(result, origin_id, lsn, timeout);
END
$fn$;

-- Waits until the oldest confirmed_flush_lsn of the logical slots (or of the
-- named one) reaches target. A NULL target means the current WAL insert
-- position (Spock uses this session's last commit end, which SQL cannot read).
-- No timeout: use statement_timeout.
CREATE OR REPLACE FUNCTION spock.wait_slot_confirm_lsn(slotname name, target pg_lsn)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  goal pg_lsn := coalesce(target, pg_catalog.pg_current_wal_insert_lsn());
  oldest pg_lsn;
BEGIN
  LOOP
    SELECT min(s.confirmed_flush_lsn) INTO oldest FROM pg_catalog.pg_replication_slots s
    WHERE s.confirmed_flush_lsn IS NOT NULL AND (slotname IS NULL OR s.slot_name = slotname);
    EXIT WHEN oldest >= goal;
    PERFORM pg_sleep(0.2);
  END LOOP;
END
$fn$;

-- Delta-apply functions named by a column's delta_apply_function setting:
-- (old_remote, new_remote, local) -> local + (new_remote - old_remote).
CREATE OR REPLACE FUNCTION spock.delta_apply(int2, int2, int2) RETURNS int2
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;
CREATE OR REPLACE FUNCTION spock.delta_apply(int4, int4, int4) RETURNS int4
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;
CREATE OR REPLACE FUNCTION spock.delta_apply(int8, int8, int8) RETURNS int8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;
CREATE OR REPLACE FUNCTION spock.delta_apply(float4, float4, float4) RETURNS float4
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;
CREATE OR REPLACE FUNCTION spock.delta_apply(float8, float8, float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;
CREATE OR REPLACE FUNCTION spock.delta_apply(numeric, numeric, numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;
CREATE OR REPLACE FUNCTION spock.delta_apply(money, money, money) RETURNS money
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$ SELECT $3 + ($2 - $1) $fn$;

-- The end LSN of the last transaction slot_name would still send that
-- committed at or before commit_ts (Spock's ZODAN manual step: advance a
-- peer's slot past what the new node's copy holds). Decoded from a
-- temporary copy of the slot through this database's publications; the
-- slot's own position when no such transaction is pending.
CREATE OR REPLACE FUNCTION spock.get_lsn_from_commit_ts(slot_name name, commit_ts timestamptz)
RETURNS pg_lsn LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  copy name := ('spk_lsn_ts_' || pg_catalog.pg_backend_pid())::name;
  publications text;
  result pg_lsn;
  change bytea;
  end_lsn bigint;
  committed bigint;
  limit_micros bigint := ((extract(epoch FROM commit_ts) - 946684800) * 1000000)::bigint;
BEGIN
  SELECT s.confirmed_flush_lsn INTO result FROM pg_catalog.pg_replication_slots s
  WHERE s.slot_name = get_lsn_from_commit_ts.slot_name AND s.slot_type = 'logical';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'logical replication slot "%" does not exist', slot_name
      USING ERRCODE = 'undefined_object';
  END IF;
  SELECT string_agg(pg_catalog.quote_ident(p.pubname), ',') INTO publications
  FROM pg_catalog.pg_publication p;
  IF publications IS NULL THEN
    RETURN result;
  END IF;
  PERFORM pg_catalog.pg_copy_logical_replication_slot(slot_name, copy, true, 'pgoutput');
  -- pgoutput's Commit: 'C', Int8 flags, Int64 commit LSN, Int64 end LSN, Int64 commit time.
  FOR change IN SELECT c.data FROM pg_catalog.pg_logical_slot_peek_binary_changes(copy, NULL, NULL,
      'proto_version', '1', 'publication_names', publications) c
    WHERE pg_catalog.get_byte(c.data, 0) = 67
  LOOP
    committed := ('x' || encode(substring(change FROM 19 FOR 8), 'hex'))::bit(64)::bigint;
    EXIT WHEN committed > limit_micros;
    end_lsn := ('x' || encode(substring(change FROM 11 FOR 8), 'hex'))::bit(64)::bigint;
    result := (to_hex(end_lsn >> 32) || '/' || to_hex(end_lsn & 4294967295))::pg_lsn;
  END LOOP;
  PERFORM pg_catalog.pg_drop_replication_slot(copy);
  RETURN result;
END
$fn$;
