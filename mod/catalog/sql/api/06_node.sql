-- The SQL API for nodes: node_create, node_drop, node_add_interface,
-- node_drop_interface and node_info, with Spock 5.0's signatures, ids and
-- error texts (`spock_functions.c`, `spock_node.c`). Replication sets and their
-- publications belong to the repset group; node_create and node_drop call its
-- private helpers `spock._repset_insert()` and `spock._repset_delete()`.

-- Spock's node_create: node, interface named after it, the three default sets,
-- then the local_node row. Returns NULL when node_name or dsn is NULL.
CREATE OR REPLACE FUNCTION spock.node_create(node_name name, dsn text,
    location text DEFAULT NULL, country text DEFAULT NULL, info jsonb DEFAULT NULL)
RETURNS oid CALLED ON NULL INPUT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  new_id oid;
  new_if oid;
BEGIN
  IF node_name IS NULL OR dsn IS NULL THEN
    RETURN NULL;
  END IF;
  LOCK TABLE spock.local_node IN SHARE ROW EXCLUSIVE MODE;
  IF EXISTS (SELECT 1 FROM spock.node n WHERE n.node_name = node_create.node_name) THEN
    RAISE EXCEPTION 'node % already exists', node_name USING ERRCODE = 'internal_error';
  END IF;
  -- Spock checks this last and rolls everything back; checking first gives the
  -- same outcome before the default sets' publications are attempted.
  IF EXISTS (SELECT 1 FROM spock.local_node) THEN
    RAISE EXCEPTION 'current database is already configured as spock node'
      USING ERRCODE = 'internal_error';
  END IF;
  new_id := spock._node_id(node_name);
  INSERT INTO spock.node (node_id, node_name, location, country, info)
  VALUES (new_id, node_name, location, country, info);
  new_if := spock._pair_id(new_id, node_name);
  INSERT INTO spock.node_interface (if_id, if_name, if_nodeid, if_dsn)
  VALUES (new_if, node_name, new_id, dsn);
  PERFORM spock._repset_insert(new_id, 'default', true, true, true, true);
  PERFORM spock._repset_insert(new_id, 'default_insert_only', true, false, false, true);
  PERFORM spock._repset_insert(new_id, 'ddl_sql', true, false, false, false);
  INSERT INTO spock.local_node (node_id, node_local_interface) VALUES (new_id, new_if);
  PERFORM spock._notify('node', node_name, 'create');
  RETURN new_id;
END
$fn$;

-- Spock's node_drop. For the local node it first drops this database's spock
-- slots (spk_*), refusing while one is active. Dropping a slot cannot be rolled
-- back, so every check runs before it.
CREATE OR REPLACE FUNCTION spock.node_drop(node_name name, ifexists boolean DEFAULT false)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.node;
  set_row record;
  is_local boolean;
BEGIN
  SELECT * INTO target FROM spock.node n WHERE n.node_name = node_drop.node_name FOR UPDATE;
  IF NOT FOUND THEN
    IF ifexists THEN
      RETURN false;
    END IF;
    RAISE EXCEPTION 'node % not found', node_name USING ERRCODE = 'internal_error';
  END IF;
  IF EXISTS (SELECT 1 FROM spock.subscription s
             WHERE s.sub_origin = target.node_id OR s.sub_target = target.node_id) THEN
    RAISE EXCEPTION 'cannot drop node "%" because it still has subscriptions associated with it',
      node_name USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'drop the subscriptions first';
  END IF;
  is_local := EXISTS (SELECT 1 FROM spock.local_node l WHERE l.node_id = target.node_id);
  IF is_local THEN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots
               WHERE database = current_database() AND slot_name ~ '^spk_' AND active) THEN
      RAISE EXCEPTION 'cannot drop node "%" because one or more replication slots for the node are still active',
        node_name USING ERRCODE = 'object_not_in_prerequisite_state',
        HINT = 'drop the subscriptions connected to the node first';
    END IF;
    DELETE FROM spock.local_node WHERE node_id = target.node_id;
  END IF;
  FOR set_row IN SELECT set_id FROM spock.replication_set WHERE set_nodeid = target.node_id LOOP
    PERFORM spock._repset_delete(set_row.set_id);
  END LOOP;
  DELETE FROM spock.node_interface WHERE if_nodeid = target.node_id;
  DELETE FROM spock.node WHERE node_id = target.node_id;
  IF is_local THEN
    PERFORM pg_catalog.pg_drop_replication_slot(slot_name)
    FROM pg_catalog.pg_replication_slots
    WHERE database = current_database() AND slot_name ~ '^spk_';
  END IF;
  PERFORM spock._notify('node', node_name, 'drop');
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.node_add_interface(node_name name, interface_name name, dsn text)
RETURNS oid STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target_id oid;
  new_if oid;
BEGIN
  SELECT n.node_id INTO target_id FROM spock.node n
  WHERE n.node_name = node_add_interface.node_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node "%" not found', node_name USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT 1 FROM spock.node_interface i
             WHERE i.if_nodeid = target_id AND i.if_name = interface_name) THEN
    RAISE EXCEPTION 'node "%" already has interface named "%"', node_name, interface_name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  new_if := spock._pair_id(target_id, interface_name);
  INSERT INTO spock.node_interface (if_id, if_name, if_nodeid, if_dsn)
  VALUES (new_if, interface_name, target_id, dsn);
  PERFORM spock._notify('node', node_name, 'add_interface');
  RETURN new_if;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.node_drop_interface(node_name name, interface_name name)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target_id oid;
  old_if oid;
  sub_name name;
BEGIN
  SELECT n.node_id INTO target_id FROM spock.node n
  WHERE n.node_name = node_drop_interface.node_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node "%" not found', node_name USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT i.if_id INTO old_if FROM spock.node_interface i
  WHERE i.if_nodeid = target_id AND i.if_name = interface_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'interface "%" for node node "%" not found', interface_name, node_name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT s.sub_name INTO sub_name FROM spock.subscription s
  WHERE s.sub_origin = target_id AND s.sub_origin_if = old_if
  ORDER BY s.sub_name LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'cannot drop interface "%" for node "%" because subscription "%" is using it',
      interface_name, node_name, sub_name USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'change the subscription interface first';
  END IF;
  -- Spock deletes the row past its foreign keys; we refuse instead of leaving
  -- local_node or a subscription pointing at nothing.
  IF EXISTS (SELECT 1 FROM spock.local_node l WHERE l.node_local_interface = old_if)
     OR EXISTS (SELECT 1 FROM spock.subscription s WHERE s.sub_target_if = old_if) THEN
    RAISE EXCEPTION 'cannot drop interface "%" for node "%" because it is in use', interface_name,
      node_name USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'the local node''s own interface and subscriber interfaces cannot be dropped';
  END IF;
  DELETE FROM spock.node_interface WHERE if_id = old_if;
  PERFORM spock._notify('node', node_name, 'drop_interface');
  RETURN true;
END
$fn$;

-- What a subscriber asks its provider: the local node's id, name, system
-- identifier, database and sets (quote_ident'ed, comma-separated, in catalog
-- order as Spock's heap scan returns them).
CREATE OR REPLACE FUNCTION spock.node_info(OUT node_id oid, OUT node_name text,
    OUT sysid text, OUT dbname text, OUT replication_sets text,
    OUT location text, OUT country text, OUT info jsonb)
RETURNS record STABLE STRICT LANGUAGE plpgsql AS $fn$
BEGIN
  SELECT n.node_id, n.node_name::text, n.location, n.country, n.info
  INTO node_id, node_name, location, country, info
  FROM spock.local_node l JOIN spock.node n ON n.node_id = l.node_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'local spock node not found' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  sysid := (SELECT system_identifier::text FROM pg_catalog.pg_control_system());
  dbname := current_database();
  replication_sets := coalesce((SELECT string_agg(quote_ident(s.set_name), ',' ORDER BY s.ctid)
                                FROM spock.replication_set s WHERE s.set_nodeid = node_id), '');
END
$fn$;
