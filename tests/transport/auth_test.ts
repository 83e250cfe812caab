/**
 * Connecting a ReplicationConnection the ways users do: trust, SCRAM-SHA-256,
 * md5, TLS under each sslmode, a unix socket, a URI, PG* environment defaults
 * and a password file, each checked with IDENTIFY_SYSTEM and, where it
 * matters, pg_stat_ssl. One TLS-enabled cluster per version serves them all.
 */
import assert from "node:assert/strict";
import { type Cluster, pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import { ReplicationConnection } from "../../mod/transport/mod.ts";
import { resolveConnectOptions } from "../../mod/pg/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";

const SCRAM_PASSWORD = "s3cr@t:pw";
const MD5_PASSWORD = "md5-pw";

const HBA = [
  "host all scram_user 127.0.0.1/32 scram-sha-256",
  "host replication scram_user 127.0.0.1/32 scram-sha-256",
  "host all md5_user 127.0.0.1/32 md5",
  "hostssl all ssl_user 127.0.0.1/32 trust",
  "hostnossl all ssl_user 127.0.0.1/32 reject",
];

interface Session {
  dbName: string | null;
  user: string;
  ssl: boolean;
  overSocket: boolean;
}

/** Opens a replication connection, identifies the system and says how the session is connected. */
async function connect(
  dsn: string,
  env: Record<string, string> = {},
): Promise<Session> {
  const conn = await ReplicationConnection.open(resolveConnectOptions(dsn, { env }));
  try {
    const identity = await conn.identifySystem();
    const [row] = await conn.query(
      "SELECT current_user AS user, ssl, inet_client_addr() IS NULL AS over_socket " +
        "FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    return { dbName: identity.dbName, user: row.user, ssl: row.ssl, overSocket: row.over_socket };
  } finally {
    await conn.close();
  }
}

/** Asserts that connecting fails; with `code`, with that SQLSTATE. */
async function assertConnectFails(dsn: string, code?: string): Promise<Error> {
  let failure: Error | undefined;
  await assert.rejects(
    connect(dsn),
    (error: Error & { code?: string }) => {
      if (code !== undefined) assert.equal(error.code, code, error.message);
      failure = error;
      return true;
    },
  );
  return failure!;
}

/** Makes a self-signed certificate and key for CN=localhost with the given subjectAltName. */
async function selfSignedCertificate(
  dir: string,
  name: string,
  altNames: string,
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.crt`;
  const key = `${dir}/${name}.key`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      `subjectAltName=${altNames}`,
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return { cert, key };
}

/** Installs a new server certificate and key, reloads, and waits until the server presents it. */
async function replaceServerCertificate(
  cluster: Cluster,
  files: { cert: string; key: string },
): Promise<void> {
  const cert = `${cluster.dataDir}/server.crt`;
  const key = `${cluster.dataDir}/server.key`;
  await Deno.copyFile(files.cert, cert);
  await Deno.copyFile(files.key, key);
  await Deno.chmod(key, 0o600);
  if (Deno.uid() === 0) {
    const chown = await new Deno.Command("chown", { args: ["postgres:", cert, key] }).output();
    assert.ok(chown.success, new TextDecoder().decode(chown.stderr));
  }
  const sql = cluster.connect();
  await sql`select pg_reload_conf()`;
  await sql.end();
  await pollUntil(
    () =>
      connect(
        `host=localhost port=${cluster.port} dbname=postgres user=ssl_user ` +
          `sslmode=verify-full sslrootcert=${files.cert}`,
      ).then(() => true, () => false),
    { what: "the server to present its new certificate" },
  );
}

async function createRoles(cluster: Cluster): Promise<void> {
  const sql = cluster.connect();
  await sql.unsafe(`create role scram_user with login replication password '${SCRAM_PASSWORD}'`);
  await sql.unsafe("create role ssl_user with login replication");
  await sql.unsafe("set password_encryption = 'md5'");
  await sql.unsafe(`create role md5_user with login replication password '${MD5_PASSWORD}'`);
  const stored = await sql`
    select rolname, rolpassword from pg_authid where rolname in ('scram_user', 'md5_user')`;
  const byName = Object.fromEntries(stored.map((row) => [row.rolname, row.rolpassword]));
  assert.match(byName.scram_user, /^SCRAM-SHA-256\$/);
  assert.match(byName.md5_user, /^md5[0-9a-f]{32}$/);
  await sql.end();
}

pgTest(
  "ReplicationConnection.open() authenticates with every method and sslmode",
  async (t, cluster) => {
    await createRoles(cluster);
    const base = `host=127.0.0.1 port=${cluster.port} dbname=postgres`;
    const root = cluster.certificatePath;
    const dir = await Deno.makeTempDir({ prefix: "spock-auth-test-" });
    try {
      await t.step("trust", async () => {
        assert.deepEqual(await connect(`${base} user=postgres sslmode=disable`), {
          dbName: "postgres",
          user: "postgres",
          ssl: false,
          overSocket: false,
        });
      });

      await t.step("SCRAM-SHA-256, and a wrong password fails with 28P01", async () => {
        const session = await connect(`${base} user=scram_user password=${SCRAM_PASSWORD}`);
        assert.equal(session.user, "scram_user");
        assert.equal(session.dbName, "postgres");
        await assertConnectFails(`${base} user=scram_user password=wrong`, "28P01");
      });

      await t.step("md5, and a wrong password fails with 28P01", async () => {
        const session = await connect(`${base} user=md5_user password=${MD5_PASSWORD}`);
        assert.equal(session.user, "md5_user");
        await assertConnectFails(`${base} user=md5_user password=wrong`, "28P01");
      });

      await t.step("sslmode=require encrypts without checking the certificate", async () => {
        const session = await connect(`${base} user=ssl_user sslmode=require`);
        assert.equal(session.ssl, true);
      });

      await t.step(
        "sslmode=verify-full accepts the server's certificate for its name",
        async () => {
          const byName = await connect(
            `host=localhost port=${cluster.port} dbname=postgres user=ssl_user ` +
              `sslmode=verify-full sslrootcert=${root}`,
          );
          assert.equal(byName.ssl, true);
        },
      );

      await t.step(
        "sslmode=verify-full refuses a host name the certificate does not name",
        async () => {
          await assertConnectFails(
            `host=not-the-server.invalid hostaddr=127.0.0.1 port=${cluster.port} dbname=postgres ` +
              `user=ssl_user sslmode=verify-full sslrootcert=${root}`,
          );
        },
      );

      await t.step("sslmode=verify-ca refuses a certificate from another CA", async () => {
        const { cert: other } = await selfSignedCertificate(
          dir,
          "other",
          "DNS:localhost,IP:127.0.0.1",
        );
        await assertConnectFails(`${base} user=ssl_user sslmode=verify-ca sslrootcert=${other}`);
        await assertConnectFails(`${base} user=ssl_user sslmode=require sslrootcert=${other}`);
        const session = await connect(
          `${base} user=ssl_user sslmode=verify-ca sslrootcert=${root}`,
        );
        assert.equal(session.ssl, true);
      });

      await t.step("sslmode=disable is refused by a hostssl-only rule", async () => {
        const error = await assertConnectFails(`${base} user=ssl_user sslmode=disable`, "28000");
        assert.match(error.message, /no encryption/);
      });

      await t.step("a unix socket directory as host", async () => {
        const session = await connect(
          `host=${cluster.socketDir} port=${cluster.port} dbname=postgres user=postgres`,
        );
        assert.deepEqual(session, {
          dbName: "postgres",
          user: "postgres",
          ssl: false,
          overSocket: true,
        });
      });

      await t.step("a postgresql:// URI with a percent-encoded password", async () => {
        const password = encodeURIComponent(SCRAM_PASSWORD);
        const session = await connect(
          `postgresql://scram_user:${password}@localhost:${cluster.port}` +
            `/postgres?sslmode=verify-full&sslrootcert=${encodeURIComponent(root)}`,
        );
        assert.equal(session.user, "scram_user");
        assert.equal(session.ssl, true);
      });

      await t.step("PG* environment variables fill in an empty DSN", async () => {
        const session = await connect("", {
          PGHOST: "localhost",
          PGPORT: String(cluster.port),
          PGDATABASE: "postgres",
          PGUSER: "scram_user",
          PGPASSWORD: SCRAM_PASSWORD,
          PGSSLMODE: "verify-full",
          PGSSLROOTCERT: root,
        });
        assert.deepEqual(session, {
          dbName: "postgres",
          user: "scram_user",
          ssl: true,
          overSocket: false,
        });
      });

      await t.step("a password file named by passfile=, or ~/.pgpass", async () => {
        const escaped = SCRAM_PASSWORD.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
        const passfile = `${dir}/pgpass`;
        await Deno.writeTextFile(
          passfile,
          `# comment\n127.0.0.1:${cluster.port}:postgres:md5_user:${MD5_PASSWORD}\n` +
            `127.0.0.1:${cluster.port}:*:scram_user:${escaped}\n`,
          { mode: 0o600 },
        );
        const session = await connect(`${base} user=scram_user passfile=${passfile}`);
        assert.equal(session.user, "scram_user");
        await Deno.mkdir(`${dir}/home`);
        await Deno.copyFile(passfile, `${dir}/home/.pgpass`);
        await Deno.chmod(`${dir}/home/.pgpass`, 0o600);
        const fromHome = await connect(`${base} user=md5_user`, { HOME: `${dir}/home` });
        assert.equal(fromHome.user, "md5_user");
      });

      await t.step(
        "a password file with group or world access is ignored, as libpq does",
        async () => {
          const passfile = `${dir}/pgpass-open`;
          const dsn = `${base} user=md5_user passfile=${passfile}`;
          await Deno.writeTextFile(passfile, `*:*:*:md5_user:${MD5_PASSWORD}\n`, { mode: 0o600 });
          assert.equal((await connect(dsn)).user, "md5_user");
          await Deno.chmod(passfile, 0o644);
          const error = await assertConnectFails(dsn);
          // Without the file's password the server asks for one that is not there.
          assert.equal((error as { code?: string }).code, "28P01");
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ssl: true, hba: HBA },
);

function streamArgs(dsn: string, slot: string, ...more: string[]): string[] {
  return ["stream", "--dsn", dsn, "--slot", slot, "--publication", "auth_pub", ...more];
}

pgTest("spock stream authenticates with SCRAM and verifies the server", async (t, cluster) => {
  await createRoles(cluster);
  const sql = cluster.connect();
  await sql`create publication auth_pub`;
  const verified = `port=${cluster.port} dbname=postgres user=scram_user ` +
    `sslmode=verify-full sslrootcert=${cluster.certificatePath}`;
  const missingSlot =
    'spock stream: Replication slot "no_such_slot" does not exist: create it with --create-slot\n';

  await t.step("a wrong password exits 1 with one line that hides it", async () => {
    const result = await runSpock(
      streamArgs(`host=localhost ${verified} password=not-the-password`, "no_such_slot"),
    );
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^spock stream: Cannot connect to host=localhost .*password=\*{8}: password authentication failed for user "scram_user"\n$/,
    );
    assert.ok(!result.stderr.includes("not-the-password"));
  });

  await t.step("the right password streams over TLS until SIGINT", async () => {
    await using spock = new SpockProcess(
      streamArgs(
        `host=localhost ${verified} password=${SCRAM_PASSWORD}`,
        "auth_slot",
        "--create-slot",
        "--temporary",
      ),
    );
    await spock.streaming();
    const walsender = await pollUntil(async () => {
      const rows = await sql`
        select r.usename, s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)
        where r.application_name = 'spock stream'`;
      return rows[0];
    }, { what: "spock's walsender" });
    assert.deepEqual({ ...walsender }, { usename: "scram_user", ssl: true });
    const result = await spock.interrupt();
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stderr.includes(SCRAM_PASSWORD));
    // The server drops a temporary slot when its walsender exits, just after spock does.
    await pollUntil(async () => {
      const slots = await sql`select 1 from pg_replication_slots where slot_name = 'auth_slot'`;
      return slots.length === 0;
    }, { what: "the temporary slot to be dropped after spock exits" });
  });

  // Through the CLI, in a process of its own: the failure seen so far is an uncaught exception.
  await t.step("verify-full to 127.0.0.1 accepts a certificate naming that address", async () => {
    const result = await runSpock(
      streamArgs(`host=127.0.0.1 ${verified} password=${SCRAM_PASSWORD}`, "no_such_slot"),
    );
    assert.equal(result.stderr, missingSlot);
    assert.equal(result.code, 1);
  });

  await t.step("verify-full to 127.0.0.1 refuses a certificate naming only localhost", async () => {
    const dir = await Deno.makeTempDir({ prefix: "spock-auth-test-" });
    try {
      const files = await selfSignedCertificate(dir, "named", "DNS:localhost");
      await replaceServerCertificate(cluster, files);
      const dsn = `host=127.0.0.1 port=${cluster.port} dbname=postgres user=scram_user ` +
        `password=${SCRAM_PASSWORD} sslmode=verify-full sslrootcert=${files.cert}`;
      const byName = await runSpock(
        streamArgs(dsn.replace("127.0.0.1", "localhost"), "no_such_slot"),
      );
      assert.equal(byName.stderr, missingSlot);
      const byAddress = await runSpock(streamArgs(dsn, "no_such_slot"));
      assert.equal(byAddress.code, 1, byAddress.stderr);
      assert.match(
        byAddress.stderr,
        /^spock stream: Cannot connect to host=127\.0\.0\.1 [^\n]*\n$/,
      );
      assert.match(byAddress.stderr, /named\.crt: .*\bcert/, "the reason names the certificate");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}, { ssl: true, hba: HBA });
