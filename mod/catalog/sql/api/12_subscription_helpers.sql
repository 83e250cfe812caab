-- The SQL API for subscriptions: create and drop here, alterations in
-- `15_subscription_alter.sql`, status and waits in `16_subscription_show.sql`. These
-- functions record intent in the catalog and tell running daemons through
-- `spock._notify('subscription', name, action)` with action create, drop,
-- enable, disable, alter, sync or resync; the apply engine acts on it.

-- The schema holding dblink's functions, or NULL when dblink is not installed.
CREATE OR REPLACE FUNCTION spock._dblink_schema() RETURNS name
LANGUAGE sql STABLE AS $fn$
  SELECT n.nspname FROM pg_catalog.pg_extension e
  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'dblink'
$fn$;

-- A DSN for dblink with Spock's connect_timeout (30 s); a later setting in the
-- DSN itself wins. URIs are passed unchanged.
CREATE OR REPLACE FUNCTION spock._dblink_dsn(dsn text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $fn$
  SELECT CASE WHEN dsn ~* '^postgres(ql)?://' THEN dsn ELSE 'connect_timeout=30 ' || dsn END
$fn$;

-- A DSN with its password hidden, for error messages.
CREATE OR REPLACE FUNCTION spock._mask_dsn(dsn text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $fn$
  SELECT regexp_replace(
    regexp_replace(dsn, '(password\s*=\s*)(''(?:[^''\\]|\\.)*''|\S*)', '\1********', 'gi'),
    '^(postgres(?:ql)?://[^:/@?]*):[^@/?]*@', '\1:********@', 'i')
$fn$;

-- Spock's validate_subscription_name(): the rule of replication slot names.
CREATE OR REPLACE FUNCTION spock._sub_validate_name(sub_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
BEGIN
  IF sub_name = '' THEN
    RAISE EXCEPTION 'subscription  name "%" is too short', sub_name USING ERRCODE = 'invalid_name';
  END IF;
  IF octet_length(sub_name) >= 64 THEN
    RAISE EXCEPTION 'subscription name "%" is too long', sub_name USING ERRCODE = 'name_too_long';
  END IF;
  IF sub_name !~ '^[a-z0-9_]+$' THEN
    RAISE EXCEPTION 'subscription name "%" contains invalid character', sub_name
      USING ERRCODE = 'invalid_name',
        HINT = 'Subscription names may only contain lower case letters, numbers, and the underscore character.';
  END IF;
END
$fn$;

-- The subscription row by name, optionally locked; Spock's error when missing.
CREATE OR REPLACE FUNCTION spock._sub_find(sub_name name, for_update boolean)
RETURNS spock.subscription LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  found_sub spock.subscription;
BEGIN
  IF for_update THEN
    SELECT * INTO found_sub FROM spock.subscription s WHERE s.sub_name = _sub_find.sub_name FOR UPDATE;
  ELSE
    SELECT * INTO found_sub FROM spock.subscription s WHERE s.sub_name = _sub_find.sub_name;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'subscriber % not found', sub_name USING ERRCODE = 'undefined_object';
  END IF;
  RETURN found_sub;
END
$fn$;

-- Spock's get_local_node(for_update = true): serializes catalog changes.
CREATE OR REPLACE FUNCTION spock._lock_local_node() RETURNS oid
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  id oid := spock._local_node_id();
BEGIN
  PERFORM 1 FROM spock.local_node FOR UPDATE;
  RETURN id;
END
$fn$;

-- Whether this transaction already wrote before the current call: SQL cannot
-- see IsTransactionBlock(), but an assigned xid means earlier statements of an
-- explicit block. Call it before taking row locks (they assign an xid). A block
-- that has not written yet goes unnoticed.
CREATE OR REPLACE FUNCTION spock._in_transaction_block() RETURNS boolean
LANGUAGE sql VOLATILE AS $fn$
  SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL
$fn$;

-- TRUNCATE ... CASCADE of a local table, if it exists (Spock's truncate_table()).
CREATE OR REPLACE FUNCTION spock._truncate_table(nspname text, relname text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT AS $fn$
BEGIN
  IF to_regclass(format('%I.%I', nspname, relname)) IS NOT NULL THEN
    EXECUTE format('TRUNCATE TABLE %I.%I CASCADE', nspname, relname);
  END IF;
END
$fn$;

-- Creates replication origin origin_name unless it exists; true when it
-- created it. The one place origins are created: sub_create of a disabled
-- subscription, and the apply engine's initial sync and data copy.
CREATE OR REPLACE FUNCTION spock._ensure_origin(origin_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_replication_origin WHERE roname = origin_name) THEN
    RETURN false;
  END IF;
  PERFORM pg_catalog.pg_replication_origin_create(origin_name);
  RETURN true;
END
$fn$;
