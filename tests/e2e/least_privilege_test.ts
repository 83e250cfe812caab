/**
 * A least-privilege role end to end: no superuser, only the grants the
 * README lists (REPLICATION, CREATE on the database, EXECUTE on the
 * replication-origin functions, SET on session_replication_role, dblink
 * created by a superuser beforehand), a SCRAM password. The role installs
 * the catalog, creates the nodes, owns the tables, subscribes both ways and
 * runs `spock run` (one per node): the initial copy, streaming both ways and a conflict
 * resolved by last-update-wins all work, and every session of the daemon is
 * the role's.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import { ORIGIN_FUNCTIONS } from "../../mod/catalog/mod.ts";

const ROLE = "spock_app";
const PASSWORD = "Least-Priv-3c1e";
const DATABASES = ["lp_a", "lp_b"];

pgTest(
  "a role without superuser, with the README's grants, runs spock end to end",
  async (t, cluster) => {
    const admin = cluster.connect();
    await admin.unsafe(`create role ${ROLE} login replication password '${PASSWORD}'`);
    await admin.unsafe(`grant set on parameter session_replication_role to ${ROLE}`);
    for (const db of DATABASES) {
      await admin.unsafe(`create database ${db}`);
      await admin.unsafe(`grant create on database ${db} to ${ROLE}`);
      // Function privileges belong to each database.
      const sql = cluster.connect({ database: db });
      await sql.unsafe(
        `grant execute on function ${
          ORIGIN_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(", ")
        } to ${ROLE}`,
      );
      await sql.unsafe("create extension dblink");
      // The application's own schema privilege (PostgreSQL 15 no longer gives it to everyone).
      await sql.unsafe(`grant create on schema public to ${ROLE}`);
      await sql.end();
    }
    const dsn = (db: string) =>
      `host=127.0.0.1 port=${cluster.port} dbname=${db} user=${ROLE} password=${PASSWORD}`;
    const spock = async (...args: string[]) => {
      const result = await runSpock(args);
      assert.equal(result.code, 0, `spock ${args.slice(0, 2).join(" ")}: ${result.stderr}`);
      return result;
    };
    const [a, b] = DATABASES.map((db) =>
      cluster.connect({ database: db, user: ROLE, password: PASSWORD, max: 2 })
    );
    const daemons: SpockProcess[] = [];
    try {
      const ready = await t.step(
        "the role installs, creates nodes and tables, and subscribes",
        async () => {
          for (const [db, sql] of [["lp_a", a], ["lp_b", b]] as const) {
            await spock("install", "--dsn", dsn(db));
            await spock("node", "create", "--dsn", dsn(db), "--node-name", `n_${db}`);
            await sql.unsafe("create table t (k int primary key, v text)");
          }
          await a`insert into t select g, 'copied' from generate_series(1, 500) g`;
          for (const sql of [a, b]) {
            await sql`select spock.repset_add_all_tables('default', array['public'])`;
          }
          // One subscription by the SQL API (through dblink), one by the CLI.
          await b`select spock.sub_create('sub_b_a', ${dsn("lp_a")}, synchronize_data := true)`;
          await spock(
            "sub",
            "create",
            "--dsn",
            dsn("lp_a"),
            "--subscription-name",
            "sub_a_b",
            "--provider-dsn",
            dsn("lp_b"),
          );
        },
      );

      if (!ready) return;
      await t.step("spock run copies, streams both ways and resolves a conflict", async () => {
        for (const db of DATABASES) daemons.push(new SpockProcess(["run", "--dsn", dsn(db)]));
        await pollUntil(async () => {
          const [row] = await b`select count(*)::int as n from t`;
          return row.n === 500 || undefined;
        }, { timeoutMs: 60_000, what: "the initial copy" });
        await a`insert into t values (501, 'from a')`;
        await b`insert into t values (502, 'from b')`;
        for (const sql of [a, b]) {
          await pollUntil(async () => {
            const [row] = await sql`select count(*)::int as n from t where k in (501, 502)`;
            return row.n === 2 || undefined;
          }, { timeoutMs: 30_000, what: "rows written on each node" });
        }
        // The same row updated on both: the later commit wins everywhere.
        await a`update t set v = 'a first' where k = 1`;
        await b`update t set v = 'b later' where k = 1`;
        for (const sql of [a, b]) {
          await pollUntil(async () => {
            const [row] = await sql`select v from t where k = 1`;
            return row.v === "b later" || undefined;
          }, { timeoutMs: 30_000, what: "the later update on each node" });
        }
        const sessions = await admin`select distinct usename::text as role, backend_type
          from pg_stat_activity where application_name like 'sub_%'
            or application_name like 'spock%'`;
        assert.ok(sessions.length > 0, "the daemon's sessions are seen");
        assert.deepEqual(sessions.filter((s) => s.role !== ROLE), [], "only the role's sessions");
        const [{ superuser }] = await admin`select rolsuper as superuser from pg_roles
          where rolname = ${ROLE}`;
        assert.equal(superuser, false);
      });
    } finally {
      for (const daemon of daemons) {
        const result = await daemon.interrupt();
        if (result.code !== 0) console.error(result.stderr.slice(-3000));
      }
      await Promise.all([a, b].map((sql) => sql.end({ timeout: 2 })));
    }
  },
  {
    hba: [
      `host all ${ROLE} 127.0.0.1/32 scram-sha-256`,
      `host replication ${ROLE} 127.0.0.1/32 scram-sha-256`,
    ],
  },
);
