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
  "a queued sequence value sets the subscriber's sequence; a failing queued command follows exception_behaviour",
  async (_t, cluster) => {
    const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["p1", "s1"]);
    await provider.sql`create sequence s`;
    await subscriber.sql`create sequence s`;
    const daemon = runDaemon(nodes, { exception_behaviour: "transdiscard" });
    try {
      await waitForSync(subscriber, sub);
      await provider.sql`select setval('s', 5000)`;
      await provider.sql`select spock.repset_add_seq('default', 's', true)`;
      await pollUntil(async () => {
        const [row] = await subscriber.sql`select last_value::int8 as v from s`;
        return row.v === "5000" || undefined;
      }, { what: "the queued sequence value on the subscriber" });

      // A DDL and a row using it in one remote transaction apply in order.
      await provider.sql.begin(async (tx) => {
        await tx`select spock.replicate_ddl('ALTER TABLE t ADD COLUMN d text')`;
        await tx`insert into t (k, v, d) values (2, 2, 'with d')`;
      });
      await pollUntil(async () => {
        const rows = await subscriber.sql`select d from t where k = 2`;
        return rows[0]?.d === "with d" || undefined;
      }, { what: "the row written with the new column in the DDL's transaction" });

      // Only the subscriber already has table dup: the queued CREATE fails there.
      await subscriber.sql`create table dup (id int)`;
      await provider.sql`select spock.replicate_ddl('CREATE TABLE dup (id int)')`;
      await provider.sql`insert into t values (1, 1)`;
      const [logged] = await pollUntil(async () => {
        const rows = await subscriber.sql`select operation, ddl_statement, ddl_user,
          error_message from spock.exception_log where operation = 'DDL'`;
        return rows.length > 0 ? rows : undefined;
      }, { what: "the failed queued command in exception_log" });
      assert.equal(logged.ddl_user, "postgres");
      assert.match(logged.ddl_statement, /^SET search_path TO .*; CREATE TABLE dup \(id int\)$/);
      assert.match(logged.error_message, /relation "dup" already exists/);
      // The stream goes on: the next transaction applies.
      await pollUntil(async () => {
        const [row] = await subscriber.sql`select count(*)::int as n from t where k = 1`;
        return row.n === 1 || undefined;
      }, { what: "the transaction after the failed command" });
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
