-- Channels: the publications a provider serves one list of replication sets
-- through, so that a subscription gets Spock's column lists. Every set has
-- its own publication (`spock_<set>`, 07_repset.sql), whose column list is the
-- set's; but PostgreSQL refuses to stream a table that two publications of
-- one subscription list with different columns, and Spock's rule for a table
-- in several subscribed sets is the union of their lists (a set without a
-- list does not widen it). A channel has one publication per set of its list
-- (the set's actions), each listing a table with the columns the channel
-- carries for it: that union, plus the columns the sets' row filters use
-- (subscribers evaluate the filters and do not write those columns).
--
-- `_pubs_refresh(relation)` brings one table's membership and column list in
-- every spock publication in line with the catalog; the repset functions call
-- it in the transaction that changes a set, so subscribers see the change in
-- commit order. DROP COLUMN of a listed column works as in Spock: the column
-- lists are taken off before ALTER TABLE runs and put back (without the
-- column) after it.

-- The columns of relation a row filter uses, with the columns a generated one
-- it uses is computed from (those are not streamed, their inputs are).
CREATE OR REPLACE FUNCTION spock._row_filter_columns(relation regclass, row_filter text)
RETURNS text[] LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  used text[] := (SELECT p.columns FROM spock._row_filter_probe(relation, row_filter) AS p);
BEGIN
  RETURN ARRAY(
    SELECT a.attname::text FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND (a.attname::text = ANY (used)
      OR a.attnum IN (SELECT d.refobjsubid FROM pg_catalog.pg_attrdef f
        JOIN pg_catalog.pg_attribute g ON g.attrelid = f.adrelid AND g.attnum = f.adnum
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass
          AND d.objid = f.oid AND d.refobjid = relation AND d.refobjsubid > 0
        WHERE f.adrelid = relation AND g.attgenerated <> '' AND g.attname::text = ANY (used)))
    ORDER BY a.attnum);
END
$fn$;

-- The columns a channel of sets carries for relation (see the header), or
-- NULL for all of them.
CREATE OR REPLACE FUNCTION spock._channel_columns(sets text[], relation regclass)
RETURNS text[] LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  member record;
  listed text[];
  filtered text[] := '{}';
BEGIN
  FOR member IN
    SELECT r.set_att_list, r.set_row_filter FROM spock.replication_set_table r
    JOIN spock.replication_set s ON s.set_id = r.set_id
    JOIN spock.local_node l ON l.node_id = s.set_nodeid
    WHERE s.set_name = ANY (sets) AND r.set_reloid = relation
  LOOP
    IF member.set_att_list IS NOT NULL THEN
      listed := coalesce(listed, '{}') || member.set_att_list;
    END IF;
    IF member.set_row_filter IS NOT NULL THEN
      filtered := filtered || spock._row_filter_columns(relation, member.set_row_filter);
    END IF;
  END LOOP;
  IF listed IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      AND a.attname::text = ANY (listed || filtered)
    ORDER BY a.attnum);
END
$fn$;

-- Makes one table's membership and column list in every spock publication
-- (each set's own, and the channels') what the catalog says.
CREATE OR REPLACE FUNCTION spock._pubs_refresh(relation regclass)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  pub record;
  listed text[];
  is_member boolean;
  wanted text[];
  present boolean;
  current_columns text[];
BEGIN
  IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = relation) IS DISTINCT FROM 'r' THEN
    RETURN;
  END IF;
  FOR pub IN
    SELECT p.pubname, p.set_id, NULL::text[] AS channel_sets FROM spock._set_publication p
    UNION ALL
    SELECT p.pubname, p.set_id, c.sets FROM spock._channel_publication p
    JOIN spock._channel c ON c.channel_id = p.channel_id
  LOOP
    SELECT r.set_att_list INTO listed FROM spock.replication_set_table r
    WHERE r.set_id = pub.set_id AND r.set_reloid = relation;
    is_member := FOUND;
    IF NOT is_member THEN
      wanted := NULL;
    ELSIF pub.channel_sets IS NOT NULL THEN
      wanted := spock._channel_columns(pub.channel_sets, relation);
    ELSIF listed IS NULL THEN
      wanted := NULL;
    ELSE
      wanted := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname::text = ANY (listed) ORDER BY a.attnum);
    END IF;
    SELECT true, CASE WHEN pr.prattrs IS NOT NULL THEN ARRAY(
        SELECT a.attname::text FROM unnest(pr.prattrs::int2[]) AS k(attnum)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum
        ORDER BY a.attnum) END
    INTO present, current_columns
    FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication pp ON pp.oid = pr.prpubid
    WHERE pp.pubname = pub.pubname AND pr.prrelid = relation;
    present := coalesce(present, false);
    IF is_member AND present AND current_columns IS NOT DISTINCT FROM wanted THEN
      CONTINUE;
    END IF;
    IF present THEN
      EXECUTE format('ALTER PUBLICATION %I DROP TABLE ONLY %s', pub.pubname, relation);
    END IF;
    IF is_member THEN
      EXECUTE format('ALTER PUBLICATION %I ADD TABLE ONLY %s%s', pub.pubname, relation,
        (SELECT ' (' || string_agg(format('%I', c), ', ') || ')' FROM unnest(wanted) AS c));
    END IF;
  END LOOP;
END
$fn$;

-- The publications of the channel for the replication sets sets (created
-- with the channel the first time a subscriber asks for these sets): one per
-- set of this node among them. A subscriber streams them; it asks before it
-- creates its slot, since a slot can stream only publications older than it.
CREATE OR REPLACE FUNCTION spock.channel_publications(sets text[])
RETURNS SETOF name LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  wanted text[] := ARRAY(SELECT DISTINCT s FROM unnest(sets) AS s WHERE s IS NOT NULL ORDER BY 1);
  channel int;
  target spock.replication_set;
  pub name;
  relation regclass;
BEGIN
  PERFORM spock._lock_local_node();
  SELECT c.channel_id INTO channel FROM spock._channel c WHERE c.sets = wanted;
  IF NOT FOUND THEN
    INSERT INTO spock._channel (sets) VALUES (wanted) RETURNING channel_id INTO channel;
  END IF;
  FOR target IN SELECT s.* FROM spock.replication_set s JOIN spock.local_node l ON l.node_id = s.set_nodeid
                WHERE s.set_name = ANY (wanted)
                  AND NOT EXISTS (SELECT 1 FROM spock._channel_publication p
                                  WHERE p.channel_id = channel AND p.set_id = s.set_id) LOOP
    pub := ('spock_ch' || channel || '_' || target.set_id)::name;
    EXECUTE format('CREATE PUBLICATION %I WITH (publish = %L)', pub,
      spock._set_publish(target.replicate_insert, target.replicate_update,
        target.replicate_delete, target.replicate_truncate));
    INSERT INTO spock._channel_publication (channel_id, set_id, pubname)
    VALUES (channel, target.set_id, pub);
    FOR relation IN SELECT r.set_reloid FROM spock.replication_set_table r
                    WHERE r.set_id = target.set_id LOOP
      PERFORM spock._pubs_refresh(relation);
    END LOOP;
  END LOOP;
  RETURN QUERY SELECT p.pubname FROM spock._channel_publication p
    WHERE p.channel_id = channel ORDER BY p.pubname;
END
$fn$;

-- ddl_command_start of ALTER TABLE … DROP …: a column in a publication's column
-- list cannot be dropped, so every spock publication's column lists come off
-- first (for the span of this command; ddl_command_end puts them back).
CREATE OR REPLACE FUNCTION spock._ddl_lists_off() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  member record;
  stripped text := '';
BEGIN
  -- Not for spock's own probe tables (quiet_ddl), nor for what cannot drop a column.
  IF to_regclass('spock._channel_publication') IS NULL OR current_query() !~* '\mdrop\M'
     OR current_setting('spock.quiet_ddl', true) = 'on' THEN
    RETURN;
  END IF;
  FOR member IN
    SELECT pp.pubname, pr.prrelid::regclass AS relation FROM pg_catalog.pg_publication_rel pr
    JOIN pg_catalog.pg_publication pp ON pp.oid = pr.prpubid
    WHERE pr.prattrs IS NOT NULL AND (pp.pubname IN (SELECT p.pubname FROM spock._set_publication p)
      OR pp.pubname IN (SELECT p.pubname FROM spock._channel_publication p))
  LOOP
    EXECUTE format('ALTER PUBLICATION %I DROP TABLE ONLY %s', member.pubname, member.relation);
    EXECUTE format('ALTER PUBLICATION %I ADD TABLE ONLY %s', member.pubname, member.relation);
    stripped := stripped || member.relation::oid || ' ';
  END LOOP;
  PERFORM set_config('spock.lists_off',
    coalesce(current_setting('spock.lists_off', true), '') || stripped, true);
END
$fn$;

-- ddl_command_end of ALTER TABLE: the column lists taken off go back, as the
-- catalog now has them (sql_drop took a dropped column out of the sets' lists).
CREATE OR REPLACE FUNCTION spock._ddl_lists_on() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  relation oid;
BEGIN
  IF coalesce(current_setting('spock.lists_off', true), '') = ''
     OR current_setting('spock.quiet_ddl', true) = 'on' THEN
    RETURN;
  END IF;
  FOR relation IN SELECT DISTINCT r::oid FROM unnest(string_to_array(
                    btrim(current_setting('spock.lists_off', true)), ' ')) AS r LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = relation) THEN
      PERFORM spock._pubs_refresh(relation::regclass);
    END IF;
  END LOOP;
  PERFORM set_config('spock.lists_off', '', true);
END
$fn$;

DO $do$
BEGIN
  DROP EVENT TRIGGER IF EXISTS spock_lists_off;
  DROP EVENT TRIGGER IF EXISTS spock_lists_on;
  CREATE EVENT TRIGGER spock_lists_off ON ddl_command_start WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION spock._ddl_lists_off();
  CREATE EVENT TRIGGER spock_lists_on ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION spock._ddl_lists_on();
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'cannot create the event triggers spock_lists_off and spock_lists_on: only a superuser can; a column in a replication set''s column list then cannot be dropped';
END
$do$;
