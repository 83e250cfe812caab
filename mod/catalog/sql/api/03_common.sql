-- Private helpers every SQL API group uses: the local-node check with Spock's
-- error text, ids computed as Spock computes them, and the NOTIFY that tells
-- running daemons the catalog changed.

-- The local node's id; raises Spock's error when this database is not a node.
CREATE OR REPLACE FUNCTION spock._local_node_id() RETURNS oid
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  id oid;
BEGIN
  SELECT node_id INTO id FROM spock.local_node;
  IF id IS NULL THEN
    RAISE EXCEPTION 'current database is not configured as spock node'
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'create spock node first';
  END IF;
  RETURN id;
END
$fn$;

-- Node ids: the low 16 bits of hash_any(node_name), the same on every node.
CREATE OR REPLACE FUNCTION spock._node_id(node_name text) RETURNS oid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT (hashtext(node_name)::bigint & 65535)::oid
$fn$;

-- Interface and replication-set ids: hash_any over (node id, hash_any(name)) as two uint32s.
CREATE OR REPLACE FUNCTION spock._pair_id(node_id oid, name text) RETURNS oid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT (spock._hash_bytes(spock._uint32_le(node_id::bigint)
           || spock._uint32_le(hashtext(name)::bigint & 4294967295))::bigint & 4294967295)::oid
$fn$;

-- Subscription ids (5.0): hash_any(sub_name) as an oid.
CREATE OR REPLACE FUNCTION spock._sub_id(sub_name text) RETURNS oid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT (hashtext(sub_name)::bigint & 4294967295)::oid
$fn$;

-- Raises Spock's error for the first of `repsets` that node `local_id` does not have.
CREATE OR REPLACE FUNCTION spock._check_repsets(local_id oid, repsets text[]) RETURNS void
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  missing text;
BEGIN
  SELECT r.name INTO missing FROM unnest(repsets) AS r(name)
  WHERE NOT EXISTS (SELECT 1 FROM spock.replication_set s
                    WHERE s.set_nodeid = local_id AND s.set_name = r.name)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'replication set % not found', missing USING ERRCODE = 'invalid_parameter_value';
  END IF;
END
$fn$;

-- A schema's oid, or the error a missing schema gets.
CREATE OR REPLACE FUNCTION spock._schema_oid(schema_name text) RETURNS oid
LANGUAGE plpgsql STABLE STRICT AS $fn$
DECLARE
  nsp oid;
BEGIN
  SELECT n.oid INTO nsp FROM pg_catalog.pg_namespace n WHERE n.nspname = schema_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'schema "%" does not exist', schema_name USING ERRCODE = 'invalid_schema_name';
  END IF;
  RETURN nsp;
END
$fn$;

-- Tells running daemons (LISTEN spock_catalog) what changed; delivered at commit.
CREATE OR REPLACE FUNCTION spock._notify(object text, name text, action text) RETURNS void
LANGUAGE sql VOLATILE AS $fn$
  SELECT pg_notify('spock_catalog',
    json_build_object('object', object, 'name', name, 'action', action)::text)
$fn$;

