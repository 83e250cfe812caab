

CREATE OR REPLACE FUNCTION spock._hash_bytes(key bytea) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
  len int := length(key);
  a bigint;
  b bigint;
  c bigint;
  pos int := 0;
  m bigint := 4294967295;
  w bigint;
BEGIN
  a := (2654435769 + len + 3923095) & m;  -- 0x9e3779b9 + len + 3923095
  b := a;
  c := a;
  WHILE len - pos >= 12 LOOP
    a := (a + spock._le32(key, pos)) & m;
    b := (b + spock._le32(key, pos + 4)) & m;
    c := (c + spock._le32(key, pos + 8)) & m;
    -- mix(a, b, c)
    a := (a - c) & m; a := a # spock._rot(c, 4);  c := (c + b) & m;
    b := (b - a) & m; b := b # spock._rot(a, 6);  a := (a + c) & m;
    c := (c - b) & m; c := c # spock._rot(b, 8);  b := (b + a) & m;
    a := (a - c) & m; a := a # spock._rot(c, 16); c := (c + b) & m;
    b := (b - a) & m; b := b # spock._rot(a, 19); a := (a + c) & m;
    c := (c - b) & m; c := c # spock._rot(b, 4);  b := (b + a) & m;
    pos := pos + 12;
  END LOOP;
  -- the last 0..11 bytes, little-endian into a, b and c (c's low byte is the length's)
  FOR i IN 0 .. (len - pos - 1) LOOP
    w := get_byte(key, pos + i);
    IF i < 4 THEN
      a := (a + (w << (8 * i))) & m;
    ELSIF i < 8 THEN
      b := (b + (w << (8 * (i - 4)))) & m;
    ELSE
      c := (c + (w << (8 * (i - 7)))) & m;
    END IF;
  END LOOP;
  -- final(a, b, c)
  c := c # b; c := (c - spock._rot(b, 14)) & m;
  a := a # c; a := (a - spock._rot(c, 11)) & m;
  b := b # a; b := (b - spock._rot(a, 25)) & m;
  c := c # b; c := (c - spock._rot(b, 16)) & m;
  a := a # c; a := (a - spock._rot(c, 4)) & m;
  b := b # a; b := (b - spock._rot(a, 14)) & m;
  c := c # b; c := (c - spock._rot(b, 24)) & m;
  RETURN (CASE WHEN c >= 2147483648 THEN c - 4294967296 ELSE c END)::integer;
END
$fn$;
