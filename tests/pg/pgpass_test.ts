/**
 * Tests for mod/pg/pgpass.ts: field matching, wildcards, escapes, comments
 * and libpq's `localhost`-means-default-socket rule.
 */
import assert from "node:assert/strict";
import { lookupPgpass } from "../../mod/pg/pgpass.ts";

const TARGET = { host: "db1", port: 5432, dbname: "app", user: "alice" };

Deno.test("lookupPgpass() returns the password of the first matching line", () => {
  const text = [
    "db2:5432:app:alice:wrong-host",
    "db1:5433:app:alice:wrong-port",
    "db1:5432:other:alice:wrong-db",
    "db1:5432:app:bob:wrong-user",
    "db1:5432:app:alice:right",
    "db1:5432:app:alice:later",
  ].join("\n");
  assert.equal(lookupPgpass(text, TARGET), "right");
});

Deno.test("lookupPgpass() returns undefined when nothing matches", () => {
  assert.equal(lookupPgpass("", TARGET), undefined);
  assert.equal(lookupPgpass("db2:*:*:*:x\n", TARGET), undefined);
  assert.equal(lookupPgpass("db1:5432:app:alice\n", TARGET), undefined);
  assert.equal(lookupPgpass("db1:5432:app\n", TARGET), undefined);
  assert.equal(lookupPgpass("db:5432:app:alice:x\n", TARGET), undefined);
  assert.equal(lookupPgpass("db11:5432:app:alice:x\n", TARGET), undefined);
});

Deno.test("lookupPgpass() treats a lone * field as a wildcard", () => {
  assert.equal(lookupPgpass("*:*:*:*:any", TARGET), "any");
  assert.equal(lookupPgpass("*:5432:*:alice:p", TARGET), "p");
  assert.equal(lookupPgpass("db1:*:app:*:p", TARGET), "p");
  assert.equal(lookupPgpass("*:*:*:bob:p", TARGET), undefined);
  assert.equal(lookupPgpass("db*:*:*:*:p", TARGET), undefined);
  assert.equal(lookupPgpass("\\*:*:*:*:literal", { ...TARGET, host: "*" }), "literal");
  assert.equal(lookupPgpass("\\*:*:*:*:literal", TARGET), undefined);
});

Deno.test("lookupPgpass() reads \\: and \\\\ escapes in fields and the password", () => {
  const target = { host: "h", port: 5432, dbname: "a:b", user: "back\\slash" };
  assert.equal(lookupPgpass("h:5432:a\\:b:back\\\\slash:pw", target), "pw");
  assert.equal(lookupPgpass("*:*:*:*:p\\:w\\\\d", TARGET), "p:w\\d");
  assert.equal(lookupPgpass("*:*:*:*:pass:ignored", TARGET), "pass");
  assert.equal(lookupPgpass("*:*:*:*:trailing\\", TARGET), "trailing\\");
  assert.equal(lookupPgpass("*:*:*:*:", TARGET), "");
});

Deno.test("lookupPgpass() skips comments, blank lines and CRLF endings", () => {
  const text = "# db1:5432:app:alice:commented\n\n\r\ndb1:5432:app:alice:found\r\n";
  assert.equal(lookupPgpass(text, TARGET), "found");
  assert.equal(lookupPgpass(" # not a comment\n*:*:*:*:p", TARGET), "p");
});

Deno.test("lookupPgpass() matches localhost for default socket connections", () => {
  const text = "localhost:5432:app:alice:local";
  assert.equal(lookupPgpass(text, { ...TARGET, host: undefined }), "local");
  assert.equal(lookupPgpass(text, { ...TARGET, host: "" }), "local");
  assert.equal(lookupPgpass(text, { ...TARGET, host: "/tmp" }), "local");
  assert.equal(lookupPgpass(text, { ...TARGET, host: "/var/run/postgresql" }), "local");
  assert.equal(lookupPgpass(text, { ...TARGET, host: "localhost" }), "local");
  assert.equal(lookupPgpass(text, { ...TARGET, host: "/srv/sockets" }), undefined);
  assert.equal(
    lookupPgpass(text, { ...TARGET, host: "/srv/sockets" }, {
      defaultSocketDirs: ["/srv/sockets"],
    }),
    "local",
  );
  assert.equal(lookupPgpass("/srv/sockets:*:*:*:dir", { ...TARGET, host: "/srv/sockets" }), "dir");
});

Deno.test("lookupPgpass() applies libpq's defaults for port, dbname and hostaddr", () => {
  assert.equal(lookupPgpass("db1:5432:app:alice:p", { ...TARGET, port: undefined }), "p");
  assert.equal(lookupPgpass("db1:5432:app:alice:p", { ...TARGET, port: "5432" }), "p");
  assert.equal(lookupPgpass("db1:5432:alice:alice:p", { ...TARGET, dbname: undefined }), "p");
  assert.equal(
    lookupPgpass("10.0.0.1:5432:app:alice:p", { ...TARGET, host: "", hostaddr: "10.0.0.1" }),
    "p",
  );
  assert.equal(lookupPgpass("*:*:*:*:p", { ...TARGET, user: undefined }), undefined);
  assert.equal(lookupPgpass("*:*:*:*:p", { ...TARGET, user: "" }), undefined);
});
