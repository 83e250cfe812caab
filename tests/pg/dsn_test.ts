/**
 * Tests for mod/pg/dsn.ts: both DSN forms, environment fallbacks, every
 * rejection (which must never echo a password), masking and round trips.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ConnectionParams,
  DsnError,
  formatDsn,
  isUnixSocketHost,
  maskDsn,
  parseDsn,
} from "../../mod/pg/dsn.ts";

const KEYWORD_VALUE_CASES: [string, ConnectionParams][] = [
  ["", {}],
  ["   \t\n ", {}],
  ["host=localhost", { host: "localhost" }],
  ["host=db port=5433 dbname=app user=alice", {
    host: "db",
    port: 5433,
    dbname: "app",
    user: "alice",
  }],
  ["host = db   port= 5433  dbname =app", { host: "db", port: 5433, dbname: "app" }],
  ["host=db\tport=6000\n", { host: "db", port: 6000 }],
  ["password='se cret'", { password: "se cret" }],
  ["password='it\\'s' user='back\\\\slash'", { password: "it's", user: "back\\slash" }],
  ["password='' user=bob", { user: "bob" }],
  ["application_name='spock worker 1'", { applicationName: "spock worker 1" }],
  ["options='-c search_path=app -c statement_timeout=0'", {
    options: "-c search_path=app -c statement_timeout=0",
  }],
  ["dbname=a\\ b", { dbname: "a b" }],
  ["host='a'port=1", { host: "a", port: 1 }],
  ["host=/var/run/postgresql", { host: "/var/run/postgresql" }],
  ["host=@abstract", { host: "@abstract" }],
  ["hostaddr=10.0.0.1 host=db.example", { host: "db.example", hostaddr: "10.0.0.1" }],
  ["dbname=x dbname=y", { dbname: "y" }],
  ["port=' 5432 '", { port: 5432 }],
  ["sslmode=verify-full sslrootcert=/ca.pem sslcert=/c.pem sslkey=/k.pem", {
    sslmode: "verify-full",
    sslrootcert: "/ca.pem",
    sslcert: "/c.pem",
    sslkey: "/k.pem",
  }],
  ["connect_timeout=10 passfile=/home/u/.pgpass target_session_attrs=read-write", {
    connectTimeout: 10,
    passfile: "/home/u/.pgpass",
    targetSessionAttrs: "read-write",
  }],
  ["connect_timeout=0", { connectTimeout: 0 }],
  ["host=a,b port=5432", {
    host: "a,b",
    port: 5432,
    hosts: [{ host: "a", port: 5432 }, { host: "b", port: 5432 }],
  }],
  ["host=a,b,c port=1,2,3", {
    host: "a,b,c",
    hosts: [{ host: "a", port: 1 }, { host: "b", port: 2 }, { host: "c", port: 3 }],
  }],
  ["host=a,/tmp port=1,", {
    host: "a,/tmp",
    hosts: [{ host: "a", port: 1 }, { host: "/tmp" }],
  }],
  ["host=a,b hostaddr=10.0.0.1,10.0.0.2", {
    host: "a,b",
    hostaddr: "10.0.0.1,10.0.0.2",
    hosts: [{ host: "a", hostaddr: "10.0.0.1" }, { host: "b", hostaddr: "10.0.0.2" }],
  }],
  ["host=a,b", { host: "a,b", hosts: [{ host: "a" }, { host: "b" }] }],
];

Deno.test("parseDsn() reads key=value strings", () => {
  for (const [dsn, expected] of KEYWORD_VALUE_CASES) {
    assert.deepEqual(parseDsn(dsn), expected, dsn);
  }
});

Deno.test("parseDsn() reads single-quoted values with escapes", () => {
  assert.deepEqual(parseDsn(String.raw`password='a\'b\\c d'`), { password: "a'b\\c d" });
  assert.deepEqual(parseDsn(String.raw`password='\x'`), { password: "x" });
  assert.deepEqual(parseDsn(`application_name='émoji 🐘'`), { applicationName: "émoji 🐘" });
});

const URI_CASES: [string, ConnectionParams][] = [
  ["postgresql://", {}],
  ["postgres://", {}],
  ["postgresql://localhost", { host: "localhost" }],
  ["postgresql://localhost:5433", { host: "localhost", port: 5433 }],
  ["postgresql://localhost/mydb", { host: "localhost", dbname: "mydb" }],
  ["postgresql://user@localhost", { host: "localhost", user: "user" }],
  ["postgresql://user:secret@localhost", { host: "localhost", user: "user", password: "secret" }],
  ["postgresql://:secret@localhost", { host: "localhost", password: "secret" }],
  ["postgresql://user:@localhost", { host: "localhost", user: "user" }],
  ["postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp", {
    host: "localhost",
    user: "other",
    dbname: "otherdb",
    connectTimeout: 10,
    applicationName: "myapp",
  }],
  ["postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp", {
    host: "host1,host2",
    dbname: "somedb",
    targetSessionAttrs: "any",
    applicationName: "myapp",
    hosts: [{ host: "host1", port: 123 }, { host: "host2", port: 456 }],
  }],
  ["postgresql://h1,h2:5433/db", {
    host: "h1,h2",
    dbname: "db",
    hosts: [{ host: "h1" }, { host: "h2", port: 5433 }],
  }],
  ["postgresql://[::1]:5432/db", { host: "::1", port: 5432, dbname: "db" }],
  ["postgresql://[2001:db8::1234]/database", { host: "2001:db8::1234", dbname: "database" }],
  ["postgresql://[::1],[fe80::1%25eth0]:7", {
    host: "::1,fe80::1%eth0",
    hosts: [{ host: "::1" }, { host: "fe80::1%eth0", port: 7 }],
  }],
  ["postgresql://%2Fvar%2Frun%2Fpostgresql/db", { host: "/var/run/postgresql", dbname: "db" }],
  ["postgresql:///db?host=/tmp", { host: "/tmp", dbname: "db" }],
  ["postgresql:///db?host=%2Ftmp&port=5433", { host: "/tmp", port: 5433, dbname: "db" }],
  ["postgresql://localhost/db?host=other", { host: "other", dbname: "db" }],
  ["postgresql://a%40b:p%40ss%3Aw%2Frd@h/my%20db", {
    host: "h",
    user: "a@b",
    password: "p@ss:w/rd",
    dbname: "my db",
  }],
  ["postgresql://u:pa?ss@h/db", { host: "h", user: "u", password: "pa?ss", dbname: "db" }],
  ["postgresql://h/db?sslmode=require&", { host: "h", dbname: "db", sslmode: "require" }],
  ["postgresql://h?ssl=true", { host: "h", sslmode: "require" }],
  ["postgresql://h/?dbname=x", { host: "h", dbname: "x" }],
  ["postgresql://h/db?password=s%20t&user=me", {
    host: "h",
    dbname: "db",
    password: "s t",
    user: "me",
  }],
  ["postgresql://h/caf%C3%A9", { host: "h", dbname: "café" }],
  ["  postgresql://h/db\n", { host: "h", dbname: "db" }],
];

Deno.test("parseDsn() reads postgresql:// and postgres:// URIs", () => {
  for (const [dsn, expected] of URI_CASES) {
    assert.deepEqual(parseDsn(dsn), expected, dsn);
  }
});

Deno.test("parseDsn() fills unset parameters from the environment", () => {
  const env = {
    PGHOST: "envhost",
    PGHOSTADDR: "10.1.1.1",
    PGPORT: "6432",
    PGDATABASE: "envdb",
    PGUSER: "envuser",
    PGPASSWORD: "envpass",
    PGSSLMODE: "require",
    PGSSLROOTCERT: "/r.pem",
    PGSSLCERT: "/c.pem",
    PGSSLKEY: "/k.pem",
    PGAPPNAME: "envapp",
    PGCONNECT_TIMEOUT: "5",
    PGOPTIONS: "-c x=1",
    PGPASSFILE: "/p",
    PGTARGETSESSIONATTRS: "primary",
    UNRELATED: "ignored",
  };
  assert.deepEqual(parseDsn("", env), {
    host: "envhost",
    hostaddr: "10.1.1.1",
    port: 6432,
    dbname: "envdb",
    user: "envuser",
    password: "envpass",
    sslmode: "require",
    sslrootcert: "/r.pem",
    sslcert: "/c.pem",
    sslkey: "/k.pem",
    applicationName: "envapp",
    connectTimeout: 5,
    options: "-c x=1",
    passfile: "/p",
    targetSessionAttrs: "primary",
  });
});

Deno.test("parseDsn() prefers the DSN over the environment", () => {
  const env = { PGHOST: "envhost", PGPORT: "6432", PGUSER: "envuser", PGPASSWORD: "envpass" };
  assert.deepEqual(parseDsn("host=dsnhost user=dsnuser", env), {
    host: "dsnhost",
    port: 6432,
    user: "dsnuser",
    password: "envpass",
  });
  assert.deepEqual(parseDsn("postgresql://u:p@h:1/d", env), {
    host: "h",
    port: 1,
    user: "u",
    password: "p",
    dbname: "d",
  });
  assert.deepEqual(parseDsn("postgresql:///d", env), {
    host: "envhost",
    port: 6432,
    user: "envuser",
    password: "envpass",
    dbname: "d",
  });
});

Deno.test("parseDsn() lets an explicitly empty value block the environment", () => {
  const env = { PGHOST: "envhost", PGPASSWORD: "envpass", PGPORT: "6432" };
  assert.deepEqual(parseDsn("host='' password='' port=''", env), {});
  assert.deepEqual(parseDsn("", { PGHOST: "" }), {});
});

Deno.test("parseDsn() reads multi-host lists from the environment", () => {
  assert.deepEqual(parseDsn("", { PGHOST: "a,b", PGPORT: "1,2" }), {
    host: "a,b",
    hosts: [{ host: "a", port: 1 }, { host: "b", port: 2 }],
  });
});

Deno.test("parseDsn() ignores an undefined environment value", () => {
  assert.deepEqual(parseDsn("", { PGHOST: undefined }), {});
});

const SECRET = "Hunter2-Pw";

const ERROR_CASES: [dsn: string, message: string | RegExp, env?: Record<string, string>][] = [
  ["hots=db", 'Invalid DSN: unknown parameter "hots"'],
  ["host=db replication=database", /parameter "replication" is not allowed/],
  ["postgresql://h?replication=true", /parameter "replication" is not allowed/],
  ["mydb", 'Invalid DSN: missing "=" after "mydb"'],
  ["host db", 'Invalid DSN: missing "=" after "host"'],
  ["=x", 'Invalid DSN: unknown parameter ""'],
  ["host='db", 'Invalid DSN: unterminated quoted value for "host"'],
  ["port=99999", 'Invalid DSN: port "99999" is out of range 1-65535'],
  ["port=0", 'Invalid DSN: port "0" is out of range 1-65535'],
  ["port=abc", 'Invalid DSN: port "abc" is not a number'],
  ["port=-1", 'Invalid DSN: port "-1" is not a number'],
  ["port=5432x", 'Invalid DSN: port "5432x" is not a number'],
  ["", 'Invalid DSN: port "x" from PGPORT is not a number', { PGPORT: "x" }],
  ["postgresql://h:99999", 'Invalid DSN: port "99999" is out of range 1-65535'],
  ["postgresql://h:http", 'Invalid DSN: port "http" is not a number'],
  ["sslmode=maybe", /^Invalid DSN: sslmode "maybe" is not one of disable, allow, prefer,/],
  ["", /sslmode "on" from PGSSLMODE is not one of/, { PGSSLMODE: "on" }],
  ["postgresql://h?ssl=false", 'Invalid DSN: unknown parameter "ssl"'],
  ["connect_timeout=soon", 'Invalid DSN: connect_timeout "soon" is not a number'],
  ["connect_timeout=-5", 'Invalid DSN: connect_timeout "-5" is not a number'],
  ["connect_timeout=9999999999", /connect_timeout "9999999999" is out of range 0-2147483647/],
  ["target_session_attrs=writable", /target_session_attrs "writable" is not one of any,/],
  ["host=a,b port=1,2,3", "Invalid DSN: 3 ports given for 2 hosts"],
  ["port=1,2", "Invalid DSN: 2 ports given for 1 hosts"],
  ["host=a,b hostaddr=1.1.1.1", "Invalid DSN: 2 host names given for 1 hostaddr values"],
  ["postgresql://[::1", /^Invalid DSN: malformed URI: missing "\]" after IPv6 address/],
  ["postgresql://[]/db", /^Invalid DSN: malformed URI: empty IPv6 address/],
  ["postgresql://[::1]x/db", /^Invalid DSN: malformed URI: unexpected "x" after IPv6 address/],
  [
    "postgresql://h/db?sslmode",
    /^Invalid DSN: malformed URI: query parameter "sslmode" has no "="/,
  ],
  [
    "postgresql://h/db?sslmode=require&&b=2",
    /^Invalid DSN: malformed URI: query parameter "" has no "="/,
  ],
  ["postgresql://h/db?options=-c x=1", /query parameter "options" has a second "="/],
  ["postgresql://h/db?hots=x", 'Invalid DSN: unknown parameter "hots"'],
  ["postgresql://h/d%zzb", 'Invalid DSN: invalid percent-encoding "%zz" in dbname'],
  ["postgresql://h/db%4", 'Invalid DSN: invalid percent-encoding "%4" in dbname'],
  ["postgresql://h/d%00b", "Invalid DSN: percent-encoded NUL byte in dbname"],
  ["postgresql://h/d%C3b", "Invalid DSN: percent-encoded dbname is not valid UTF-8"],
  ["postgresql://%zz/db", 'Invalid DSN: invalid percent-encoding "%zz" in host'],
];

Deno.test("parseDsn() rejects invalid DSNs with a DsnError naming the problem", () => {
  for (const [dsn, message, env] of ERROR_CASES) {
    assert.throws(() => parseDsn(dsn, env), (error: unknown) => {
      assert.ok(error instanceof DsnError, dsn);
      assert.ok(error instanceof TypeError);
      assert.equal(error.code, "ERR_DSN_INVALID");
      assert.equal(error.name, "DsnError");
      if (typeof message === "string") assert.equal(error.message, message, dsn);
      else assert.match(error.message, message, dsn);
      return true;
    });
  }
});

/** Asserts that parsing fails and that no fragment of the password reaches the message. */
function assertRejectsSecretly(dsn: string, secretParts: string[], env?: Record<string, string>) {
  assert.throws(() => parseDsn(dsn, env), (error: unknown) => {
    assert.ok(error instanceof DsnError, dsn);
    for (const part of secretParts) {
      assert.ok(!error.message.includes(part), `${dsn} leaked ${part}: ${error.message}`);
    }
    return true;
  });
}

Deno.test("parseDsn() never puts a password into an error message", () => {
  const cases: [string, string[], Record<string, string>?][] = [
    [`password=${SECRET} hots=x`, [SECRET]],
    [`password=${SECRET} port=99999`, [SECRET]],
    [`password='${SECRET}`, [SECRET]],
    [`password=${SECRET} 'x`, [SECRET]],
    [`password=Hunter2 Pw`, ["Hunter2", "Pw"]],
    [`password=Hunter2 Pw=x`, ["Hunter2", "Pw"]],
    [`password=Hunter2 host`, ["Hunter2", "host"]],
    [`user=u password = ${SECRET} sslmode=bad`, [SECRET]],
    [`postgresql://u:${SECRET}@h:99999/db`, [SECRET]],
    [`postgresql://u:${SECRET}@h/db?hots=1`, [SECRET]],
    ["postgresql://u:pa/ss@host/db", ["pa/ss", "pa"]],
    ["postgresql://u:Hun%zzter@h/db", ["Hun", "%zz", "ter"]],
    ["postgresql://u:Hun%00ter@h/db", ["Hun", "ter"]],
    ["postgresql://u:Hun%C3ter@h/db", ["Hun", "ter"]],
    [`postgresql://h/db?password=${SECRET}&sslmode=bad`, [SECRET]],
    [`postgresql://h/db?password=Hunter%zz`, ["Hunter", "%zz"]],
    [`postgresql://h/db?password=${SECRET}&x`, [SECRET]],
    [`postgresql://h/db?password=a=${SECRET}`, [SECRET]],
    [`mysql://u:${SECRET}@h/db`, [SECRET]],
    [`postgresql://u:${SECRET}@[::1`, [SECRET]],
    ["", [SECRET], { PGPASSWORD: SECRET, PGPORT: SECRET }],
    [`port=${SECRET}`, [SECRET], { PGPASSWORD: SECRET }],
  ];
  for (const [dsn, parts, env] of cases) assertRejectsSecretly(dsn, parts, env);
});

const MASK_CASES: [string, string][] = [
  ["", ""],
  ["host=db", "host=db"],
  ["host=db password=secret user=u", "host=db password=******** user=u"],
  ["password='se cret' host=db", "password=******** host=db"],
  ["password = 'it\\'s' host=db", "password = ******** host=db"],
  ["password=''", "password=********"],
  ["host=db password=", "host=db password="],
  ["postgresql://user:secret@host/db", "postgresql://user:********@host/db"],
  ["postgres://user:secret@host:5432/db", "postgres://user:********@host:5432/db"],
  ["postgresql://user@host/db", "postgresql://user@host/db"],
  ["postgresql://host:5432/db", "postgresql://host:5432/db"],
  ["postgresql://u:pa?ss@h/db", "postgresql://u:********@h/db"],
  ["postgresql://h/db?password=secret", "postgresql://h/db?password=********"],
  [
    "postgresql://u:a@h/db?sslmode=require&password=b&application_name=x",
    "postgresql://u:********@h/db?sslmode=require&password=********&application_name=x",
  ],
  ["postgresql://h/db?pass%77ord=secret", "postgresql://h/db?pass%77ord=********"],
  ["postgresql://u:%41b@h", "postgresql://u:********@h"],
  ["  postgresql://u:p@h", "  postgresql://u:********@h"],
  ["application_name=password host=x", "application_name=password host=x"],
];

Deno.test("maskDsn() masks passwords in valid DSNs of both forms", () => {
  for (const [dsn, expected] of MASK_CASES) assert.equal(maskDsn(dsn), expected, dsn);
});

const UNPARSABLE_MASK_CASES: [string, string][] = [
  ["password=secret hots=x", "password=******** hots=x"],
  ["password='se cret", "password=********"],
  ["host='x password=secret", "host='x password=********"],
  ["PASSWORD=secret", "PASSWORD=********"],
  ["sslpassword=secret host=x", "sslpassword=******** host=x"],
  ["password=secret port=99999", "password=******** port=99999"],
  ["postgresql://u:secret@[::1", "postgresql://u:********@[::1"],
  ["postgresql://u:pa/ss@host/db", "postgresql://u:********@host/db"],
  ["postgresql://u:secret@h:99999/db", "postgresql://u:********@h:99999/db"],
  ["postgresql://h/db?password=secret&bad", "postgresql://h/db?password=********&bad"],
  ["postgresql://h/db?password=s%zz", "postgresql://h/db?password=********"],
  ["mysql://root:secret@db/x", "mysql://root:********@db/x"],
  [
    "jdbc:postgresql://h/db?user=u&password=secret",
    "jdbc:postgresql://h/db?user=u&password=********",
  ],
  ["see postgresql://u:secret@h and more", "see postgresql://u:********@h and more"],
];

Deno.test("maskDsn() masks passwords in DSNs that do not parse", () => {
  for (const [dsn, expected] of UNPARSABLE_MASK_CASES) {
    assert.throws(() => parseDsn(dsn), DsnError, dsn);
    assert.equal(maskDsn(dsn), expected, dsn);
  }
});

Deno.test("maskDsn() never throws", () => {
  for (const dsn of ["'", "=", "postgresql://", "postgresql://@", "%", "password", "\\", "://:@"]) {
    assert.equal(typeof maskDsn(dsn), "string");
  }
});

Deno.test("formatDsn() renders parameters as key=value pairs", () => {
  assert.equal(formatDsn({}), "");
  assert.equal(
    formatDsn({ host: "db", port: 5432, dbname: "app", user: "u" }),
    "host=db port=5432 dbname=app user=u",
  );
  assert.equal(
    formatDsn({ password: "it's a \\ secret", applicationName: "" }),
    String.raw`password='it\'s a \\ secret' application_name=''`,
  );
  assert.equal(
    formatDsn({ host: "a,b", port: 1, hosts: [{ host: "a", port: 1 }, { host: "b", port: 1 }] }),
    "host=a,b port=1",
  );
  assert.equal(
    formatDsn({ hosts: [{ host: "a", port: 1 }, { hostaddr: "10.0.0.2" }] }),
    "host=a, hostaddr=,10.0.0.2 port=1,",
  );
});

Deno.test("formatDsn() round-trips through parseDsn()", () => {
  const inputs = [
    ...KEYWORD_VALUE_CASES.map(([dsn]) => dsn),
    ...URI_CASES.map(([dsn]) => dsn),
    "host=a,b port=5432,5432",
    "options='-c a=b' password='\\\\\\'' application_name='tab\there'",
  ];
  for (const dsn of inputs) {
    const params = parseDsn(dsn);
    assert.deepEqual(parseDsn(formatDsn(params)), params, dsn);
  }
});

Deno.test("isUnixSocketHost() recognizes socket directories and abstract sockets", () => {
  assert.equal(isUnixSocketHost("/tmp"), true);
  assert.equal(isUnixSocketHost("@abstract"), true);
  assert.equal(isUnixSocketHost("localhost"), false);
  assert.equal(isUnixSocketHost("::1"), false);
  assert.equal(isUnixSocketHost(""), false);
});

/** Values for free-text fields: quotes, backslashes, spaces and non-ASCII included. */
const text = fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" });
const hostName = fc.stringMatching(/^[a-z0-9./@_-]{1,12}$/);

Deno.test("formatDsn() round-trips arbitrary parameters (property)", () => {
  const params = fc.record({
    host: hostName,
    port: fc.integer({ min: 1, max: 65535 }),
    dbname: text,
    user: text,
    password: text,
    sslmode: fc.constantFrom("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    applicationName: text,
    options: text,
    connectTimeout: fc.nat(),
  }, { requiredKeys: [] });
  fc.assert(fc.property(params, (p) => {
    assert.deepEqual(parseDsn(formatDsn(p as ConnectionParams)), { ...p });
  }));
});

Deno.test("maskDsn() hides arbitrary passwords in both forms (property)", () => {
  const password = fc.string({ minLength: 4, maxLength: 16, unit: "grapheme" });
  fc.assert(fc.property(password, hostName, (pw, host) => {
    const keywordValue = formatDsn({ host, user: "u", password: pw });
    const masked = maskDsn(keywordValue);
    if (!formatDsn({ host, user: "u" }).includes(pw)) assert.ok(!masked.includes(pw), masked);
    const encoded = encodeURIComponent(pw);
    const uri = `postgresql://u:${encoded}@${encodeURIComponent(host)}/db?password=${encoded}`;
    // A password that is also part of the rest of the URI (say "gres") stays visible there.
    const rest = `postgresql://u:@${encodeURIComponent(host)}/db?password=`;
    if (!rest.includes(encoded)) assert.ok(!maskDsn(uri).includes(encoded), maskDsn(uri));
  }));
});

Deno.test("parseDsn() throws only DsnError, and maskDsn() never throws, on any input (property)", () => {
  const anything = fc.oneof(
    fc.string({ unit: "grapheme" }),
    fc.string({
      unit: fc.constantFrom("h", "=", "'", "\\", " ", "@", ":", "/", "?", "&", "%", "["),
    }),
    fc.string().map((rest) => `postgresql://${rest}`),
  );
  fc.assert(fc.property(anything, (dsn) => {
    try {
      parseDsn(dsn);
    } catch (error) {
      assert.ok(error instanceof DsnError, String(error));
    }
    assert.equal(typeof maskDsn(dsn), "string");
  }));
});

Deno.test("parseDsn() keeps a quoted password out of errors whatever follows (property)", () => {
  const password = fc.stringMatching(/^[A-Za-z0-9]{6,12}$/);
  const rest = fc.string({ unit: fc.constantFrom("x", "=", "'", " ", "port", "9", "ssl", "mode") });
  fc.assert(fc.property(password, rest, (pw, tail) => {
    fc.pre(!tail.includes(pw) && !"password".includes(pw));
    try {
      parseDsn(`password='${pw}' ${tail}`);
    } catch (error) {
      assert.ok(!(error as Error).message.includes(pw), (error as Error).message);
    }
  }));
});
