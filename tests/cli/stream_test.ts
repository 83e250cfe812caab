/**
 * `spock stream` end to end against real servers: the printed JSON lines match
 * the changes made, a restart resumes after the last printed transaction, the
 * pretty format, logical messages, capture and replay. Failures are in
 * stream_errors_test.ts, usage mistakes and help in usage_test.ts.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import { countType, SpockProcess, stable } from "../_harness/spock_process.ts";

const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/;
const BIG = "x".repeat(5000);

function lsnValue(text: unknown): bigint {
  const [high, low] = String(text).split("/");
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

const ITEMS_RELATION = {
  type: "relation",
  schema: "public",
  table: "items",
  replica_identity: "default",
  columns: [
    { name: "id", type_oid: 23, type_mod: -1, key: true },
    { name: "name", type_oid: 25, type_mod: -1, key: false },
    { name: "note", type_oid: 25, type_mod: -1, key: false },
    { name: "big", type_oid: 25, type_mod: -1, key: false },
  ],
};
const AUDIT_RELATION = {
  type: "relation",
  schema: "public",
  table: "audit",
  replica_identity: "full",
  columns: [
    { name: "id", type_oid: 23, type_mod: -1, key: true },
    { name: "info", type_oid: 25, type_mod: -1, key: true },
  ],
};
const ITEMS = { schema: "public", table: "items" };
const AUDIT = { schema: "public", table: "audit" };
const BEGIN = { type: "begin" };
const COMMIT = { type: "commit" };

/** What the changes in the first test print, without LSNs, xids, times and oids. */
const EXPECTED = [
  BEGIN,
  ITEMS_RELATION,
  { type: "insert", ...ITEMS, new: { id: "1", name: "one", note: null, big: BIG } },
  COMMIT,
  BEGIN,
  {
    type: "update",
    ...ITEMS,
    new: { id: "1", name: "uno", note: null },
    unchanged_toast: ["big"],
  },
  COMMIT,
  BEGIN,
  AUDIT_RELATION,
  { type: "insert", ...AUDIT, new: { id: "1", info: "a" } },
  { type: "update", ...AUDIT, old: { id: "1", info: "a" }, new: { id: "1", info: "b" } },
  {
    type: "message",
    transactional: true,
    prefix: "spock_test",
    content: "in a transaction",
  },
  COMMIT,
  BEGIN,
  {
    type: "update",
    ...ITEMS,
    key: { id: "1" },
    new: { id: "2", name: "uno", note: null },
    unchanged_toast: ["big"],
  },
  COMMIT,
  { type: "message", transactional: false, prefix: "spock_test", content: "right away" },
  BEGIN,
  { type: "delete", ...ITEMS, key: { id: "2" } },
  COMMIT,
  BEGIN,
  { type: "delete", ...AUDIT, old: { id: "1", info: "b" } },
  COMMIT,
  BEGIN,
  ITEMS_RELATION,
  AUDIT_RELATION,
  {
    type: "truncate",
    relations: [ITEMS, AUDIT],
    cascade: false,
    restart_identity: false,
  },
  COMMIT,
];

pgTest(
  "spock stream prints inserts, updates, deletes and truncates as JSON lines",
  async (t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe(`
      create table items (id int primary key, name text, note text, big text);
      alter table items alter column big set storage external;
      create table audit (id int, info text);
      alter table audit replica identity full;
      create publication pub for table items, audit;
    `);
    const dir = await Deno.makeTempDir({ prefix: "spock-stream-test-" });
    const capturePath = `${dir}/stream.capture`;
    let live: string[] = [];
    try {
      await t.step("the live output matches the changes made, then SIGINT exits 0", async () => {
        await using spock = new SpockProcess([
          "stream",
          "--dsn",
          cluster.dsn(),
          "--slot",
          "cli_slot",
          "--publication",
          "pub",
          "--create-slot",
          "--messages",
          "--capture",
          capturePath,
        ]);
        await spock.streaming();
        await sql`insert into items values (1, 'one', null, ${BIG})`;
        await sql`update items set name = 'uno' where id = 1`;
        await sql.begin(async (tx) => {
          await tx`insert into audit values (1, 'a')`;
          await tx`update audit set info = 'b' where id = 1`;
          await tx`select pg_logical_emit_message(true, 'spock_test', 'in a transaction')`;
        });
        await sql`update items set id = 2 where id = 1`;
        await sql`select pg_logical_emit_message(false, 'spock_test', 'right away')`;
        await sql`delete from items where id = 2`;
        await sql`delete from audit`;
        await sql`truncate items, audit`;
        await spock.waitFor((lines) => countType(lines, "commit") === 7, "the seventh commit");
        const result = await spock.interrupt();
        assert.equal(result.code, 0, result.stderr);
        const printed = spock.json();
        // The server may describe a relation again at any time (after any relcache
        // invalidation), so Relation messages are checked apart from the exact sequence.
        const isRelation = (m: Record<string, unknown>) => m.type === "relation";
        assert.deepEqual(
          stable(printed).filter((m) => !isRelation(m)),
          EXPECTED.filter((m) => !isRelation(m)),
        );
        const described = new Set<string>();
        for (const message of stable(printed)) {
          if (isRelation(message)) described.add(`${message.schema}.${message.table}`);
          if (["insert", "update", "delete"].includes(String(message.type))) {
            assert.ok(described.has(`${message.schema}.${message.table}`), "described before use");
          }
        }
        assert.deepEqual(
          [...new Set(stable(printed).filter(isRelation).map((m) => JSON.stringify(m)))].sort(),
          [JSON.stringify(ITEMS_RELATION), JSON.stringify(AUDIT_RELATION)].sort(),
        );
        live = result.lines;

        for (const message of printed) {
          if (message.type !== "relation") assert.match(String(message.lsn), LSN);
        }
        const begins = printed.filter((m) => m.type === "begin");
        const commits = printed.filter((m) => m.type === "commit");
        for (const [i, begin] of begins.entries()) {
          assert.equal(typeof begin.xid, "number");
          assert.equal(begin.final_lsn, commits[i].commit_lsn);
          assert.equal(begin.commit_time, commits[i].commit_time);
          assert.match(String(begin.commit_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
          assert.ok(lsnValue(commits[i].end_lsn) > lsnValue(commits[i].commit_lsn));
          if (i > 0) assert.ok(lsnValue(begin.lsn) >= lsnValue(commits[i - 1].end_lsn));
        }
      });

      await t.step("--replay of the --capture file prints the same JSON lines", async () => {
        const replay = await runSpock(["stream", "--replay", capturePath]);
        assert.equal(replay.code, 0, replay.stderr);
        assert.equal(replay.stderr, "");
        assert.deepEqual(replay.stdout.split("\n"), [...live, ""]);
      });

      await t.step("--format pretty prints one readable line per message", async () => {
        const pretty = await runSpock(["stream", "--replay", capturePath, "--format", "pretty"]);
        assert.equal(pretty.code, 0, pretty.stderr);
        const lines = pretty.stdout.trimEnd().split("\n")
          .filter((line) => !line.startsWith("  RELATION ")) // resent at the server's discretion
          .map((line) =>
            line.replace(/\b[0-9A-F]{1,8}\/[0-9A-F]{1,8}\b/g, "L")
              .replace(/xid \d+/, "xid X")
              .replace(/\(commit time [^)]+\)/, "(commit time T)")
              .replace(/ \(\d+\), replica/, " (OID), replica")
          );
        const commit = "COMMIT at L, end L";
        const begin = "BEGIN xid X at L (commit time T)";
        assert.deepEqual(lines, [
          begin,
          `  INSERT public.items: id='1' name='one' note=NULL big='${BIG}'`,
          commit,
          begin,
          "  UPDATE public.items: id='1' name='uno' note=NULL (unchanged: big)",
          commit,
          begin,
          "  INSERT public.audit: id='1' info='a'",
          "  UPDATE public.audit: old(id='1' info='a') → id='1' info='b'",
          "  MESSAGE spock_test: in a transaction",
          commit,
          begin,
          "  UPDATE public.items: key(id='1') → id='2' name='uno' note=NULL (unchanged: big)",
          commit,
          "MESSAGE spock_test: right away",
          begin,
          "  DELETE public.items: id='2'",
          commit,
          begin,
          "  DELETE public.audit: id='1' info='b'",
          commit,
          begin,
          "  TRUNCATE public.items, public.audit",
          commit,
        ]);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * The inserted ids of every transaction printed in full (Begin … Commit). A
 * transaction cut off by the stop is left out: it was not confirmed, so the
 * server sends it again and the next run prints it whole.
 */
function committedInserts(messages: Record<string, unknown>[]): number[] {
  const ids: number[] = [];
  let open: number[] | undefined;
  for (const message of messages) {
    if (message.type === "begin") open = [];
    else if (message.type === "insert") open?.push(Number((message.new as { id: string }).id));
    else if (message.type === "commit" && open) {
      ids.push(...open);
      open = undefined;
    }
  }
  return ids;
}

pgTest("spock stream resumes after the last printed transaction on restart", async (t, cluster) => {
  // Synchronous commits wake the walsender at each commit, so transactions arrive one by one.
  const sql = cluster.connect({ connection: { synchronous_commit: "on" } });
  await sql.unsafe(`
    create table seq (id int primary key);
    create publication seq_pub for table seq;
  `);
  const args = [
    "stream",
    "--dsn",
    cluster.dsn(),
    "--slot",
    "resume_slot",
    "--publication",
    "seq_pub",
  ];
  const insert = async (from: number, to: number) => {
    for (let id = from; id <= to; id++) await sql`insert into seq values (${id})`;
  };
  let first: Record<string, unknown>[] = [];

  await t.step("SIGINT in the middle of a burst confirms the printed transactions", async () => {
    await using spock = new SpockProcess([...args, "--create-slot"]);
    await spock.streaming();
    await insert(1, 3);
    await spock.waitFor((lines) => countType(lines, "commit") >= 2, "two commits");
    const burst = insert(4, 300);
    await spock.waitFor((lines) => countType(lines, "commit") >= 5, "five commits");
    const result = await spock.interrupt(); // while the burst is still being streamed
    await burst;
    assert.equal(result.code, 0, result.stderr);
    first = spock.json();
    assert.ok(committedInserts(first).length >= 2);

    const lastEnd = first.filter((m) => m.type === "commit").at(-1)!.end_lsn;
    const [slot] = await sql`
      select active, confirmed_flush_lsn::text as confirmed
      from pg_replication_slots where slot_name = 'resume_slot'`;
    assert.equal(slot.active, false);
    // A keepalive received while idle may move the position past the last commit; never before it.
    assert.ok(
      lsnValue(slot.confirmed) >= lsnValue(lastEnd),
      `confirmed_flush_lsn ${slot.confirmed} is behind the last printed commit ${lastEnd}`,
    );
  });

  await t.step("the next run prints every later transaction exactly once", async () => {
    const [before] =
      await sql`select confirmed_flush_lsn::text as confirmed from pg_replication_slots where slot_name = 'resume_slot'`;
    await insert(301, 304);
    await using spock = new SpockProcess(args);
    await spock.waitFor(
      (lines) =>
        lines.some((line) => line.includes('"id":"304"')) && lines.at(-1)!.includes('"commit"'),
      "the insert of id 304 to be committed",
    );
    const result = await spock.interrupt();
    assert.equal(result.code, 0, result.stderr);
    const second = spock.json();
    const firstCommit = second.find((m) => m.type === "commit")!;
    assert.ok(lsnValue(firstCommit.commit_lsn) >= lsnValue(before.confirmed));

    const ids = [...committedInserts(first), ...committedInserts(second)];
    assert.deepEqual(ids, Array.from({ length: 304 }, (_, i) => i + 1));
    const [slot] = await sql`
      select confirmed_flush_lsn::text as confirmed
      from pg_replication_slots where slot_name = 'resume_slot'`;
    assert.ok(lsnValue(slot.confirmed) >= lsnValue(second.at(-1)!.end_lsn));
  });
});

pgTest(
  "spock stream confirms a transaction still being printed when SIGINT arrives",
  async (_t, cluster) => {
    const sql = cluster.connect();
    await sql.unsafe(`
      create table wide (id int primary key, payload text);
      create publication wide_pub for table wide;
    `);
    await sql`select pg_create_logical_replication_slot('blocked_slot', 'pgoutput')`;
    // 200 transactions of about 2 kB each: far more output than a pipe holds.
    await sql.unsafe(`
      do $$ begin
        for i in 1..200 loop
          insert into wide values (i, repeat('y', 2000));
          commit;
        end loop;
      end $$`);
    const [{ end }] = await sql`select pg_current_wal_lsn()::text as end`;
    await using spock = new SpockProcess([
      "stream",
      "--dsn",
      cluster.dsn(),
      "--slot",
      "blocked_slot",
      "--publication",
      "wide_pub",
    ], { pauseWhen: (lines) => countType(lines, "commit") > 0 });
    // Reading stops after the first commit; once all is sent, spock waits on a write of a batch.
    await pollUntil(() => spock.readingPaused, { what: "the first printed commit" });
    await pollUntil(async () => {
      const rows = await sql`
      select sent_lsn >= ${end}::pg_lsn as done from pg_stat_replication
      where application_name = 'spock stream'`;
      return rows[0]?.done === true;
    }, { what: "the walsender to send the whole backlog" });
    const stopping = spock.interrupt();
    spock.resumeReading();
    const result = await stopping;
    assert.equal(result.code, 0, result.stderr);

    const commits = spock.json().filter((m) => m.type === "commit");
    assert.ok(commits.length > 0);
    const lastEnd = String(commits.at(-1)!.end_lsn);
    const [slot] = await sql`
    select confirmed_flush_lsn::text as confirmed
    from pg_replication_slots where slot_name = 'blocked_slot'`;
    assert.ok(
      lsnValue(slot.confirmed) >= lsnValue(lastEnd),
      `confirmed_flush_lsn ${slot.confirmed} is behind the last printed commit ${lastEnd} ` +
        `(${commits.length} printed): a restart would print those transactions again`,
    );
  },
);
