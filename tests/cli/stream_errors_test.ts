/**
 * `spock stream` failures: each is one line on stderr that names what failed
 * and how to fix it, exit code 1, nothing on stdout, and never a password.
 */
import assert from "node:assert/strict";
import { freePorts, pgTest, runSpock } from "../_harness/mod.ts";

const SECRET = "hunter2-Secret";

/** Asserts exit code 1, empty stdout, and exactly one stderr line matching `pattern`. */
function assertFailure(
  result: { code: number; stdout: string; stderr: string },
  pattern: RegExp,
): void {
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^spock stream: [^\n]+\n$/, "one line on stderr");
  assert.match(result.stderr, pattern);
  assert.ok(!result.stderr.includes(SECRET), `the password leaked: ${result.stderr}`);
}

function stream(dsn: string, ...more: string[]): ReturnType<typeof runSpock> {
  return runSpock(["stream", "--dsn", dsn, ...more]);
}

Deno.test("spock stream rejects an invalid DSN on one line", async () => {
  const result = await stream("host=127.0.0.1 port=notaport", "--slot", "s", "--publication", "p");
  assertFailure(result, /^spock stream: Invalid DSN: port "notaport" is not a number\n$/);
});

Deno.test("spock stream reports a refused connection without the password", async (t) => {
  const port = freePorts(1)[0];
  await t.step("key=value DSN", async () => {
    const result = await stream(
      `host=127.0.0.1 port=${port} user=postgres password=${SECRET}`,
      "--slot",
      "s",
      "--publication",
      "p",
    );
    assertFailure(
      result,
      new RegExp(
        `^spock stream: Cannot connect to host=127\\.0\\.0\\.1 port=${port} user=postgres ` +
          `password=\\*{8}: .*ECONNREFUSED`,
      ),
    );
  });
  await t.step("URI DSN", async () => {
    const result = await stream(
      `postgresql://postgres:${SECRET}@127.0.0.1:${port}/postgres`,
      "--slot",
      "s",
      "--publication",
      "p",
    );
    assertFailure(
      result,
      new RegExp(
        `^spock stream: Cannot connect to postgresql://postgres:\\*{8}@127\\.0\\.0\\.1:${port}/postgres: `,
      ),
    );
  });
});

pgTest(
  "spock stream explains a missing slot, a missing publication and a taken slot name",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe(`
      create table t (id int primary key);
      create publication pub for table t;
    `);
    await sql`select pg_create_logical_replication_slot('taken', 'pgoutput')`;
    // The server trusts every connection, so the password is accepted and must still not show.
    const dsn = cluster.dsn({ password: SECRET });

    await t.step("a missing slot suggests --create-slot", async () => {
      const result = await stream(dsn, "--slot", "nope", "--publication", "pub");
      assertFailure(
        result,
        /^spock stream: Replication slot "nope" does not exist: create it with --create-slot\n$/,
      );
    });

    await t.step("a missing publication suggests CREATE PUBLICATION", async () => {
      const result = await stream(
        dsn,
        "--slot",
        "taken",
        "--publication",
        "pub",
        "--publication",
        "nopub",
      );
      assertFailure(
        result,
        /^spock stream: Publication "nopub" does not exist in this database: create it with CREATE PUBLICATION\n$/,
      );
    });

    await t.step("--create-slot on an existing slot suggests dropping the flag", async () => {
      const result = await stream(dsn, "--slot", "taken", "--publication", "pub", "--create-slot");
      assertFailure(
        result,
        /^spock stream: Replication slot "taken" already exists: drop --create-slot to use it\n$/,
      );
      const [slot] = await sql`select active from pg_replication_slots where slot_name = 'taken'`;
      assert.equal(slot.active, false);
    });
  },
);

pgTest("spock stream refuses a server without wal_level=logical", async (_t, cluster) => {
  const sql = cluster.connect();
  const [setting] = await sql`show wal_level`;
  assert.equal(setting.wal_level, "replica", "the harness applies conf overrides");
  await sql`create publication pub`;
  const result = await stream(
    cluster.dsn({ password: SECRET }),
    "--slot",
    "s",
    "--publication",
    "pub",
    "--create-slot",
  );
  assertFailure(
    result,
    /^spock stream: The server at host=127\.0\.0\.1 .*password=\*{8} has wal_level=replica: set wal_level = logical in postgresql\.conf and restart PostgreSQL\n$/,
  );
}, { conf: { wal_level: "replica" } });
