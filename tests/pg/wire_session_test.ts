/**
 * Tests for mod/pg/wire/: WireSession against a real server. Authentication
 * (trust, SCRAM-SHA-256, md5, a wrong or missing password), TLS under
 * `require` and `verify-full`, a unix socket; then the pipeline's rules:
 * statements after a failure are skipped until Sync while earlier commits
 * stay, a failed simple-query COMMIT dooms what follows, a skipped Parse is
 * sent again, notices reach their statement, result types, cancel, a lost
 * connection rejecting what is in flight, and COPY FROM STDIN in the pipeline.
 */
import assert from "node:assert/strict";
import { type Cluster, pgTest, pollUntil } from "../_harness/mod.ts";
import {
  copyTextRow,
  PgConnectionError,
  type PgServerError,
  PgSkippedError,
  resolveConnectOptions,
  type ServerMessageFields,
  WireSession,
} from "../../mod/pg/mod.ts";

const PASSWORD = "s3cr@t:pw";

function open(dsn: string, onNotice?: (notice: ServerMessageFields) => void) {
  return WireSession.open(resolveConnectOptions(dsn, { env: {} }), { onNotice });
}

async function withSession<T>(dsn: string, fn: (session: WireSession) => Promise<T>): Promise<T> {
  const session = await open(dsn);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

async function whoAmI(session: WireSession) {
  const { rows } = await session.query(
    "select current_user::text as who, ssl, inet_client_addr() is null as over_socket " +
      "from pg_stat_ssl where pid = pg_backend_pid()",
    [],
    { sync: true },
  );
  return rows[0];
}

async function prepareRoles(cluster: Cluster): Promise<void> {
  const sql = cluster.connect();
  await sql.unsafe(`create role scram_user login password '${PASSWORD}'`);
  await sql.unsafe("set password_encryption = 'md5'");
  await sql.unsafe(`create role md5_user login password '${PASSWORD}'`);
  await sql.unsafe("create role ssl_user login");
  await sql.end();
}

pgTest(
  "WireSession.open() authenticates with every method, over TLS and a unix socket",
  async (t, cluster) => {
    await prepareRoles(cluster);
    const base = `host=127.0.0.1 port=${cluster.port} dbname=postgres`;
    await t.step("trust", async () => {
      const me = await withSession(`${base} user=postgres sslmode=disable`, whoAmI);
      assert.deepEqual(me, { who: "postgres", ssl: false, over_socket: false });
    });
    await t.step("SCRAM-SHA-256 and md5; wrong and missing passwords fail clearly", async () => {
      for (const user of ["scram_user", "md5_user"]) {
        const me = await withSession(`${base} user=${user} password=${PASSWORD}`, whoAmI);
        assert.equal(me.who, user);
        await assert.rejects(
          open(`${base} user=${user} password=wrong`),
          (error: PgServerError) => {
            assert.equal(error.code, "28P01");
            assert.match(
              error.message,
              new RegExp(
                `127\\.0\\.0\\.1:${cluster.port} as user "${user}".*password authentication failed`,
              ),
            );
            assert.doesNotMatch(error.message, /wrong/);
            return true;
          },
        );
        await assert.rejects(open(`${base} user=${user}`), /asks for a password and none is given/);
      }
    });
    await t.step("sslmode=require and verify-full; verify-full refuses a wrong name", async () => {
      assert.equal((await withSession(`${base} user=ssl_user sslmode=require`, whoAmI)).ssl, true);
      const verified = await withSession(
        `host=localhost port=${cluster.port} dbname=postgres user=ssl_user sslmode=verify-full sslrootcert=${cluster.certificatePath}`,
        whoAmI,
      );
      assert.equal(verified.ssl, true);
      await assert.rejects(
        open(
          `host=wrong.invalid hostaddr=127.0.0.1 port=${cluster.port} dbname=postgres user=ssl_user sslmode=verify-full sslrootcert=${cluster.certificatePath}`,
        ),
        PgConnectionError,
      );
      await assert.rejects(
        open(`${base} user=ssl_user sslmode=disable`),
        (error: PgServerError) => error.code === "28000",
      );
    });
    await t.step("a unix socket directory", async () => {
      const me = await withSession(
        `host=${cluster.socketDir} port=${cluster.port} dbname=postgres user=postgres`,
        whoAmI,
      );
      assert.equal(me.over_socket, true);
    });
  },
  {
    ssl: true,
    hba: [
      "host all scram_user 127.0.0.1/32 scram-sha-256",
      "host all md5_user 127.0.0.1/32 md5",
      "hostssl all ssl_user 127.0.0.1/32 trust",
      "hostnossl all ssl_user 127.0.0.1/32 reject",
    ],
  },
);

pgTest(
  "WireSession pipelines transactions: after a failure everything is skipped until Sync",
  async (t, cluster) => {
    const dsn = cluster.dsn();
    const sql = cluster.connect();
    await sql.unsafe("create table t (id int primary key, v int check (v >= 0))");
    await sql.unsafe(
      "create table d (id int primary key, ref int references t (id) deferrable initially deferred)",
    );
    const session = await open(dsn);
    try {
      await t.step(
        "committed transactions before the failure stay, later ones never run",
        async () => {
          const results: Promise<unknown>[] = [];
          for (let i = 1; i <= 5; i++) {
            results.push(session.query("begin"));
            results.push(
              session.query("insert into t values ($1, $2)", [String(i), i === 3 ? "-1" : "1"], {
                prepare: true,
              }),
            );
            results.push(session.simple("commit"));
          }
          const settled = await Promise.allSettled(results);
          assert.equal(await session.sync(), "E");
          await session.query("rollback", [], { sync: true });
          const outcome = settled.map((s) =>
            s.status === "fulfilled"
              ? "ok"
              : s.reason instanceof PgSkippedError
              ? "skipped"
              : (s.reason as PgServerError).code
          );
          assert.deepEqual(outcome, [
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "23514",
            "skipped",
            ...Array(6).fill("skipped"),
          ]);
          assert.deepEqual((await sql`select id from t order by id`).map((r) => r.id), [1, 2]);
        },
      );
      await t.step("a COMMIT that fails in a simple query dooms the later statements", async () => {
        const results = [
          session.query("begin"),
          session.query("insert into d values (1, 999)"),
          session.simple("commit"),
          session.query("begin"),
          session.query("insert into t values (10, 1)"),
          session.simple("commit"),
        ];
        const settled = await Promise.allSettled(results);
        await session.sync();
        assert.equal((settled[2] as PromiseRejectedResult).reason.code, "23503");
        for (const later of settled.slice(3)) {
          assert.ok(later.status === "rejected" && later.reason instanceof PgSkippedError);
        }
      });
      await t.step("statements sent after a failure came back are skipped until Sync", async () => {
        await assert.rejects(session.query("select 1/0"), (e: PgServerError) => e.code === "22012");
        await assert.rejects(session.query("select 1 as one"), PgSkippedError);
        await assert.rejects(session.simple("select 2"), PgSkippedError);
        await session.sync();
        assert.deepEqual((await session.query("select 1 as one", [], { sync: true })).rows, [{
          one: 1,
        }]);
      });
      await t.step("a prepared statement whose Parse was skipped is parsed again", async () => {
        const failing = session.query("select 1/0");
        const skipped = session.query("select $1::int + 1 as n", ["1"], { prepare: true });
        await assert.rejects(failing, (e: PgServerError) => e.code === "22012");
        await assert.rejects(skipped, PgSkippedError);
        await session.sync();
        const { rows } = await session.query("select $1::int + 1 as n", ["41"], {
          prepare: true,
          sync: true,
        });
        assert.deepEqual(rows, [{ n: 42 }]);
      });
      await t.step(
        "notices reach the statement that raised them; result types and counts",
        async () => {
          const seen: string[] = [];
          const raise = (label: string) =>
            session.query(`do $$ begin raise notice '${label}'; end $$`, [], {
              onNotice: (notice) => seen.push(`${label}:${notice.message}`),
            });
          await Promise.all([raise("a"), raise("b"), session.sync()]);
          assert.deepEqual(seen, ["a:a", "b:b"]);
          const { rows } = await session.query(
            "select true as b, 2::int4 as i, 3::int8 as big, '{x,\"y z\",NULL}'::text[] as arr, '{\"k\":1}'::jsonb as j, null::text as n",
            [],
            { sync: true },
          );
          assert.deepEqual(rows, [{
            b: true,
            i: 2,
            big: "3",
            arr: ["x", "y z", null],
            j: { k: 1 },
            n: null,
          }]);
          const update = await session.query("update t set v = v + 1 where id <= 2", [], {
            sync: true,
          });
          assert.equal(update.count, 2);
          assert.equal(update.command, "UPDATE 2");
        },
      );
      await t.step("cancel() interrupts a running statement", async () => {
        const sleeping = assert.rejects(
          session.query("select pg_sleep(30)", [], { sync: true }),
          (e: PgServerError) => e.code === "57014",
        );
        await pollUntilActive(sql);
        await session.cancel();
        await sleeping;
      });
      await t.step(
        "a lost connection rejects what is in flight with PgConnectionError",
        async () => {
          const sleeping = assert.rejects(
            session.query("select pg_sleep(30)", [], { sync: true }),
            PgConnectionError,
          );
          await pollUntilActive(sql);
          await sql`select pg_terminate_backend(pid) from pg_stat_activity
            where query = 'select pg_sleep(30)' and pid <> pg_backend_pid()`;
          await sleeping;
          await assert.rejects(session.query("select 1"), PgConnectionError);
        },
      );
    } finally {
      await session.close();
      await sql.end();
    }
  },
);

async function pollUntilActive(sql: ReturnType<Cluster["connect"]>): Promise<void> {
  await pollUntil(async () => {
    const [row] =
      await sql`select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'`;
    return row.n === 1;
  }, { what: "pg_sleep to run" });
}

pgTest(
  "WireSession.copyIn() copies in the pipeline; a failing row or an abandoned COPY skips what follows",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe("create table c (id int primary key, v text)");
    const session = await open(cluster.dsn());
    try {
      await t.step("rows with tabs, newlines, backslashes and NULL arrive as sent", async () => {
        const values = ["plain", "tab\there", "line\nbreak\r", "back\\slash \\N", null];
        session.query("begin");
        const copy = session.copyIn("copy c (id, v) from stdin");
        copy.write(values.map((v, i) => copyTextRow([String(i + 1), v])).join(""));
        copy.write(copyTextRow(["6", ""]));
        copy.end();
        const committed = session.simple("commit");
        assert.equal((await copy.result).command, "COPY 6");
        await committed;
        const rows = await sql`select v from c order by id`;
        assert.deepEqual(rows.map((r) => r.v), [...values, ""]);
      });
      await t.step("a row that fails the COPY skips the statements after it", async () => {
        const begin = session.query("begin");
        const copy = session.copyIn("copy c (id, v) from stdin");
        copy.write(copyTextRow(["7", "new"]) + copyTextRow(["1", "duplicate key"]));
        copy.end();
        const after = session.query("insert into c values (8, 'after')");
        const commit = session.simple("commit");
        await begin;
        await assert.rejects(copy.result, (e: PgServerError) => e.code === "23505");
        await assert.rejects(after, PgSkippedError);
        await assert.rejects(commit, PgSkippedError);
        assert.equal(await session.sync(), "E");
        await session.simple("rollback");
        assert.equal((await sql`select count(*)::int as n from c`)[0].n, 6);
      });
      await t.step("a Sync while rows are still to come abandons the COPY", async () => {
        session.query("begin");
        const copy = session.copyIn("copy c (id, v) from stdin");
        copy.write(copyTextRow(["9", "never committed"]));
        const ended = session.sync();
        await assert.rejects(copy.result, (e: PgServerError) => e.code === "57014");
        assert.equal(await ended, "E");
        await session.simple("rollback");
        assert.equal((await sql`select count(*)::int as n from c where id = 9`)[0].n, 0);
        // The session goes on normally.
        const { rows } = await session.query("select 1 as one", [], { sync: true });
        assert.equal(rows[0].one, 1);
      });
    } finally {
      await session.close();
      await sql.end();
    }
  },
);
