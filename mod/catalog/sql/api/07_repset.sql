-- The SQL API for replication sets (repset_create, repset_alter, repset_drop)
-- and the publications that serve them; tables, sequences, partitions and row
-- filters live in 08_repset_filter.sql, 09_repset_table.sql and
-- 10_repset_seq.sql.
--
-- Publications: every local set has one publication (recorded in
-- `spock._set_publication`) named `spock_<set_name>`, or `spock_set_<set_id>`
-- when the name is not [a-z0-9_]+ or too long. Its `publish` list follows the
-- set's actions and it holds the set's plain tables and partitions (relkind
-- 'r'; a partitioned parent is represented by its partitions, as Spock
-- replicates each leaf as itself) with the set's column list. Sequences are not
-- in publications (Spock sends them as 'S' queue messages).
--
-- Row filters are NOT put into publications: PostgreSQL ORs the filters of
-- several publications and refuses UPDATE/DELETE on the provider when a filter
-- uses columns outside the replica identity, whereas Spock ANDs the filters of
-- the subscribed sets and allows any column. The engine evaluates the filters
-- stored in `spock.replication_set_table.set_row_filter` itself.

-- The publication name of a set: spock_<name> when that is a plain identifier.
CREATE OR REPLACE FUNCTION spock._set_pubname(set_id oid, set_name name) RETURNS name
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT CASE WHEN set_name::text ~ '^[a-z0-9_]+$' AND octet_length('spock_' || set_name) <= 63
    THEN ('spock_' || set_name)::name ELSE ('spock_set_' || set_id::text)::name END
$fn$;

-- The publish option for a set's actions, e.g. 'insert, truncate'.
CREATE OR REPLACE FUNCTION spock._set_publish(ins boolean, upd boolean, del boolean, trunc boolean)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT concat_ws(', ', CASE WHEN ins THEN 'insert' END, CASE WHEN upd THEN 'update' END,
    CASE WHEN del THEN 'delete' END, CASE WHEN trunc THEN 'truncate' END)
$fn$;

-- Whether a relation has a replica identity index (Spock's rd_replidindex):
-- the primary key under REPLICA IDENTITY DEFAULT, the chosen index under USING INDEX.
CREATE OR REPLACE FUNCTION spock._has_replica_identity_index(relation regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT AS $fn$
  SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
    WHERE c.oid = relation
      AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident)))
$fn$;

-- A local set by name, raising Spock's error when there is none.
CREATE OR REPLACE FUNCTION spock._repset_get(set_name name) RETURNS spock.replication_set
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  found_set spock.replication_set;
BEGIN
  SELECT s.* INTO found_set FROM spock.replication_set s
  WHERE s.set_nodeid = spock._local_node_id() AND s.set_name = _repset_get.set_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'replication set % not found', set_name USING ERRCODE = 'internal_error';
  END IF;
  RETURN found_set;
END
$fn$;

-- Creates a set of node node_id with its publication; returns its id.
CREATE OR REPLACE FUNCTION spock._repset_insert(node_id oid, set_name name,
    ins boolean, upd boolean, del boolean, trunc boolean)
RETURNS oid LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  new_id oid;
  pub name;
BEGIN
  IF set_name = '' THEN
    RAISE EXCEPTION 'replication set name cannot be empty' USING ERRCODE = 'invalid_name';
  END IF;
  IF EXISTS (SELECT 1 FROM spock.replication_set s
             WHERE s.set_nodeid = _repset_insert.node_id AND s.set_name = _repset_insert.set_name) THEN
    RAISE EXCEPTION 'replication set % already exists', set_name USING ERRCODE = 'internal_error';
  END IF;
  new_id := spock._pair_id(node_id, set_name);
  INSERT INTO spock.replication_set AS s (set_id, set_nodeid, set_name, replicate_insert,
    replicate_update, replicate_delete, replicate_truncate)
  VALUES (new_id, node_id, set_name, ins, upd, del, trunc);
  pub := spock._set_pubname(new_id, set_name);
  EXECUTE format('CREATE PUBLICATION %I WITH (publish = %L)', pub,
    spock._set_publish(ins, upd, del, trunc));
  INSERT INTO spock._set_publication (set_id, pubname) VALUES (new_id, pub);
  RETURN new_id;
END
$fn$;

-- Drops a set: its publication, sequences (and their state when no other set
-- has them), tables and the set row.
CREATE OR REPLACE FUNCTION spock._repset_delete(set_id oid) RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  pub name;
  seq regclass;
  member record;
BEGIN
  SELECT p.pubname INTO pub FROM spock._set_publication p WHERE p.set_id = _repset_delete.set_id;
  IF FOUND THEN
    EXECUTE format('DROP PUBLICATION IF EXISTS %I', pub);
  END IF;
  FOR seq IN DELETE FROM spock.replication_set_seq r WHERE r.set_id = _repset_delete.set_id
             RETURNING r.set_seqoid LOOP
    PERFORM spock._sequence_state_forget(seq);
  END LOOP;
  FOR pub IN DELETE FROM spock._channel_publication p WHERE p.set_id = _repset_delete.set_id
             RETURNING p.pubname LOOP
    EXECUTE format('DROP PUBLICATION IF EXISTS %I', pub);
  END LOOP;
  -- The set's tables leave it: other sets' channel column lists and the
  -- subscribers' filters follow.
  FOR member IN DELETE FROM spock.replication_set_table r WHERE r.set_id = _repset_delete.set_id
                RETURNING r.set_reloid, r.set_row_filter LOOP
    PERFORM spock._pubs_refresh(member.set_reloid);
    PERFORM spock._announce_row_filters(member.set_reloid, member.set_row_filter IS NOT NULL);
  END LOOP;
  DELETE FROM spock.replication_set s WHERE s.set_id = _repset_delete.set_id;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_create(set_name name,
    replicate_insert boolean = true, replicate_update boolean = true,
    replicate_delete boolean = true, replicate_truncate boolean = true)
RETURNS oid STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  new_id oid;
BEGIN
  new_id := spock._repset_insert(spock._local_node_id(), set_name, replicate_insert,
    replicate_update, replicate_delete, replicate_truncate);
  PERFORM spock._notify('replication_set', set_name, 'create');
  RETURN new_id;
END
$fn$;

-- NULL arguments keep the current value. A set cannot start replicating
-- UPDATEs or DELETEs while it holds a table without a replica identity index.
CREATE OR REPLACE FUNCTION spock.repset_alter(set_name name,
    replicate_insert boolean DEFAULT NULL, replicate_update boolean DEFAULT NULL,
    replicate_delete boolean DEFAULT NULL, replicate_truncate boolean DEFAULT NULL)
RETURNS oid CALLED ON NULL INPUT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target spock.replication_set;
  pub name;
BEGIN
  IF set_name IS NULL THEN
    RAISE EXCEPTION 'set_name cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  target := spock._repset_get(set_name);
  target.replicate_insert := coalesce(replicate_insert, target.replicate_insert);
  target.replicate_update := coalesce(replicate_update, target.replicate_update);
  target.replicate_delete := coalesce(replicate_delete, target.replicate_delete);
  target.replicate_truncate := coalesce(replicate_truncate, target.replicate_truncate);
  IF (target.replicate_update OR target.replicate_delete) AND EXISTS (
      SELECT 1 FROM spock.replication_set_table r JOIN pg_catalog.pg_class c ON c.oid = r.set_reloid
      WHERE r.set_id = target.set_id AND c.relkind = 'r'
        AND NOT spock._has_replica_identity_index(r.set_reloid)) THEN
    RAISE EXCEPTION 'replication set % cannot be altered to replicate UPDATEs or DELETEs because it contains tables without PRIMARY KEY',
      set_name USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE spock.replication_set s
  SET replicate_insert = target.replicate_insert, replicate_update = target.replicate_update,
      replicate_delete = target.replicate_delete, replicate_truncate = target.replicate_truncate
  WHERE s.set_id = target.set_id;
  FOR pub IN SELECT p.pubname FROM spock._set_publication p WHERE p.set_id = target.set_id
             UNION ALL
             SELECT p.pubname FROM spock._channel_publication p WHERE p.set_id = target.set_id LOOP
    EXECUTE format('ALTER PUBLICATION %I SET (publish = %L)', pub,
      spock._set_publish(target.replicate_insert, target.replicate_update,
        target.replicate_delete, target.replicate_truncate));
  END LOOP;
  PERFORM spock._notify('replication_set', set_name, 'alter');
  RETURN target.set_id;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.repset_drop(set_name name, ifexists boolean DEFAULT false)
RETURNS boolean STRICT VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  target_id oid;
BEGIN
  SELECT s.set_id INTO target_id FROM spock.replication_set s
  WHERE s.set_nodeid = spock._local_node_id() AND s.set_name = repset_drop.set_name;
  IF NOT FOUND THEN
    IF ifexists THEN
      RETURN false;
    END IF;
    RAISE EXCEPTION 'replication set % not found', set_name USING ERRCODE = 'internal_error';
  END IF;
  PERFORM spock._repset_delete(target_id);
  PERFORM spock._notify('replication_set', set_name, 'drop');
  RETURN true;
END
$fn$;

