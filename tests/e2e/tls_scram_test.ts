/**
 * TLS and SCRAM on every connection: a server that lets the replication role
 * in only over TLS with a SCRAM password, DSNs with sslmode=verify-full
 * against the server's certificate, and everything done through the CLI
 * (install, node create, sub create with a data copy) and `spock run`
 * (replication, copy, apply, catalog). Every session of that role is
 * encrypted, and the password appears in no output or log line, a failed
 * login's included.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";

const PASSWORD = "Tls-Scram-7f3a9c";
const ROLE = "spock_tls";

pgTest(
  "the CLI and the daemon use TLS (verify-full) and SCRAM everywhere, and never show the password",
  async (_t, cluster) => {
    const admin = cluster.connect();
    await admin.unsafe(
      `create role ${ROLE} login superuser replication password '${PASSWORD}'`,
    );
    for (const db of ["tp", "ts"]) await admin.unsafe(`create database ${db}`);
    const dsn = (db: string, password = PASSWORD) =>
      `host=localhost port=${cluster.port} dbname=${db} user=${ROLE} password=${password} ` +
      `sslmode=verify-full sslrootcert=${cluster.certificatePath}`;
    const outputs: string[] = [];
    const spock = async (...args: string[]) => {
      const result = await runSpock([...args, "--log-level", "debug"]);
      outputs.push(result.stdout, result.stderr);
      assert.equal(result.code, 0, `spock ${args[0]} ${args[1]}: ${result.stderr}`);
      return result;
    };
    const provider = cluster.connect({ database: "tp" });
    const subscriber = cluster.connect({ database: "ts" });
    for (const [db, sql] of [["tp", provider], ["ts", subscriber]] as const) {
      await sql.unsafe("create table t (k int primary key, v text)");
      await spock("install", "--dsn", dsn(db));
      await spock("node", "create", "--dsn", dsn(db), "--node-name", `n_${db}`);
    }
    await provider`insert into t select g, 'copied' from generate_series(1, 1000) g`;
    await provider`select spock.repset_add_all_tables('default', array['public'])`;
    await spock(
      "sub",
      "create",
      "--dsn",
      dsn("ts"),
      "--subscription-name",
      "tls_sub",
      "--provider-dsn",
      dsn("tp"),
      "--synchronize-data",
    );
    const wrong = await runSpock([
      "status",
      "--dsn",
      dsn("ts", "Wrong-Pass-42"),
      "--log-level",
      "debug",
    ]);
    outputs.push(wrong.stdout, wrong.stderr);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /password authentication failed/);

    const daemon = new SpockProcess(["run", "--dsn", dsn("ts"), "--log-level", "debug"]);
    try {
      await pollUntil(async () => {
        const [row] = await subscriber`select count(*)::int as n from t`;
        return row.n === 1000;
      }, { timeoutMs: 60_000, what: "the copy over TLS" });
      await provider`insert into t values (1001, 'streamed')`;
      await pollUntil(async () => {
        const rows = await subscriber`select 1 from t where k = 1001`;
        return rows.length === 1;
      }, { timeoutMs: 30_000, what: "the streamed row over TLS" });
      const sessions = await admin`select a.backend_type, s.ssl
        from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = ${ROLE}`;
      const types = new Set(sessions.map((row) => row.backend_type));
      assert.ok(types.has("walsender") && types.has("client backend"), [...types].join(", "));
      assert.ok(sessions.length >= 3, `${sessions.length} sessions`);
      assert.deepEqual(sessions.filter((row) => !row.ssl), [], "every session is encrypted");
    } finally {
      const result = await daemon.interrupt();
      outputs.push(result.stderr, ...result.lines);
    }
    const logs = outputs.join("\n");
    assert.ok(logs.includes("tls_sub"), "the outputs were captured");
    assert.ok(!logs.includes(PASSWORD), "the password is in an output");
    assert.ok(!logs.includes("Wrong-Pass-42"), "the wrong password is in an output");
    assert.ok(!(await cluster.log()).includes(PASSWORD), "the password is in the server log");
  },
  {
    ssl: true,
    hba: [
      `hostssl all ${ROLE} 127.0.0.1/32 scram-sha-256`,
      `hostssl replication ${ROLE} 127.0.0.1/32 scram-sha-256`,
      `host all ${ROLE} 127.0.0.1/32 reject`,
      `host replication ${ROLE} 127.0.0.1/32 reject`,
    ],
  },
);
