/**
 * SqlWriter against a real server, on a wire session of its own: the
 * statements it sends for each kind of change (multi-row INSERTs, a COPY for
 * a long fast run, batched fast UPDATEs and DELETEs) and what ends a batch,
 * values that need escaping arriving exactly as sent through every form,
 * unchanged TOAST columns, TRUNCATE, conflicts reported from rows and from
 * notices, and failures: named by operation and relation, with nothing after
 * them applied. A tap records what the writer hands the real session; the
 * end-to-end behaviour is in tests/e2e/copy_apply_test.ts and
 * batched_changes_test.ts.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type Cluster, pgTest } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import type { ConflictEvent, RemoteTransaction } from "../../mod/apply/sql_writer.ts";
import {
  DEFAULT_CONFLICT_SETTINGS,
  type LocalRelation,
  mapRelation,
  SqlWriter,
  type SqlWriterOptions,
  type WriteFailure,
} from "../../mod/apply/mod.ts";
import {
  type CopyIn,
  PgServerError,
  PgSkippedError,
  resolveConnectOptions,
  WireSession,
} from "../../mod/pg/mod.ts";
import { type ColumnText, UNCHANGED_TOAST } from "../../mod/pgoutput/mod.ts";

/** One statement the writer sent, and for a COPY the data it wrote. */
interface Sent {
  text: string;
  params: readonly (string | null)[];
  copyData?: string;
}

/** A writer on a real wire session, the statements it sent, and a postgres.js client to check with. */
interface Setup {
  sql: postgres.Sql;
  wire: WireSession;
  sent: Sent[];
  writer: SqlWriter;
  /** Another writer on the same session (and the same `sent`). */
  writerWith: (options: SqlWriterOptions) => SqlWriter;
  relation: (table: string, columns: string[], keys?: string[]) => Promise<LocalRelation>;
}

/**
 * Forwards the three calls the writer makes to the real session and records
 * them (the server does all the work; nothing is simulated).
 */
function tap(wire: WireSession, sent: Sent[]): WireSession {
  return {
    writable: () => wire.writable(),
    query: (text: string, params: readonly (string | null)[], options: object) => {
      sent.push({ text, params });
      return wire.query(text, params, options);
    },
    copyIn: (text: string): CopyIn => {
      const entry: Sent = { text, params: [], copyData: "" };
      sent.push(entry);
      const copy = wire.copyIn(text);
      return {
        result: copy.result,
        write: (rows) => {
          entry.copyData += rows;
          copy.write(rows);
        },
        end: () => copy.end(),
      };
    },
  } as unknown as WireSession;
}

/** The catalog, `ddl`, an apply-like wire session and a writer on it. */
async function setup(
  cluster: Cluster,
  ddl: string,
  options: { sessionOrigin?: number } = {},
): Promise<Setup> {
  const sql = cluster.connect({ max: 2 });
  await installCatalog(sql, { programVersion: "test" });
  await sql.unsafe(ddl);
  const wire = await WireSession.open(resolveConnectOptions(cluster.dsn()));
  // As the apply session: no user triggers, ISO dates, conflicts as notices.
  await wire.simple(
    "set session_replication_role = replica; set datestyle = 'ISO'; " +
      "set client_min_messages = notice",
  );
  const sent: Sent[] = [];
  const context = {
    settings: DEFAULT_CONFLICT_SETTINGS,
    // Rows the test's own sessions write (origin 0) count as this session's: no conflict.
    sessionOrigin: options.sessionOrigin ?? 0,
    remoteNodeId: 4242,
    localNodeName: "local",
  };
  const writerWith = (writerOptions: SqlWriterOptions) =>
    new SqlWriter(tap(wire, sent), context, writerOptions);
  let relationId = 0;
  const relation = (table: string, columns: string[], keys = ["id"]) =>
    mapRelation(wire, {
      type: "relation",
      relationId: ++relationId,
      namespace: "public",
      relationName: table,
      replicaIdentity: "d",
      columns: columns.map((name) => ({
        flags: keys.includes(name) ? 1 : 0,
        isKey: keys.includes(name),
        name,
        typeOid: 25,
        typeMod: -1,
      })),
    });
  return { sql, wire, sent, writer: writerWith({}), writerWith, relation };
}

/** The remote transaction the statements belong to (committed in 2000: older than local rows). */
function remote(
  fast: boolean,
  extra: Pick<RemoteTransaction, "onConflict" | "onFailure"> = {},
): RemoteTransaction {
  return { commitTime: "2000-01-01 00:00:00+00", xid: "777", commitLsn: "0/1000", fast, ...extra };
}

/** A query's rows as a plain array (postgres.js returns an Array subclass). */
async function rowsOf(query: Promise<postgres.Row[]>): Promise<postgres.Row[]> {
  return [...await query];
}

/** BEGIN, `body`, COMMIT through the writer; the first failure, as `drain()` returns it. */
async function apply(
  writer: SqlWriter,
  fast: boolean | RemoteTransaction,
  body: () => Promise<void>,
): Promise<WriteFailure | undefined> {
  writer.setTransaction(typeof fast === "boolean" ? remote(fast) : fast);
  await writer.run("begin", [], "begin");
  await body();
  await writer.run("commit", [], "commit");
  return await writer.drain();
}

const META_PREFIX =
  /^with spock_meta \(commit_ts, xid, commit_lsn\) as \(select \$1::text, \$2::text, \$3::text\),? /;

/** What a statement does: `insert`, `update`, `update batch`, `copy`, `select` (COPY's guard) … */
function kindOf(text: string): string {
  if (text.startsWith("copy ")) return "copy";
  const body = text.replace(META_PREFIX, "");
  if (body.includes("unnest(")) return /\(delete from/.test(body) ? "delete batch" : "update batch";
  return /^(?:with )?(?:\w+ as \()?(insert|update|delete|select|truncate)\b/.exec(body)?.[1] ??
    body;
}

/** What the statements sent since `from` do, but BEGIN and COMMIT. */
function kinds(sent: Sent[], from = 0): string[] {
  return sent.slice(from).map((s) => s.text).filter((t) => t !== "begin" && t !== "commit")
    .map(kindOf);
}

/** Values needing care in every form: quotes, backslashes, control characters, NULL vs ''. */
const TUPLES: (string | null)[][] = [
  [
    `it's "quoted"`,
    "\\x00ff5c2722",
    String.raw`{"a b","c\"d",NULL,"NULL","","back\\slash"}`,
    String.raw`{"k": "v\n\"q\" ü"}`,
    "-12.50",
  ],
  ["back\\slash \\N", "\\x", "{}", "[]", "0"],
  ["tab\there, line\nbreak, cr\rhere", "\\x5c4e", "{NULL}", "null", "0.001"],
  ["", "\\x", '{""}', '""', null],
  [null, null, null, null, null],
  ["NULL", null, String.raw`{"{braces}, commas"}`, '{"a": [1, null]}', "1e+20"],
  ["ünïcødé 🐘 中文", "\\xe282ac", "{ünï}", '"🐘"', "3"],
  ["\\.", null, null, null, null],
];
const V_COLUMNS = ["id", "t", "b", "a", "j", "n"];
const V_TABLE =
  "create table v (id int primary key, t text, b bytea, a text[], j jsonb, n numeric)";

/** The rows of `v` with ids in [from, to), every column as the server prints it. */
async function vRows(sql: postgres.Sql, from: number, to: number): Promise<(string | null)[][]> {
  const rows = await sql.unsafe(
    "select t, b::text as b, a::text as a, j::text as j, n::text as n from v " +
      "where id >= $1 and id < $2 order by id",
    [from, to],
  );
  return rows.map((row) => [row.t, row.b, row.a, row.j, row.n]);
}

/** The tuples the server prints back ("1e+20" is numeric's input only). */
function printed(tuples: (string | null)[][]): (string | null)[][] {
  return tuples.map((tuple) =>
    tuple.map((value) => value === "1e+20" ? "100000000000000000000" : value)
  );
}

pgTest(
  "SqlWriter writes values as sent through multi-row INSERTs, COPY and UPDATEs",
  async (_t, cluster) => {
    const { sql, sent, writer, relation } = await setup(cluster, V_TABLE);
    const v = await relation("v", V_COLUMNS);
    const row = (id: number, tuple: (string | null)[]) => [String(id), ...tuple];
    const cycle = (count: number) =>
      Array.from({ length: count }, (_, i) => TUPLES[i % TUPLES.length]);
    const forms: Array<{ form: string; fast: boolean; from: number; tuples: (string | null)[][] }> =
      [
        { form: "multi-row insert", fast: false, from: 100, tuples: TUPLES },
        { form: "fast multi-row insert", fast: true, from: 200, tuples: TUPLES },
        { form: "copy", fast: true, from: 1000, tuples: cycle(150) },
      ];
    for (const { form, fast, from, tuples } of forms) {
      const start = sent.length;
      const failure = await apply(writer, fast, async () => {
        for (const [i, tuple] of tuples.entries()) await writer.insert(v, row(from + i, tuple));
      });
      assert.equal(failure, undefined, form);
      assert.equal(kinds(sent, start)[0], form === "copy" ? "select" : "insert", form);
      assert.equal(kinds(sent, start).includes("copy"), form === "copy", form);
      assert.deepEqual(await vRows(sql, from, from + tuples.length), printed(tuples), form);
    }
    // Updates: each row takes the next tuple's values.
    const shifted = TUPLES.map((_, i) => TUPLES[(i + 1) % TUPLES.length]);
    const identity = v.identity!;
    for (const { form, fast, from } of [forms[0], forms[1]]) {
      const start = sent.length;
      const failure = await apply(writer, fast, async () => {
        for (const [i, tuple] of shifted.entries()) {
          await writer.update(v, identity, row(from + i, tuple), row(from + i, tuple), undefined);
        }
      });
      assert.equal(failure, undefined, form);
      assert.deepEqual(kinds(sent, start), fast ? ["update batch"] : shifted.map(() => "update"));
      assert.deepEqual(await vRows(sql, from, from + TUPLES.length), printed(shifted), form);
    }
  },
);

pgTest(
  "SqlWriter deletes rows by keys that need escaping, one by one or in a batch",
  async (_t, cluster) => {
    const { sql, sent, writer, relation } = await setup(
      cluster,
      "create table k (k text primary key)",
    );
    const k = await relation("k", ["k"], ["k"]);
    const keys = TUPLES.map(([text]) => text).filter((text) => text !== null) as string[];
    await sql.unsafe(`insert into k select unnest($1::text[])`, [keys]);
    const half = Math.floor(keys.length / 2);
    for (
      const [fast, chosen] of [[true, keys.slice(0, half)], [false, keys.slice(half)]] as const
    ) {
      const start = sent.length;
      const failure = await apply(writer, fast, async () => {
        for (const key of chosen) await writer.delete(k, k.identity!, [key]);
      });
      assert.equal(failure, undefined);
      assert.deepEqual(kinds(sent, start), fast ? ["delete batch"] : chosen.map(() => "delete"));
    }
    assert.equal((await sql`select k from k`).length, 0);
    // Each deleted key left its tombstone, quoted as the delete trigger writes it.
    const tombstones = await sql`select key ->> 'k' as k from spock._tombstone`;
    assert.deepEqual(tombstones.map((t) => t.k).sort(), [...keys].sort());
  },
);

pgTest(
  "SqlWriter sends runs of INSERTs as multi-row INSERTs, in order with the other statements",
  async (_t, cluster) => {
    const { sql, sent, writer, writerWith, relation } = await setup(
      cluster,
      `create table a (id int primary key, v text);
       create table b (id int primary key, v text)`,
    );
    const a = await relation("a", ["id", "v"]);
    const b = await relation("b", ["id", "v"]);
    // At most 100 rows per statement.
    let start = sent.length;
    assert.equal(
      await apply(writer, false, async () => {
        for (let id = 1; id <= 250; id++) await writer.insert(a, [String(id), "x"]);
      }),
      undefined,
    );
    assert.deepEqual(
      sent.slice(start).filter((s) => kindOf(s.text) === "insert").map((s) => s.params.length),
      [3 + 100 * 2, 3 + 100 * 2, 3 + 50 * 2],
    );
    // A run ends at another relation or another statement, which comes after it.
    start = sent.length;
    assert.equal(
      await apply(writer, false, async () => {
        await writer.insert(a, ["1001", "a"]);
        await writer.insert(a, ["1002", "a"]);
        await writer.insert(b, ["1", "b"]);
        await writer.insert(a, ["1003", "a"]);
        await writer.update(a, a.identity!, ["1003", "changed"], ["1003", "changed"], undefined);
      }),
      undefined,
    );
    assert.deepEqual(kinds(sent, start), ["insert", "insert", "insert", "update"]);
    assert.deepEqual(sent[start + 1].params.slice(3), ["1001", "a", "1002", "a"]);
    assert.deepEqual(await rowsOf(sql`select v from a where id = 1003`), [{ v: "changed" }]);
    // Without batch_inserts, one statement per row.
    const single = writerWith({ batchInserts: false });
    start = sent.length;
    assert.equal(
      await apply(single, false, async () => {
        for (let id = 2001; id <= 2003; id++) await single.insert(a, [String(id), "one"]);
      }),
      undefined,
    );
    assert.deepEqual(kinds(sent, start), ["insert", "insert", "insert"]);
  },
);

pgTest(
  "SqlWriter copies a long fast run of INSERTs, until another statement comes",
  async (_t, cluster) => {
    const { sql, sent, writer, relation } = await setup(
      cluster,
      "create table c (id int primary key, v text); create table n (n int, v text)",
    );
    const c = await relation("c", ["id", "v"]);
    const n = await relation("n", ["n", "v"], []);
    const start = sent.length;
    const failure = await apply(writer, true, async () => {
      for (let id = 1; id <= 250; id++) await writer.insert(c, [String(id), `row ${id}`]);
      await writer.update(c, c.identity!, ["5", "updated"], ["5", "updated"], undefined);
      for (let id = 1; id <= 120; id++) await writer.insert(n, [String(id), null]);
    });
    assert.equal(failure, undefined);
    // A keyed table's COPY is guarded (no tombstones); a key-less one's is not.
    assert.deepEqual(kinds(sent, start), ["select", "copy", "update", "copy"]);
    const copies = sent.slice(start).filter((s) => s.copyData !== undefined);
    assert.equal(copies[0].text, 'copy "public"."c" ("id", "v") from stdin');
    assert.equal(copies[0].copyData!.split("\n").length - 1, 250, "every row of the run copied");
    assert.ok(copies[0].copyData!.startsWith("1\trow 1\n2\trow 2\n"));
    assert.equal(copies[1].copyData!.split("\n")[0], "1\t\\N");
    // The UPDATE came after the COPY had ended, and saw its rows.
    assert.deepEqual(await rowsOf(sql`select v from c where id = 5`), [{ v: "updated" }]);
    assert.deepEqual(
      await rowsOf(
        sql`select (select count(*) from c)::int as c, (select count(*) from n)::int as n,
        (select count(*) from n where v is null)::int as nulls`,
      ),
      [{ c: 250, n: 120, nulls: 120 }],
    );
  },
);

pgTest(
  "SqlWriter batches fast UPDATEs and DELETEs of one shape; a key seen again or a new shape ends the run",
  async (_t, cluster) => {
    const { sql, sent, writer, writerWith, relation } = await setup(
      cluster,
      `create table u (id int primary key, v text, w text);
       insert into u select i, 'v' || i, 'w' || i from generate_series(1, 20) i`,
    );
    const u = await relation("u", ["id", "v", "w"]);
    const update = (target: SqlWriter, id: number, v: string, w: ColumnText = `w${id}`) =>
      target.update(u, u.identity!, [String(id), v, w], [String(id), v, w], undefined);
    let start = sent.length;
    const failure = await apply(writer, true, async () => {
      for (const id of [1, 2, 3, 4]) await update(writer, id, "first");
      await update(writer, 2, "second"); // the same row again: a new run
      await update(writer, 3, "second");
      await update(writer, 5, "toast", UNCHANGED_TOAST); // w not sent: another shape
      for (const id of [6, 7, 8]) await writer.delete(u, u.identity!, [String(id), null, null]);
    });
    assert.equal(failure, undefined);
    assert.deepEqual(kinds(sent, start), [
      "update batch",
      "update batch",
      "update",
      "delete batch",
    ]);
    const batch = sent.slice(start).find((s) => kindOf(s.text) === "update batch")!;
    assert.deepEqual(batch.params.slice(3), [
      "4",
      '{"1","2","3","4"}',
      '{"first","first","first","first"}',
      '{"w1","w2","w3","w4"}',
      '{"1","2","3","4"}',
    ]);
    assert.deepEqual(
      (await sql`select id, v, w from u where id <= 8 order by id`).map((r) =>
        `${r.id}:${r.v}:${r.w}`
      ),
      ["1:first:w1", "2:second:w2", "3:second:w3", "4:first:w4", "5:toast:w5"],
    );
    // Without batch_inserts, no batches of changes either.
    const single = writerWith({ batchInserts: false });
    start = sent.length;
    assert.equal(
      await apply(single, true, async () => {
        for (const id of [10, 11]) await update(single, id, "alone");
      }),
      undefined,
    );
    assert.deepEqual(kinds(sent, start), ["update", "update"]);
  },
);

pgTest(
  "SqlWriter.update() keeps the local value of a column whose TOAST value is unchanged",
  async (_t, cluster) => {
    const { sql, writer, relation } = await setup(
      cluster,
      `create table d (id int primary key, doc text, n int);
       insert into d values (1, repeat('x', 10000), 0), (2, repeat('y', 10000), 0)`,
    );
    const d = await relation("d", ["id", "doc", "n"]);
    for (const [fast, id] of [[false, 1], [true, 2]] as const) {
      const values: ColumnText[] = [String(id), UNCHANGED_TOAST, "7"];
      assert.equal(
        await apply(writer, fast, () => writer.update(d, d.identity!, values, values, undefined)),
        undefined,
      );
    }
    assert.deepEqual(
      await rowsOf(sql`select id, length(doc) as len, left(doc, 1) as c, n from d order by id`),
      [{ id: 1, len: 10000, c: "x", n: 7 }, { id: 2, len: 10000, c: "y", n: 7 }],
    );
  },
);

pgTest(
  "SqlWriter.truncate() empties every relation given, restarting identities only when asked",
  async (_t, cluster) => {
    const { sql, sent, writer, relation } = await setup(
      cluster,
      `create table s1 (id int generated always as identity primary key, v text);
       create table s2 (id int generated always as identity primary key, v text);
       insert into s1 (v) values ('a'), ('b'); insert into s2 (v) values ('c')`,
    );
    const relations = [await relation("s1", ["id", "v"]), await relation("s2", ["id", "v"])];
    const next = async () =>
      (await sql`select nextval(pg_get_serial_sequence('s1', 'id'))::int as n`)[0].n;
    const empty = async () =>
      (await sql`select (select count(*) from s1) + (select count(*) from s2) as n`)[0].n === "0";
    assert.equal(await apply(writer, false, () => writer.truncate(relations, false)), undefined);
    assert.ok(await empty());
    assert.equal(await next(), 3, "identity kept");
    assert.equal(await apply(writer, false, () => writer.truncate(relations, true)), undefined);
    assert.ok(await empty());
    assert.equal(await next(), 1, "identity restarted");
    assert.deepEqual(sent.filter((s) => kindOf(s.text) === "truncate").map((s) => s.text), [
      'truncate table "public"."s1", "public"."s2"',
      'truncate table "public"."s1", "public"."s2" restart identity',
    ]);
  },
);

const G_TABLE = "create table g (id int primary key, n int); insert into g values (1, 0), (2, 0)";
const G_ROWS = [{ id: 1, n: 0 }, { id: 2, n: 0 }];

pgTest(
  "SqlWriter.drain() returns the first failure with its operation and relation; nothing after it applies",
  async (_t, cluster) => {
    const { sql, wire, writer, relation } = await setup(cluster, G_TABLE);
    const g = await relation("g", ["id", "n"]);
    const failure = await apply(writer, false, async () => {
      await writer.update(g, g.identity!, ["1", "1"], ["1", "1"], undefined);
      await writer.insert(g, ["3", "not a number"]);
      await writer.update(g, g.identity!, ["2", "2"], ["2", "2"], undefined);
      await writer.insert(g, ["4", "4"]);
    });
    assert.ok(failure !== undefined);
    assert.equal(failure.operation, "insert");
    assert.equal(failure.relation, g);
    assert.ok(failure.cause instanceof PgServerError);
    assert.equal(failure.cause.code, "22P02");
    assert.match(failure.cause.message, /not a number/);
    assert.equal(writer.failure, undefined, "drain() clears the failure");
    assert.equal(await writer.drain(), undefined);
    assert.equal(wire.transactionStatus, "I", "the COMMIT of a failed transaction rolls it back");
    assert.deepEqual(await rowsOf(sql`select id, n from g order by id`), G_ROWS);
    // A fast UPDATE that changes no row fails too: it is a conflict to handle carefully.
    const missing = await apply(
      writer,
      true,
      () => writer.update(g, g.identity!, ["9", "9"], ["9", "9"], undefined),
    );
    assert.equal(missing?.operation, "update");
    assert.equal((missing?.cause as PgServerError).code, "SP003");
  },
);

pgTest(
  "SqlWriter in a pipelined transaction hands every failure to onFailure, the later statements skipped",
  async (_t, cluster) => {
    const { sql, wire, writer, relation } = await setup(cluster, G_TABLE);
    const g = await relation("g", ["id", "n"]);
    const failures: WriteFailure[] = [];
    const drained = await apply(
      writer,
      remote(true, { onFailure: (failure) => failures.push(failure) }),
      async () => {
        await writer.insert(g, ["1", "1"]); // the key exists: a fast INSERT fails
        await writer.update(g, g.identity!, ["2", "2"], ["2", "2"], undefined);
      },
    );
    assert.equal(drained, undefined, "failures go to onFailure, not to drain()");
    const [first, ...skipped] = failures;
    assert.equal(first.operation, "insert");
    assert.equal(first.relation, g);
    assert.equal((first.cause as PgServerError).code, "23505");
    assert.deepEqual(skipped.map((f) => f.operation).sort(), ["commit", "update"]);
    assert.ok(skipped.every((f) => f.cause instanceof PgSkippedError));
    // The caller ends the pipeline's error state and rolls back.
    assert.equal(await wire.sync(), "E");
    await wire.simple("rollback");
    assert.deepEqual(await rowsOf(sql`select id, n from g order by id`), G_ROWS);
  },
);

pgTest(
  "SqlWriter reports the conflicts its statements find, from result rows and from notices",
  async (_t, cluster) => {
    // Rows written here (origin 0) are another origin's, and newer than the remote commit.
    const { sql, writer, relation } = await setup(
      cluster,
      "create table c (id int primary key, v text); insert into c values (1, 'local')",
      { sessionOrigin: 1 },
    );
    const c = await relation("c", ["id", "v"]);
    const events: ConflictEvent[] = [];
    const failure = await apply(
      writer,
      remote(false, { onConflict: (event) => events.push(event) }),
      async () => {
        await writer.insert(c, ["1", "remote"]);
        await writer.update(c, c.identity!, ["1", "remote"], ["1", "remote"], undefined);
        await writer.delete(c, c.identity!, ["2", null]);
      },
    );
    assert.equal(failure, undefined);
    assert.deepEqual(
      events.map((e) => [e.type, e.resolution, e.indexName, e.recorded, e.relation === c]),
      [
        ["insert_exists", "keep_local", "c_pkey", true, true],
        ["update_origin_differs", "keep_local", "c_pkey", true, true],
        ["delete_missing", "skip", "c_pkey", true, true],
      ],
    );
    assert.ok(events[0].localXid !== null && events[0].localCommitTime !== null);
    assert.deepEqual(await rowsOf(sql`select id, v from c`), [{ id: 1, v: "local" }]);
  },
);

pgTest("SqlWriter.discard() drops the batched rows not sent yet", async (_t, cluster) => {
  const { sql, sent, writer, relation } = await setup(
    cluster,
    "create table t (id int primary key, v text)",
  );
  const t = await relation("t", ["id", "v"]);
  writer.setTransaction(remote(false));
  await writer.run("begin", [], "begin");
  for (const id of [1, 2, 3]) await writer.insert(t, [String(id), "dropped"]);
  writer.discard();
  await writer.run("rollback", [], "rollback");
  assert.equal(await writer.drain(), undefined);
  assert.equal(await apply(writer, false, () => writer.insert(t, ["4", "kept"])), undefined);
  assert.deepEqual(await rowsOf(sql`select id, v from t`), [{ id: 4, v: "kept" }]);
  assert.deepEqual(kinds(sent), ["rollback", "insert"]);
  assert.ok(!sent.some((s) => s.params.includes("dropped")));
});

pgTest(
  "SqlWriter splits a run of INSERTs at a key seen again, which then resolves as insert_exists",
  async (_t, cluster) => {
    // The local row is older than the remote transaction's: the remote side wins.
    const { sql, sent, writer, relation } = await setup(
      cluster,
      "create table k (id int primary key, v text)",
      { sessionOrigin: 999 },
    );
    const k = await relation("k", ["id", "v"]);
    const conflicts: ConflictEvent[] = [];
    const start = sent.length;
    const failure = await apply(
      writer,
      remote(false, { onConflict: (c) => conflicts.push(c) }),
      async () => {
        await writer.insert(k, ["1", "a"]);
        await writer.insert(k, ["2", "b"]);
        await writer.insert(k, ["1", "c"]);
      },
    );
    assert.equal(failure, undefined);
    assert.deepEqual(kinds(sent, start), ["insert", "insert"], "the run ends at the repeated key");
    assert.deepEqual(
      await rowsOf(sql`select id, v from k order by id`),
      [{ id: 1, v: "c" }, { id: 2, v: "b" }],
    );
    assert.deepEqual(conflicts.map((c) => c.type), ["insert_exists"]);
  },
);

pgTest(
  "SqlWriter keeps a multi-row INSERT under 32,768 parameters (a 1,001-column table)",
  async (_t, cluster) => {
    const columns = ["id", ...Array.from({ length: 1000 }, (_, i) => `c${i}`)];
    const { sql, sent, writer, relation } = await setup(
      cluster,
      `create table w (id int primary key, ${columns.slice(1).map((c) => `${c} text`).join(", ")})`,
    );
    const w = await relation("w", columns);
    const start = sent.length;
    const failure = await apply(writer, false, async () => {
      for (let id = 1; id <= 40; id++) {
        await writer.insert(w, [String(id), ...columns.slice(1).map((c) => `${c}-${id}`)]);
      }
    });
    assert.equal(failure, undefined);
    const statements = sent.slice(start).filter((s) => kindOf(s.text) === "insert");
    assert.ok(statements.every((s) => s.params.length <= 32_767), "no statement over the limit");
    assert.equal(statements.length, 2, "40 rows of 1,001 columns take two statements");
    const [row] = await sql`select count(*)::int as n, max(c999) as last from w`;
    assert.deepEqual({ ...row }, { n: 40, last: "c999-9" });
  },
);
