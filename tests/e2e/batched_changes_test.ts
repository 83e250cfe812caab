/**
 * Runs of UPDATEs and DELETEs in a transaction applied optimistically go as
 * one statement per run, the rows as `text[]` columns
 * (mod/apply/sql_writer.ts). Values with quotes, braces, commas, backslashes,
 * the text NULL and real NULLs arrive as sent; each deleted row leaves its
 * tombstone. A run that meets a newer local row or a missing one fails the
 * fast attempt, and the transaction is applied again with conflict handling,
 * which keeps the newer local row and records both conflicts; a run without
 * one commits as it is (the server log shows which statements ran).
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  tableDigest,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

/** Every row but the one both sides changed. */
const REST = "(select * from t where id <> 250)";
const ODD = [`{"quoted", with, commas}`, "back\\slash", "NULL", "", "tab\there", "ünïcödé"];

pgTest(
  "runs of UPDATEs and DELETEs are batched; a conflict sends the transaction the careful way",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["batchp", "batchs"],
      "create table t (id int primary key, v text, n int)",
    );
    const [provider, subscriber] = nodes;
    try {
      for (const node of nodes) await node.sql`select spock.repset_add_table('default', 't')`;
      const sub = await subscribe(subscriber, provider);
      let daemon = runDaemon(nodes, { save_resolutions: true });
      try {
        await waitForSync(subscriber, sub);
        await provider.sql`insert into t select g, 'first', g from generate_series(1, 600) g`;
        await waitConverged(nodes, "t");
      } finally {
        await daemon.stop();
      }

      await provider.sql.begin(async (tx) => {
        for (let id = 1; id <= 400; id++) {
          const v = id % 9 === 0 ? null : `${ODD[id % ODD.length]} ${id}`;
          await tx`update t set v = ${v}, n = n + 1 where id = ${id}`;
        }
      });
      await provider.sql`delete from t where id > 400`;
      await provider.sql`update t set n = n + 10 where id <= 100`;
      // After the provider's changes: a newer local update, and a row already gone.
      await subscriber.sql`update t set v = 'local and newer' where id = 250`;
      await subscriber.sql`delete from t where id = 450`;

      daemon = runDaemon(nodes, { save_resolutions: true });
      try {
        await waitConverged(nodes, REST);
      } finally {
        await daemon.stop();
      }
      const [kept] = await subscriber.sql`select v, n from t where id = 250`;
      assert.deepEqual({ ...kept }, { v: "local and newer", n: 250 }, "the newer local row kept");
      assert.equal(
        await tableDigest(subscriber.sql, REST),
        await tableDigest(provider.sql, REST),
      );
      const [nulls] = await subscriber.sql`select count(*)::int as n from t where v is null`;
      assert.ok(nulls.n > 0, "NULLs arrived as NULL");
      const conflicts = await subscriber.sql`select conflict_type::text as type,
        (remote_tuple::json ->> 'id')::int as id from spock.resolutions order by 1`;
      assert.deepEqual(
        conflicts.map((r) => `${r.type} ${r.id}`),
        ["delete_missing 450", "update_origin_differs 250"],
      );
      const [tombs] = await subscriber.sql`select count(*)::int as n from spock._tombstone
        where relname = 't' and (key ->> 'id')::int > 400`;
      assert.equal(tombs.n, 200, "a tombstone for every deleted key");
      // The server ran the batched statements; only the two runs with a conflict failed.
      const log = await cluster.log();
      assert.match(log, /update "public"\."t" as t set .* from v where/);
      assert.match(log, /delete from "public"\."t" as t using v where/);
      const failures = log.match(/fewer than the \d+ rows they were sent for/g) ?? [];
      assert.deepEqual(failures, [
        "fewer than the 400 rows they were sent for",
        "fewer than the 200 rows they were sent for",
      ]);
    } finally {
      await closeNodes(nodes);
    }
  },
  { conf: { log_statement: "all" } },
);
