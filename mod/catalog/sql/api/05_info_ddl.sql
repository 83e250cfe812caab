-- `spock.replicate_ddl()`: queue a 'Q' message into spock.queue for the given
-- sets, then run the command here as the given role with the given search_path.
-- Spock asks the parser which statements are DDL; without a server extension we
-- split the text outside quotes and comments and classify each statement by its
-- leading keywords. Executing queued messages on subscribers is the engine's job.

-- Splits SQL text at top-level semicolons, skipping string literals (standard,
-- E'' and dollar-quoted), quoted identifiers and nested comments. skeleton is
-- the statement's text outside all of those and outside parentheses, for
-- classification. Statements that are only comments and blanks are dropped.
-- Each statement is later run alone, so what was classified is what runs.
CREATE OR REPLACE FUNCTION spock._split_sql(command text, OUT statement text, OUT skeleton text)
RETURNS SETOF record LANGUAGE plpgsql STABLE STRICT AS $fn$
DECLARE
  backslash_quotes boolean := current_setting('standard_conforming_strings') = 'off';
  c text[] := string_to_array(command, NULL);
  n integer := coalesce(array_length(c, 1), 0);
  i integer := 1;
  start_pos integer := 1;
  depth integer := 0;
  skel text := '';
  ch text;
  nxt text;
  level integer;
  escapes boolean;
  tag text;
  close_at integer;
BEGIN
  WHILE i <= n LOOP
    ch := c[i];
    nxt := CASE WHEN i < n THEN c[i + 1] END;
    IF ch = '-' AND nxt = '-' THEN
      WHILE i <= n AND c[i] <> E'\n' LOOP i := i + 1; END LOOP;
      skel := skel || ' ';
    ELSIF ch = '/' AND nxt = '*' THEN
      level := 1;
      i := i + 2;
      WHILE i <= n AND level > 0 LOOP
        IF c[i] = '/' AND i < n AND c[i + 1] = '*' THEN level := level + 1; i := i + 2;
        ELSIF c[i] = '*' AND i < n AND c[i + 1] = '/' THEN level := level - 1; i := i + 2;
        ELSE i := i + 1;
        END IF;
      END LOOP;
      i := i - 1;
      skel := skel || ' ';
    ELSIF ch = '''' THEN
      escapes := backslash_quotes OR (i > 1 AND lower(c[i - 1]) = 'e'
        AND (i = 2 OR c[i - 2] !~ '[[:alnum:]_$]'));
      i := i + 1;
      WHILE i <= n LOOP
        IF escapes AND c[i] = '\' THEN i := i + 2;
        ELSIF c[i] = '''' AND i < n AND c[i + 1] = '''' THEN i := i + 2;
        ELSIF c[i] = '''' THEN EXIT;
        ELSE i := i + 1;
        END IF;
      END LOOP;
      skel := skel || ' ';
    ELSIF ch = '"' THEN
      i := i + 1;
      WHILE i <= n LOOP
        IF c[i] = '"' AND i < n AND c[i + 1] = '"' THEN i := i + 2;
        ELSIF c[i] = '"' THEN EXIT;
        ELSE i := i + 1;
        END IF;
      END LOOP;
      skel := skel || ' ';
    ELSIF ch = '$' AND (i = 1 OR c[i - 1] !~ '[[:alnum:]_$]')
        AND substr(command, i, 66) ~ '^\$([A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$' THEN
      tag := substring(substr(command, i, 66)
        FROM '^(\$(?:[A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$)');
      close_at := strpos(substr(command, i + length(tag)), tag);
      i := CASE WHEN close_at = 0 THEN n ELSE i + length(tag) + close_at + length(tag) - 2 END;
      skel := skel || ' ';
    ELSIF ch = '(' THEN
      depth := depth + 1;
      skel := skel || ' ';
    ELSIF ch = ')' THEN
      depth := greatest(depth - 1, 0);
      skel := skel || ' ';
    ELSIF ch = ';' AND depth = 0 THEN
      IF btrim(skel, E' \t\r\n\f') <> '' THEN
        statement := btrim(substr(command, start_pos, i - start_pos), E' \t\r\n\f');
        skeleton := btrim(skel, E' \t\r\n\f');
        RETURN NEXT;
      END IF;
      start_pos := i + 1;
      skel := '';
    ELSIF depth = 0 THEN
      skel := skel || ch;
    END IF;
    i := i + 1;
  END LOOP;
  IF btrim(skel, E' \t\r\n\f') <> '' THEN
    statement := btrim(substr(command, start_pos), E' \t\r\n\f');
    skeleton := btrim(skel, E' \t\r\n\f');
    RETURN NEXT;
  END IF;
END
$fn$;

-- The command tag of a statement (as PostgreSQL names it in errors) and whether
-- PostgreSQL logs it as DDL (GetCommandLogLevel() = LOGSTMT_DDL), from the
-- skeleton's leading keywords. Unknown leading words are not DDL.
CREATE OR REPLACE FUNCTION spock._command_tag(skeleton text, OUT tag text, OUT is_ddl boolean)
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
  words text[] := regexp_split_to_array(upper(btrim(skeleton)), '[[:space:]]+');
  first text := words[1];
  second text := coalesce(words[2], '');
  verb text;
BEGIN
  is_ddl := false;
  IF first IN ('CREATE', 'ALTER', 'DROP', 'GRANT', 'REVOKE', 'COMMENT', 'SECURITY', 'CLUSTER',
               'REFRESH', 'IMPORT', 'REASSIGN') THEN
    tag := first;
    is_ddl := true;
    RETURN;
  END IF;
  verb := first;
  IF first = 'WITH' THEN
    SELECT w INTO verb FROM unnest(words[2:]) WITH ORDINALITY AS t(w, k)
    WHERE w IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'VALUES', 'TABLE')
    ORDER BY k LIMIT 1;
  END IF;
  tag := CASE verb
    WHEN 'SELECT' THEN CASE WHEN 'INTO' = ANY(words) THEN 'SELECT INTO' ELSE 'SELECT' END
    WHEN 'VALUES' THEN 'SELECT'
    WHEN 'TABLE' THEN 'SELECT'
    WHEN 'TRUNCATE' THEN 'TRUNCATE TABLE'
    WHEN 'START' THEN 'START TRANSACTION'
    WHEN 'END' THEN 'COMMIT'
    WHEN 'ABORT' THEN 'ROLLBACK'
    WHEN 'COMMIT' THEN CASE WHEN second = 'PREPARED' THEN 'COMMIT PREPARED' ELSE 'COMMIT' END
    WHEN 'ROLLBACK' THEN CASE WHEN second = 'PREPARED' THEN 'ROLLBACK PREPARED' ELSE 'ROLLBACK' END
    WHEN 'PREPARE' THEN CASE WHEN second = 'TRANSACTION' THEN 'PREPARE TRANSACTION' ELSE 'PREPARE' END
    WHEN 'SET' THEN CASE WHEN second = 'CONSTRAINTS' THEN 'SET CONSTRAINTS' ELSE 'SET' END
    WHEN 'LOCK' THEN 'LOCK TABLE'
    WHEN 'ANALYSE' THEN 'ANALYZE'
    WHEN 'DECLARE' THEN 'DECLARE CURSOR'
    WHEN 'CLOSE' THEN CASE WHEN second = 'ALL' THEN 'CLOSE CURSOR ALL' ELSE 'CLOSE CURSOR' END
    WHEN 'DISCARD' THEN btrim('DISCARD ' || second)
    WHEN 'DEALLOCATE' THEN CASE WHEN second = 'ALL' THEN 'DEALLOCATE ALL' ELSE 'DEALLOCATE' END
    ELSE coalesce(verb, first)
  END;
  -- SELECT ... INTO creates a table: DDL for PostgreSQL (though PL/pgSQL's
  -- EXECUTE refuses it; CREATE TABLE AS is the spelling that runs here).
  is_ddl := tag = 'SELECT INTO';
END
$fn$;

-- SplitIdentifierString(list, ','): unquoted names are downcased, quoted ones
-- kept; NULL when the list is not valid.
CREATE OR REPLACE FUNCTION spock._split_identifiers(list text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
  rest text := ltrim(list, E' \t\r\n\f');
  result text[] := '{}';
  m text[];
BEGIN
  IF rest = '' THEN
    RETURN result;
  END IF;
  LOOP
    m := regexp_match(rest, '^(?:"((?:[^"]|"")*)"|([^\s,"][^\s,]*))\s*(,\s*)?(.*)$', 's');
    IF m IS NULL OR (m[1] IS NOT NULL AND m[1] = '') THEN
      RETURN NULL;
    END IF;
    result := result || CASE WHEN m[1] IS NOT NULL THEN replace(m[1], '""', '"')
      ELSE translate(m[2], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') END;
    IF m[3] IS NULL THEN
      RETURN CASE WHEN m[4] = '' THEN result END;
    END IF;
    rest := m[4];
    IF rest = '' THEN
      RETURN NULL;
    END IF;
  END LOOP;
END
$fn$;

-- The SET search_path statement a queued command starts with, so that it
-- runs with the path it ran with here (Spock's form); NULL for a path that
-- is not valid.
CREATE OR REPLACE FUNCTION spock._search_path_prefix(search_path text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $fn$
  SELECT CASE WHEN cardinality(l.path_list) = 0 THEN 'SET search_path TO ''''; '
    ELSE 'SET search_path TO '
      || (SELECT string_agg(quote_ident(p), ',' ORDER BY k) FROM unnest(l.path_list)
            WITH ORDINALITY AS t(p, k)) || '; '
    END
  FROM (SELECT spock._split_identifiers(search_path) AS path_list) AS l
$fn$;

-- Inserts one spock.queue row (Spock's queue_message()); the trigger of
-- 19_queue.sql sends it on as a logical message. NULL sets: every subscriber.
CREATE OR REPLACE FUNCTION spock._queue_command(role text, replication_sets text[],
  message_type "char", message json)
RETURNS void LANGUAGE sql VOLATILE AS $fn$
  INSERT INTO spock.queue (queued_at, role, replication_sets, message_type, message)
  VALUES (clock_timestamp(), role, replication_sets, message_type, message)
$fn$;

CREATE OR REPLACE FUNCTION spock.replicate_ddl(command text,
  replication_sets text[] DEFAULT '{ddl_sql}',
  search_path text DEFAULT current_setting('search_path'),
  role text DEFAULT CURRENT_USER)
RETURNS boolean LANGUAGE plpgsql VOLATILE STRICT AS $fn$
DECLARE
  local_id oid := spock._local_node_id();
  path_prefix text := spock._search_path_prefix(replicate_ddl.search_path);
  missing text;
  saved_path text := current_setting('search_path');
  saved_role text := current_setting('role');
  part record;
  kind record;
  statements text[] := '{}';
  one text;
BEGIN
  IF path_prefix IS NULL THEN
    RAISE EXCEPTION 'provided search path is not valid' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT s INTO missing FROM unnest(replicate_ddl.replication_sets) s
  WHERE NOT EXISTS (SELECT 1 FROM spock.replication_set r
                    WHERE r.set_nodeid = local_id AND r.set_name = s)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'replication set % not found', missing USING ERRCODE = 'undefined_object';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = replicate_ddl.role) THEN
    RAISE EXCEPTION 'role "%" does not exist', replicate_ddl.role USING ERRCODE = 'undefined_object';
  END IF;
  PERFORM spock._queue_command(replicate_ddl.role, nullif(replicate_ddl.replication_sets, '{}'),
    'Q', to_json(path_prefix || command));
  -- Classify every statement before running any, so a refused one changes
  -- nothing; collect them first, as the role may not use the spock schema.
  FOR part IN SELECT * FROM spock._split_sql(command) LOOP
    kind := spock._command_tag(part.skeleton);
    IF NOT kind.is_ddl THEN
      RAISE EXCEPTION 'spock.replicate_ddl() cannot execute % statement', kind.tag
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    statements := statements || part.statement;
  END LOOP;
  PERFORM set_config('search_path', replicate_ddl.search_path, true);
  IF replicate_ddl.role <> current_user THEN
    PERFORM set_config('role', replicate_ddl.role, true);
  END IF;
  -- Queued already: automatic DDL replication leaves these statements alone.
  PERFORM set_config('spock._ddl_queued', 'on', true);
  FOREACH one IN ARRAY statements LOOP
    EXECUTE one;
  END LOOP;
  PERFORM set_config('spock._ddl_queued', '', true);
  PERFORM set_config('role', saved_role, true);
  PERFORM set_config('search_path', saved_path, true);
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION spock.replicate_ddl(command text[],
  replication_sets text[] DEFAULT '{ddl_sql}',
  search_path text DEFAULT current_setting('search_path'),
  role text DEFAULT CURRENT_USER)
RETURNS SETOF boolean LANGUAGE sql VOLATILE STRICT AS
  'SELECT spock.replicate_ddl(cmd, $2, $3, $4) FROM (SELECT unnest(command) cmd) AS t';
