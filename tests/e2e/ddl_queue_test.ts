/**
 * The replicated queue: `spock.replicate_ddl()` on one node of a three-node
 * mesh where every node writes reaches every other node at its position in
 * the stream (no worker stalls, rows written with the new column replicate,
 * all nodes end identical); a DDL and a row using it in one transaction; a
 * queued sequence value moves the subscriber's
 * sequence; a queued command that fails on a subscriber follows
 * exception_behaviour and is logged as a DDL operation with its text and role.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  addAllTables,
  checkedPair,
  closeNodes,
  createNodes,
  runDaemon,
  subscribeMesh,
  type TestNode,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

const TABLES = "create table t (id int primary key, node text not null, v int not null)";

/** Numbered single-row transactions on `node` until `stop` says so; returns how many. */
async function writeUntil(node: TestNode, index: number, stop: { done: boolean }) {
  let n = 0;
  while (!stop.done) {
    n++;
    await node.sql`insert into t (id, node, v) values (${
      index * 1_000_000 + n
    }, ${node.name}, ${n})`;
  }
  return n;
}

pgTest(
  "replicate_ddl on one node of a writing mesh reaches every node in stream order",
  async (_t, cluster) => {
    const nodes = await createNodes(cluster, ["n1", "n2", "n3"], TABLES);
    const daemon = runDaemon(nodes);
    try {
      await addAllTables(nodes);
      const subs = await subscribeMesh(nodes);
      for (const [node, sub] of subs) await waitForSync(node, sub);

      const stop = { done: false };
      const writers = nodes.map((node, i) => writeUntil(node, i + 1, stop));
      const [n1, n2, n3] = nodes;
      await pollUntil(async () => {
        const [row] = await n1.sql`select count(*)::int as n from t where node <> 'n1'`;
        return row.n >= 20 || undefined;
      }, { what: "writes of n2 and n3 on n1" });
      const [queued] = await n1.sql`select spock.replicate_ddl(
        'ALTER TABLE t ADD COLUMN c int DEFAULT 0') as ok`;
      assert.equal(queued.ok, true);
      // Rows with the new column, from n1 right after the DDL and from every node once it has it.
      await n1.sql`insert into t (id, node, v, c) values (1, 'n1', 0, 42)`;
      for (const node of [n2, n3]) {
        await pollUntil(async () => {
          const [col] = await node.sql`select count(*)::int as n from information_schema.columns
            where table_name = 't' and column_name = 'c'`;
          return col.n === 1 || undefined;
        }, { what: `column c on ${node.name}` });
        await node.sql`insert into t (id, node, v, c) values (${node === n2 ? 2 : 3},
          ${node.name}, 0, 42)`;
      }
      stop.done = true;
      const written = await Promise.all(writers);
      const digest = await waitConverged(nodes, "t");
      assert.equal(digest.split(":")[0], String(written.reduce((a, b) => a + b, 0) + 3));
      for (const node of nodes) {
        const rows = await node.sql`select id, c from t where id <= 3 order by id`;
        assert.deepEqual(rows.map((r) => `${r.id}:${r.c}`), ["1:42", "2:42", "3:42"]);
        const [log] = await node.sql`select count(*)::int as n from spock.exception_log`;
        assert.equal(log.n, 0, `no exception on ${node.name}`);
      }
      // Every subscription kept streaming: none is down or restarting.
      for (const [node, sub] of subs) {
        const [status] = await node.sql`select status from spock.sub_show_status(${sub})`;
        assert.equal(status.status, "replicating", `${sub} on ${node.name}`);
      }
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);

pgTest(
  "queued sequence values, DDL, table copies and sync events act at their position; failing commands follow exception_behaviour",
  async (t, cluster) => {
    const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["p1", "s1"]);
    await provider.sql`create sequence s`;
    await subscriber.sql`create sequence s`;
    let daemon = runDaemon(nodes, { exception_behaviour: "transdiscard" });
    const countOf = async (table: string, where = "true") => {
      const [row] = await subscriber.sql.unsafe(
        `select count(*)::int as n from ${table} where ${where}`,
      );
      return row.n as number;
    };
    /**
     * A remote transaction of a queued CREATE TABLE that fails on the
     * subscriber (which has the table already) and a row of t with key `k`.
     */
    const failingCreate = async (table: string, k: number) => {
      await subscriber.sql.unsafe(`create table ${table} (id int)`);
      await provider.sql.begin(async (tx) => {
        await tx`select spock.replicate_ddl(${`CREATE TABLE ${table} (id int)`})`;
        await tx`insert into t values (${k}, ${k})`;
      });
    };
    const restartDaemon = async (behaviour: "discard" | "sub_disable") => {
      await daemon.stop();
      daemon = runDaemon(nodes, { exception_behaviour: behaviour });
    };
    try {
      await waitForSync(subscriber, sub);
      await t.step("a queued sequence value", async () => {
        await provider.sql`select setval('s', 5000)`;
        await provider.sql`select spock.repset_add_seq('default', 's', true)`;
        await pollUntil(async () => {
          const [row] = await subscriber.sql`select last_value::int8 as v from s`;
          return row.v === "5000" || undefined;
        }, { what: "the queued sequence value on the subscriber" });
        // Never backwards; one the subscriber lacks is skipped, and the stream goes on.
        await provider.sql`select setval('s', 10)`;
        await provider.sql`select spock.sync_seq('s')`;
        await provider.sql`create sequence only_there`;
        await provider.sql`select spock.repset_add_seq('default', 'only_there', true)`;
        await provider.sql`insert into t values (3, 3)`;
        await pollUntil(async () => (await countOf("t", "k = 3")) === 1 || undefined, {
          what: "the row after the sequence values",
        });
        const [row] = await subscriber.sql`select last_value::int8 as v from s`;
        assert.equal(row.v, "5000");
        assert.equal(await countOf("spock.exception_log"), 0);
      });

      await t.step("a DDL and a row using it in one remote transaction", async () => {
        await provider.sql.begin(async (tx) => {
          await tx`select spock.replicate_ddl('ALTER TABLE t ADD COLUMN d text')`;
          await tx`insert into t (k, v, d) values (2, 2, 'with d')`;
        });
        await pollUntil(async () => {
          const rows = await subscriber.sql`select d from t where k = 2`;
          return rows[0]?.d === "with d" || undefined;
        }, { what: "the row written with the new column in the DDL's transaction" });
      });

      await t.step("a table added with synchronize_data is copied, then streams", async () => {
        await provider.sql`create table late (id int primary key)`;
        await subscriber.sql`create table late (id int primary key)`;
        await provider.sql`insert into late select generate_series(1, 3)`;
        await provider.sql`select spock.repset_add_table('default', 'late', true)`;
        await provider.sql`insert into late values (4)`;
        await pollUntil(async () => (await countOf("late")) === 4 || undefined, {
          what: "the copied and the streamed rows of late",
        });
        await pollUntil(async () => {
          const [row] = await subscriber
            .sql`select status from spock.sub_show_table(${sub}, 'late')`;
          return ["synchronized", "replicating"].includes(row.status) || undefined;
        }, { what: "late's copy done" });
        await provider.sql`insert into late values (5)`;
        await pollUntil(async () => (await countOf("late")) === 5 || undefined, {
          what: "a later row of late",
        });
      });

      await t.step("under transdiscard, a failing command discards its transaction", async () => {
        await failingCreate("dup", 10);
        await provider.sql`insert into t values (1, 1)`;
        const [logged] = await pollUntil(async () => {
          const rows = await subscriber.sql`select operation, ddl_statement, ddl_user,
            error_message from spock.exception_log where operation = 'DDL'`;
          return rows.length > 0 ? rows : undefined;
        }, { what: "the failed queued command in exception_log" });
        assert.equal(logged.ddl_user, "postgres");
        assert.match(logged.ddl_statement, /^SET search_path TO .*; CREATE TABLE dup \(id int\)$/);
        assert.match(logged.error_message, /relation "dup" already exists/);
        // The stream goes on: the next transaction applies, the failed one's row does not.
        await pollUntil(async () => (await countOf("t", "k = 1")) === 1 || undefined, {
          what: "the transaction after the failed command",
        });
        assert.equal(await countOf("t", "k = 10"), 0);
      });

      await t.step("under discard, the rest of the transaction applies", async () => {
        await restartDaemon("discard");
        await failingCreate("dup2", 11);
        await pollUntil(async () => (await countOf("t", "k = 11")) === 1 || undefined, {
          what: "the row after the failed command in its transaction",
        });
        const [row] = await subscriber.sql`select count(*)::int as n from spock.exception_log
          where operation = 'DDL' and ddl_statement like '%dup2%'`;
        assert.equal(row.n, 1);
      });

      await t.step("under sub_disable, the subscription stops at the command", async () => {
        await restartDaemon("sub_disable");
        await failingCreate("dup3", 12);
        await pollUntil(async () => {
          const [row] = await subscriber.sql`select sub_enabled from spock.subscription`;
          return row.sub_enabled === false || undefined;
        }, { what: "the subscription disabled by the failing command" });
        assert.equal(await countOf("t", "k = 12"), 0);

        // A wait on a disabled subscription times out with false.
        const [event] = await provider.sql`select spock.sync_event()::text as lsn`;
        const [late] = await subscriber.sql`call spock.wait_for_sync_event(NULL, 'p1',
          ${event.lsn}::pg_lsn, 1)`;
        assert.equal(late.result, false);

        // Once the conflicting table is gone, enabling it runs the command and the row.
        await subscriber.sql`drop table dup3`;
        await subscriber.sql`select spock.sub_enable(${sub})`;
        await pollUntil(async () => (await countOf("t", "k = 12")) === 1 || undefined, {
          what: "the transaction once enabled again",
        });
        assert.equal(await countOf("dup3"), 0);
      });

      await t.step("wait_for_sync_event returns within 2 s on an idle provider", async () => {
        const [event] = await provider.sql`select spock.sync_event()::text as lsn`;
        const started = performance.now();
        const [reached] = await subscriber.sql`call spock.wait_for_sync_event(NULL, 'p1',
          ${event.lsn}::pg_lsn, 2)`;
        assert.equal(reached.result, true);
        assert.ok(performance.now() - started < 2_000, "within 2 s");
        // Any position counts once the subscriber has passed it, not only a sync event's.
        const [now] = await provider.sql`select pg_current_wal_lsn()::text as lsn`;
        const [passed] = await subscriber.sql`call spock.wait_for_sync_event(NULL, 'p1',
          ${now.lsn}::pg_lsn, 2)`;
        assert.equal(passed.result, true);
      });
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
