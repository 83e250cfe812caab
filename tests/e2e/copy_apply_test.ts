/**
 * Long runs of INSERTs in a transaction applied optimistically go as one
 * COPY (mod/apply/sql_writer.ts). Values with tabs, newlines, backslashes
 * and NULLs arrive as sent, in tables with and without a key. A COPY that
 * meets an existing key, or a table with tombstones (whose per-row check only
 * the upsert makes), fails the fast attempt: the transaction is applied again
 * with conflict handling, which records the conflict and skips the row
 * deleted later.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import {
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  tableDigest,
  waitConverged,
  waitForSync,
} from "./_mesh.ts";

const ROWS = 500;
const ODD_VALUES = ["tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N literally", ""];

pgTest(
  "runs of INSERTs are copied; a conflict or a tombstone sends the transaction the careful way",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["copyp", "copys"],
      `create table t_clean (id int primary key, v text);
       create table t_conf (id int primary key, v text);
       create table t_tomb (id int primary key, v text);
       create table t_nokey (n int, v text);`,
    );
    const [provider, subscriber] = nodes;
    try {
      // Both nodes have the tables in a set: the subscriber's deletes leave tombstones.
      for (const node of nodes) {
        for (const table of ["t_clean", "t_conf", "t_tomb"]) {
          await node.sql`select spock.repset_add_table('default', ${table})`;
        }
        await node.sql`select spock.repset_add_table('default_insert_only', 't_nokey')`;
      }
      const sub = await subscribe(subscriber, provider);
      let daemon = runDaemon(nodes, { save_resolutions: true });
      await waitForSync(subscriber, sub);
      await daemon.stop();

      await subscriber.sql`insert into t_conf values (250, 'local')`;
      await subscriber.sql`insert into t_tomb values (300, 'doomed')`;
      const odd = (id: string) =>
        `case when ${id} % 7 = 0 then null else (array[${
          ODD_VALUES.map((v) =>
            `E'${
              v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")
                .replaceAll("\r", "\\r").replaceAll("\t", "\\t")
            }'`
          ).join(", ")
        }])[1 + ${id} % ${ODD_VALUES.length}] || ${id} end`;
      for (const table of ["t_clean", "t_conf", "t_tomb"]) {
        await provider.sql.unsafe(
          `insert into ${table} select g, ${odd("g")} from generate_series(1, ${ROWS}) g`,
        );
      }
      await provider.sql.unsafe(
        `insert into t_nokey select g, ${odd("g")} from generate_series(1, ${ROWS}) g`,
      );
      // Deleted on the subscriber after the provider's insert: the later delete wins.
      await subscriber.sql`delete from t_tomb where id = 300`;

      daemon = runDaemon(nodes, { save_resolutions: true });
      try {
        for (const table of ["t_clean", "t_nokey", "t_conf"]) {
          await waitConverged(nodes, table);
        }
        await pollUntil(async () => {
          const [row] = await subscriber.sql`select count(*)::int as n from t_tomb`;
          return row.n === ROWS - 1;
        }, { what: "t_tomb's rows but the deleted one" });
      } finally {
        await daemon.stop();
      }
      const [clean] = await subscriber.sql`select count(*) filter (where v is null)::int as nulls,
        count(*) filter (where strpos(v, E'\t') > 0)::int as tabs from t_clean`;
      assert.ok(
        clean.nulls > 0 && clean.tabs > 0,
        `NULLs and tabs copied: ${JSON.stringify(clean)}`,
      );
      assert.equal(
        await tableDigest(subscriber.sql, "t_clean"),
        await tableDigest(provider.sql, "t_clean"),
      );
      const [kept] = await subscriber.sql`select v from t_conf where id = 250`;
      const [remote] = await provider.sql`select v from t_conf where id = 250`;
      assert.equal(kept.v, remote.v, "the newer remote row won the conflict");
      const conflicts = await subscriber.sql`select relname::text, conflict_type::text,
        conflict_resolution::text as resolution from spock.resolutions order by relname`;
      assert.deepEqual(
        conflicts.map((r) => `${r.relname} ${r.conflict_type} ${r.resolution}`),
        ["public.t_conf insert_exists apply_remote", "public.t_tomb insert_exists skip"],
        "the existing key and the key deleted later were handled as conflicts, and recorded",
      );
      const [tomb] = await subscriber.sql`select count(*)::int as n from t_tomb where id = 300`;
      assert.equal(tomb.n, 0, "the row deleted after the provider's insert stays deleted");
      assert.equal(
        await tableDigest(subscriber.sql, "t_tomb"),
        await tableDigest(provider.sql, "(select * from t_tomb where id <> 300)"),
      );
    } finally {
      await closeNodes(nodes);
    }
  },
);
