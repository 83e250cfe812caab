-- Row filters: a lexer that keeps a filter from ever leaving the expression it
-- is spliced into, validation with PostgreSQL's CHECK-constraint rules (as
-- Spock's EXPR_KIND_CHECK_CONSTRAINT), and table_data_filtered() for the
-- initial copy. Storing filters in sets is 09_repset_table.sql's business.

-- Whether ch may continue an identifier (letters, digits, _, $, non-ASCII).
CREATE OR REPLACE FUNCTION spock._is_ident_char(ch text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT ch ~ '^[A-Za-z0-9_$]$' OR ascii(ch) > 127
$fn$;

-- Raises invalid_row_filter unless row_filter is safe to splice between
-- parentheses: outside '…', E'…', "…", $tag$…$tag$ and -- or nested /* */
-- comments there is no ';', parentheses never close more than they opened and
-- balance, and nothing is left unterminated. Where PostgreSQL's own lexer
-- could read a quote differently (E'…' after an identifier character, a
-- dollar quote glued to one) the text is refused rather than guessed at.
CREATE OR REPLACE FUNCTION spock._row_filter_lex(row_filter text) RETURNS void
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  n int := length(row_filter);
  i int := 1;
  ch text;
  depth int := 0;
  nest int;
  tag text;
  closing int;
  backslashes boolean;
  ambiguous boolean;
  scs boolean := current_setting('standard_conforming_strings') = 'on';
  -- PostgreSQL's dolq_start and dolq_cont: every non-ASCII character counts as a letter
  dollar_tag text := '^\$((?:[A-Za-z_]|[^\x01-\x7f])(?:[A-Za-z0-9_]|[^\x01-\x7f])*)?\$';
  problem text;
BEGIN
  IF row_filter IS NULL OR btrim(row_filter, E' \t\r\n\f') = '' THEN
    problem := 'the expression is empty';
  END IF;
  WHILE problem IS NULL AND i <= n LOOP
    ch := substr(row_filter, i, 1);
    IF ch = '''' THEN
      backslashes := NOT scs;
      ambiguous := false;
      IF scs AND i > 1 AND lower(substr(row_filter, i - 1, 1)) = 'e' THEN
        IF i = 2 OR NOT spock._is_ident_char(substr(row_filter, i - 2, 1)) THEN
          backslashes := true;
        ELSE
          ambiguous := true;
        END IF;
      END IF;
      i := i + 1;
      LOOP
        IF i > n THEN
          problem := 'unterminated string literal';
          EXIT;
        END IF;
        ch := substr(row_filter, i, 1);
        IF ch = E'\\' AND ambiguous THEN
          problem := 'a backslash in a string that follows an identifier character';
          EXIT;
        ELSIF ch = E'\\' AND backslashes THEN
          i := i + 2;
        ELSIF ch = '''' AND substr(row_filter, i + 1, 1) = '''' THEN
          i := i + 2;
        ELSIF ch = '''' THEN
          EXIT;
        ELSE
          i := i + 1;
        END IF;
      END LOOP;
      i := i + 1;
    ELSIF ch = '"' THEN
      closing := i + 1;
      LOOP
        IF strpos(substr(row_filter, closing), '"') = 0 THEN
          problem := 'unterminated quoted identifier';
          EXIT;
        END IF;
        closing := strpos(substr(row_filter, closing), '"') + closing - 1;
        EXIT WHEN substr(row_filter, closing + 1, 1) <> '"';
        closing := closing + 2;
      END LOOP;
      i := closing + 1;
    ELSIF ch = '$' THEN
      tag := substring(substr(row_filter, i) FROM dollar_tag);
      IF substr(row_filter, i) ~ dollar_tag THEN
        tag := '$' || coalesce(tag, '') || '$';
        IF i > 1 AND spock._is_ident_char(substr(row_filter, i - 1, 1)) THEN
          problem := 'a dollar quote that follows an identifier character';
        ELSE
          closing := strpos(substr(row_filter, i + length(tag)), tag);
          IF closing = 0 THEN
            problem := 'unterminated dollar-quoted string';
          END IF;
          i := i + length(tag) + closing - 1 + length(tag);
        END IF;
      ELSE
        i := i + 1;
      END IF;
    ELSIF ch = '-' AND substr(row_filter, i + 1, 1) = '-' THEN
      WHILE i <= n AND substr(row_filter, i, 1) NOT IN (E'\n', E'\r') LOOP
        i := i + 1;
      END LOOP;
    ELSIF ch = '/' AND substr(row_filter, i + 1, 1) = '*' THEN
      nest := 1;
      i := i + 2;
      WHILE nest > 0 LOOP
        IF i > n THEN
          problem := 'unterminated comment';
          EXIT;
        ELSIF substr(row_filter, i, 2) = '/*' THEN
          nest := nest + 1;
          i := i + 2;
        ELSIF substr(row_filter, i, 2) = '*/' THEN
          nest := nest - 1;
          i := i + 2;
        ELSE
          i := i + 1;
        END IF;
      END LOOP;
    ELSIF ch = ';' THEN
      problem := 'a semicolon';
    ELSIF ch = '(' THEN
      depth := depth + 1;
      i := i + 1;
    ELSIF ch = ')' THEN
      depth := depth - 1;
      IF depth < 0 THEN
        problem := 'a closing parenthesis without an opening one';
      END IF;
      i := i + 1;
    ELSE
      i := i + 1;
    END IF;
  END LOOP;
  IF problem IS NULL AND depth <> 0 THEN
    problem := 'unbalanced parentheses';
  END IF;
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION 'invalid row_filter expression "%"', row_filter
      USING ERRCODE = 'syntax_error', DETAIL = 'The expression contains ' || problem || '.';
  END IF;
END
$fn$;

-- Tries row_filter as a NOT VALID CHECK constraint of an empty temporary copy
-- of relation, named like it (so "table.column" references work), and reads
-- off the constraint: the deparsed expression, the columns it uses, and the
-- first function or operator it uses that is not built in. Raises what the
-- server raises for an invalid expression.
CREATE OR REPLACE FUNCTION spock._row_filter_probe(relation regclass, row_filter text,
    OUT deparsed text, OUT columns text[], OUT foreign_object text)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  relname name;
  probe regclass;
  filter_oid oid;
BEGIN
  SELECT c.relname INTO relname FROM pg_catalog.pg_class c WHERE c.oid = relation;
  -- spock's DDL event triggers leave this probe alone.
  PERFORM set_config('spock.quiet_ddl', 'on', true);
  EXECUTE format('CREATE TEMPORARY TABLE pg_temp.%I (LIKE %s)', relname, relation);
  probe := format('pg_temp.%I', relname)::regclass;
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT spock_row_filter CHECK (%s' || E'\n' || ') NOT VALID',
    probe, row_filter);
  SELECT k.oid, pg_catalog.pg_get_expr(k.conbin, k.conrelid) INTO filter_oid, deparsed
  FROM pg_catalog.pg_constraint k WHERE k.conrelid = probe AND k.conname = 'spock_row_filter';
  columns := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_attribute a ON a.attrelid = probe AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = filter_oid
      AND d.refobjid = probe AND d.refobjsubid > 0);
  SELECT coalesce(
      (SELECT 'function ' || d.refobjid::regprocedure::text FROM pg_catalog.pg_proc p
       WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.refobjid
         AND p.pronamespace <> 'pg_catalog'::regnamespace),
      (SELECT 'operator ' || d.refobjid::regoperator::text FROM pg_catalog.pg_operator o
       WHERE d.refclassid = 'pg_catalog.pg_operator'::regclass AND o.oid = d.refobjid
         AND o.oprnamespace <> 'pg_catalog'::regnamespace))
  INTO foreign_object
  FROM pg_catalog.pg_depend d
  WHERE d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = filter_oid
    AND d.refclassid IN ('pg_catalog.pg_proc'::regclass, 'pg_catalog.pg_operator'::regclass)
  ORDER BY 1 LIMIT 1;
  EXECUTE format('DROP TABLE %s', probe);
  PERFORM set_config('spock.quiet_ddl', 'off', true);
END
$fn$;

-- Validates row_filter for relation as Spock does (one boolean expression over
-- that table's columns, CHECK-constraint rules: no subqueries, aggregates or
-- window functions) and returns it as PostgreSQL deparses it. Subscribers
-- evaluate filters (see _announce_row_filters): a function or operator that
-- is not built in may exist on this node only, and is refused.
CREATE OR REPLACE FUNCTION spock._row_filter_parse(relation regclass, row_filter text)
RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  probed record;
  failure text;
  failure_state text;
BEGIN
  PERFORM spock._row_filter_lex(row_filter);
  BEGIN
    SELECT * INTO probed FROM spock._row_filter_probe(relation, row_filter);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, failure_state = RETURNED_SQLSTATE;
  END;
  IF failure IS NOT NULL THEN
    RAISE EXCEPTION 'invalid row_filter expression "%"', row_filter
      USING ERRCODE = failure_state, DETAIL = failure;
  END IF;
  IF probed.foreign_object IS NOT NULL THEN
    RAISE EXCEPTION 'invalid row_filter expression "%"', row_filter
      USING ERRCODE = 'feature_not_supported',
        DETAIL = format('It uses %s, which is not built in: spock evaluates row filters on each subscriber, where it may not exist.', probed.foreign_object),
        HINT = 'Use built-in functions and operators only.';
  END IF;
  RETURN probed.deparsed;
END
$fn$;

-- The rows of relation that pass any of the row filters the given sets have
-- for it (ORed, as Spock's initial copy does; streaming ANDs them).
CREATE OR REPLACE FUNCTION spock.table_data_filtered(reltyp anyelement, relation regclass,
    repsets text[])
RETURNS SETOF anyelement CALLED ON NULL INPUT STABLE LANGUAGE plpgsql AS $fn$
DECLARE
  local_id oid;
  filters text;
BEGIN
  SELECT l.node_id INTO local_id FROM spock.local_node l;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'local spock node not found' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF relation IS NULL THEN
    RAISE EXCEPTION 'relation cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF repsets IS NULL THEN
    RAISE EXCEPTION 'repsets cannot be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF (SELECT t.typtype FROM pg_catalog.pg_type t WHERE t.oid = pg_typeof(reltyp)) <> 'c' THEN
    RAISE EXCEPTION 'first argument of % must be a row type', 'spock_table_data_filtered'
      USING ERRCODE = 'datatype_mismatch';
  END IF;
  IF (SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.oid = relation) <> pg_typeof(reltyp) THEN
    RAISE EXCEPTION 'return type of % must be same as row type of the relation',
      'spock_table_data_filtered' USING ERRCODE = 'datatype_mismatch';
  END IF;
  PERFORM spock._check_repsets(local_id, repsets);
  SELECT string_agg('(' || r.set_row_filter || E'\n)', ' OR ') INTO filters
  FROM spock.replication_set_table r JOIN spock.replication_set s ON s.set_id = r.set_id
  WHERE s.set_nodeid = local_id AND s.set_name = ANY (repsets)
    AND r.set_reloid = relation AND r.set_row_filter IS NOT NULL;
  IF filters IS NOT NULL THEN
    PERFORM spock._row_filter_lex(r.set_row_filter)
    FROM spock.replication_set_table r JOIN spock.replication_set s ON s.set_id = r.set_id
    WHERE s.set_nodeid = local_id AND s.set_name = ANY (repsets) AND r.set_reloid = relation
      AND r.set_row_filter IS NOT NULL;
  END IF;
  RETURN QUERY EXECUTE format('SELECT * FROM %s', relation)
    || coalesce(' WHERE ' || filters, '');
END
$fn$;
