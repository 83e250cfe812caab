/**
 * The apply session (our own wire client, not postgres.js) as a user
 * deploys it: `spock run` reaching its node with `sslmode=verify-full`
 * against a local CA and a SCRAM-SHA-256 password, applying over that
 * session; and a wrong password ending the daemon with the server's error,
 * never the password.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import { closeNodes, createNodes, subscribe, waitConverged, waitForSync } from "./_mesh.ts";

const PASSWORD = "tls-apply:s3cret";

pgTest(
  "spock run applies over a verify-full TLS session with SCRAM; a wrong password fails clearly",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["tlsp", "tlss"],
      "create table t (id int primary key)",
    );
    const [provider, subscriber] = nodes;
    const admin = cluster.connect();
    try {
      await admin.unsafe(`create role apply_user login superuser password '${PASSWORD}'`);
      await provider.sql`select spock.repset_add_table('default', 't')`;
      const sub = await subscribe(subscriber, provider);
      const dsn = (password: string) =>
        `host=localhost port=${cluster.port} dbname=tlss user=apply_user password=${password} ` +
        `sslmode=verify-full sslrootcert=${cluster.certificatePath}`;

      const wrong = new SpockProcess(["run", "--dsn", dsn("not-the-password")]);
      const failed = await wrong.wait();
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /password authentication failed for user "apply_user"/);
      assert.doesNotMatch(failed.stderr, /not-the-password/);

      const daemon = new SpockProcess(["run", "--dsn", dsn(PASSWORD)]);
      try {
        await waitForSync(subscriber, sub);
        await provider.sql`insert into t select generate_series(1, 100)`;
        await waitConverged(nodes, "t");
        // Every session of the daemon on the subscriber is TLS and SCRAM-authenticated.
        const sessions = await admin`select s.ssl, a.usename::text as user
          from pg_stat_activity a join pg_stat_ssl s using (pid)
          where a.datname = 'tlss' and a.usename = 'apply_user'`;
        assert.ok(sessions.length >= 2, `the daemon's sessions: ${JSON.stringify(sessions)}`);
        assert.ok(sessions.every((s) => s.ssl === true), JSON.stringify(sessions));
        const result = await daemon.interrupt("SIGTERM");
        assert.equal(result.code, 0, result.stderr.slice(-2000));
        assert.doesNotMatch(result.stderr, new RegExp(PASSWORD));
      } finally {
        await daemon.kill();
      }
    } finally {
      await admin.end();
      await closeNodes(nodes);
    }
  },
  {
    ssl: true,
    hba: [
      "hostssl all apply_user 127.0.0.1/32 scram-sha-256",
      "hostssl all apply_user ::1/128 scram-sha-256",
      "host all apply_user 0.0.0.0/0 reject",
      "host all apply_user ::/0 reject",
    ],
  },
);
