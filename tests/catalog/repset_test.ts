/**
 * The replication-set functions of the SQL API (mod/catalog/sql/api/0[7-9]_repset*.sql, 10_repset_seq.sql)
 * against real servers: Spock's checks and error texts, publications kept in
 * step, row filters validated without ever running injected SQL, queue
 * messages, partitions, sequences pushed ahead (sync_seq, sync_sequences) and
 * the drop cleanup.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { installedVersion, uninstallCatalog } from "../../mod/catalog/mod.ts";
import {
  INVALID_ROW_FILTERS,
  nodeDatabase,
  rejection,
  REPSET_SCHEMA,
  spockNodeId,
  spockPairId,
  VALID_ROW_FILTERS,
} from "./_node_fixture.ts";

pgTest(
  "replication set functions keep sets and publications as Spock would",
  async (t, cluster) => {
    const sql = await nodeDatabase(cluster, "postgres", "n1");
    await sql.unsafe(REPSET_SCHEMA);
    const n1 = spockNodeId("n1");
    const members = async (set: string) =>
      (await sql`SELECT r.set_reloid::text AS rel FROM spock.replication_set_table r
      JOIN spock.replication_set s USING (set_id) WHERE s.set_name = ${set} ORDER BY 1`)
        .map((r) => r.rel);
    const published = async (
      pub: string,
    ) => [
      ...await sql`SELECT tablename::text, attnames::text[], rowfilter FROM pg_publication_tables
      WHERE pubname = ${pub} ORDER BY 1`,
    ];
    const xStillThere = async () => {
      const [row] = await sql`SELECT to_regclass('public.x') IS NOT NULL AS present`;
      assert.equal(row.present, true, "table x survived");
    };

    await t.step("repset_create() creates a set with Spock's id and its publication", async () => {
      const [row] = await sql`SELECT spock.repset_create('ins_upd', replicate_delete := false,
      replicate_truncate := false)::bigint AS id`;
      assert.equal(Number(row.id), spockPairId(n1, "ins_upd"));
      const [pub] =
        await sql`SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication
      WHERE pubname = 'spock_ins_upd'`;
      assert.deepEqual({ ...pub }, {
        pubinsert: true,
        pubupdate: true,
        pubdelete: false,
        pubtruncate: false,
      });
      for (const odd of ["'); DROP TABLE x; --", "Sales", "ünïcode", "a".repeat(60)]) {
        const [created] = await sql`SELECT spock.repset_create(${odd})::bigint AS id`;
        const [mapped] = await sql`SELECT pubname::text FROM spock._set_publication
        WHERE set_id = ${created.id}`;
        assert.equal(mapped.pubname, `spock_set_${created.id}`);
      }
      await xStillThere();
    });

    await t.step("repset_create() refuses empty and duplicate names", async () => {
      const empty = await rejection(sql`SELECT spock.repset_create('')`);
      assert.equal(empty.message, "replication set name cannot be empty");
      const duplicate = await rejection(sql`SELECT spock.repset_create('ins_upd')`);
      assert.equal(duplicate.message, "replication set ins_upd already exists");
    });

    await t.step("repset_alter() changes the given actions and the publication", async () => {
      const [row] =
        await sql`SELECT spock.repset_alter('ins_upd', replicate_truncate := true)::bigint AS id`;
      assert.equal(Number(row.id), spockPairId(n1, "ins_upd"));
      const [set] = await sql`SELECT replicate_insert AS i, replicate_update AS u,
      replicate_delete AS d, replicate_truncate AS t FROM spock.replication_set WHERE set_name = 'ins_upd'`;
      assert.deepEqual({ ...set }, { i: true, u: true, d: false, t: true });
      const [pub] =
        await sql`SELECT pubdelete, pubtruncate FROM pg_publication WHERE pubname = 'spock_ins_upd'`;
      assert.deepEqual({ ...pub }, { pubdelete: false, pubtruncate: true });
      assert.equal(
        (await rejection(sql`SELECT spock.repset_alter(NULL)`)).message,
        "set_name cannot be NULL",
      );
      assert.equal(
        (await rejection(sql`SELECT spock.repset_alter('nope')`)).message,
        "replication set nope not found",
      );
    });

    await t.step(
      "repset_add_table() refuses a table without a primary key in a set that replicates updates",
      async () => {
        const error = await rejection(sql`SELECT spock.repset_add_table('default', 't_nopk')`);
        assert.equal(error.message, "table t_nopk cannot be added to replication set default");
        assert.equal(
          error.detail,
          "table does not have PRIMARY KEY and given replication set is configured to replicate UPDATEs and/or DELETEs",
        );
        await sql`SELECT spock.repset_add_table('default_insert_only', 't_nopk')`;
        assert.deepEqual(await published("spock_default_insert_only"), [
          { tablename: "t_nopk", attnames: ["a", "b"], rowfilter: null },
        ]);
        const alter = await rejection(
          sql`SELECT spock.repset_alter('default_insert_only', replicate_update := true)`,
        );
        assert.equal(
          alter.message,
          "replication set default_insert_only cannot be altered to replicate UPDATEs or DELETEs because it contains tables without PRIMARY KEY",
        );
        const [pub] =
          await sql`SELECT pubupdate FROM pg_publication WHERE pubname = 'spock_default_insert_only'`;
        assert.equal(pub.pubupdate, false);
      },
    );

    await t.step(
      "repset_add_table() refuses UNLOGGED and TEMP tables, views and unknown names",
      async () => {
        const unlogged = await rejection(
          sql`SELECT spock.repset_add_table('default', 't_unlogged')`,
        );
        assert.equal(unlogged.message, "UNLOGGED and TEMP tables cannot be replicated");
        await sql.begin(async (tx) => {
          await tx`CREATE TEMP TABLE t_temp (id int PRIMARY KEY)`;
          const temp = await rejection(
            tx.savepoint((sp) => sp`SELECT spock.repset_add_table('default', 't_temp')`),
          );
          assert.equal(temp.message, "UNLOGGED and TEMP tables cannot be replicated");
        });
        const injected = await rejection(
          sql`SELECT spock.repset_add_table('default', 'x; DROP TABLE x')`,
        );
        assert.equal(injected.message, "invalid name syntax");
        const unknownTable = await rejection(sql`SELECT spock.repset_add_table('default', 'nope')`);
        assert.equal(unknownTable.message, 'relation "nope" does not exist');
        const view = await rejection(
          sql`SELECT spock.repset_add_table('default_insert_only', 'v')`,
        );
        assert.equal(view.message, '"v" is not a table');
        const unknownSet = await rejection(sql`SELECT spock.repset_add_table('nope', 'x')`);
        assert.equal(unknownSet.message, "replication set nope not found");
        assert.equal(
          (await rejection(sql`SELECT spock.repset_add_table(NULL, 'x')`)).message,
          "set_name cannot be NULL",
        );
        assert.deepEqual(await members("default"), []);
        await xStillThere();
      },
    );

    await t.step("repset_add_table() puts the column list into the publication", async () => {
      await sql`SELECT spock.repset_add_table('default', 't_pk', columns := '{id,b}')`;
      await sql`SELECT spock.repset_add_table('default', '"MixedCase"')`;
      assert.deepEqual(await published("spock_default"), [
        { tablename: "MixedCase", attnames: ["id", "Val"], rowfilter: null },
        { tablename: "t_pk", attnames: ["id", "b"], rowfilter: null },
      ]);
      const duplicate = await rejection(sql`SELECT spock.repset_add_table('default', 't_pk')`);
      assert.equal(duplicate.code, "23505");
      assert.match(duplicate.message, /replication_set_table_pkey/);
      const column = await rejection(
        sql`SELECT spock.repset_add_table('ins_upd', 't_pk', columns := '{id,nope}')`,
      );
      assert.equal(column.message, "table public.t_pk does not have column nope");
      const identity = await rejection(
        sql`SELECT spock.repset_add_table('ins_upd', 't_pk', columns := '{a,b}')`,
      );
      assert.equal(identity.message, "REPLICA IDENTITY columns must be replicated");
      await sql`SELECT spock.repset_remove_table('default', 't_pk')`;
      assert.deepEqual(await members("default"), ['"MixedCase"']);
      const missing = await rejection(sql`SELECT spock.repset_remove_table('default', 't_pk')`);
      assert.match(missing.message, /^replication set table mapping \d+:\d+ not found$/);
    });

    await t.step(
      "row filters stay out of publications, so UPDATE and DELETE on any column work",
      async () => {
        await sql`SELECT spock.repset_add_table('default', 't_pk', row_filter := 'c > 10 AND b <> ''skip''')`;
        const [stored] = await sql`SELECT set_row_filter FROM spock.replication_set_table
      WHERE set_reloid = 't_pk'::regclass`;
        assert.equal(stored.set_row_filter, "((c > 10) AND (b <> 'skip'::text))");
        assert.deepEqual(await published("spock_default"), [
          { tablename: "MixedCase", attnames: ["id", "Val"], rowfilter: null },
          { tablename: "t_pk", attnames: ["id", "a", "b", "c"], rowfilter: null },
        ]);
        await sql`INSERT INTO t_pk VALUES (1, 1, 'one', 5), (2, 2, 'two', 50), (3, 3, 'skip', 60)`;
        await sql`UPDATE t_pk SET c = c + 1`;
        await sql`DELETE FROM t_pk WHERE id = 3`;
      },
    );

    await t.step(
      "repset_add_table() refuses invalid and injected row filters and runs none of them",
      async () => {
        for (const filter of INVALID_ROW_FILTERS) {
          const error = await rejection(
            sql`SELECT spock.repset_add_table('ins_upd', 't_pk', row_filter := ${filter})`,
          );
          assert.equal(error.message, `invalid row_filter expression "${filter}"`, filter);
        }
        await xStillThere();
        assert.deepEqual(await members("ins_upd"), []);
        for (const filter of VALID_ROW_FILTERS) {
          await sql`SELECT spock.repset_add_table('ins_upd', 't_pk', row_filter := ${filter})`;
          await sql`SELECT spock.repset_remove_table('ins_upd', 't_pk')`;
        }
        // A backslash escapes a quote only where the server says so.
        const backslash = "b <> 'a\\'; DROP TABLE x; --'";
        await rejection(
          sql`SELECT spock.repset_add_table('ins_upd', 't_pk', row_filter := ${backslash})`,
        );
        await sql`SET standard_conforming_strings = off`;
        await sql`SELECT spock.repset_add_table('ins_upd', 't_pk', row_filter := ${backslash})`;
        await sql`RESET standard_conforming_strings`;
        await sql`SELECT spock.repset_remove_table('ins_upd', 't_pk')`;
        await xStillThere();
      },
    );

    await t.step(
      "repset_add_table() refuses a filter that calls a function not built in",
      async () => {
        await sql`CREATE FUNCTION public.only_here(int) RETURNS boolean LANGUAGE sql AS 'SELECT $1 > 0'`;
        const error = await rejection(
          sql`SELECT spock.repset_add_table('ins_upd', 't_pk', row_filter := 'only_here(c)')`,
        );
        assert.equal(error.code, "0A000");
        assert.equal(error.message, 'invalid row_filter expression "only_here(c)"');
        assert.match(
          error.detail!,
          /^It uses function only_here\(integer\), which is not built in/,
        );
        assert.deepEqual(await members("ins_upd"), []);
        const builtIn = "lower(b) <> 'x'";
        await sql`SELECT spock.repset_add_table('ins_upd', 't_pk', row_filter := ${builtIn})`;
        await sql`SELECT spock.repset_remove_table('ins_upd', 't_pk')`;
        await sql`DROP FUNCTION public.only_here(int)`;
      },
    );

    await t.step("synchronize_data queues Spock's TABLESYNC message for the set", async () => {
      await sql`SELECT spock.repset_add_table('ins_upd', '"MixedCase"', synchronize_data := true)`;
      const queued = await sql`SELECT role::text, replication_sets, message_type, message::text
      FROM spock.queue`;
      assert.deepEqual([...queued], [{
        role: "postgres",
        replication_sets: ["ins_upd"],
        message_type: "A",
        message: '{"schema_name": "public","table_name": "MixedCase"}',
      }]);
    });

    await t.step(
      "partitions: parent and partitions join sets, leaves join publications",
      async () => {
        await sql`SELECT spock.repset_add_table('default', 'parted', columns := '{id,region}',
      row_filter := 'v > 0', synchronize_data := true)`;
        assert.deepEqual(await members("default"), [
          '"MixedCase"',
          "parted",
          "parted_eu",
          "parted_us",
          "t_pk",
        ]);
        const pub = await published("spock_default");
        assert.deepEqual(pub.filter((p) => p.tablename.startsWith("parted")), [
          { tablename: "parted_eu", attnames: ["id", "region"], rowfilter: null },
          { tablename: "parted_us", attnames: ["id", "region"], rowfilter: null },
        ]);
        const [sync] =
          await sql`SELECT count(*)::int AS n FROM spock.queue WHERE message::text LIKE '%parted%'`;
        assert.equal(sync.n, 1, "only the parent is queued");
        const [removed] =
          await sql`SELECT spock.repset_remove_partition('parted', 'parted_us') AS n`;
        assert.equal(removed.n, 1);
        await sql`CREATE TABLE parted_ap PARTITION OF parted FOR VALUES IN ('ap')`;
        const [added] = await sql`SELECT spock.repset_add_partition('parted') AS n`;
        assert.equal(added.n, 2);
        const [copied] =
          await sql`SELECT set_att_list, set_row_filter FROM spock.replication_set_table
      WHERE set_reloid = 'parted_ap'::regclass`;
        assert.deepEqual({ ...copied }, {
          set_att_list: ["id", "region"],
          set_row_filter: "(v > 0)",
        });
        const [none] = await sql`SELECT spock.repset_add_partition('t_pk') AS n`;
        assert.equal(none.n, 0);
        await sql`SELECT spock.repset_remove_table('default', 'parted')`;
        assert.deepEqual(await members("default"), ['"MixedCase"', "t_pk"]);
        assert.equal((await published("spock_default")).length, 2);
      },
    );

    await t.step(
      "repset_show_table() and table_data_filtered() serve the initial copy",
      async () => {
        await sql`SELECT spock.repset_add_table('ins_upd', 't_pk', columns := '{id,a}', row_filter := 'a = 1')`;
        const [shown] =
          await sql`SELECT * FROM spock.repset_show_table('t_pk', '{default,ins_upd}')`;
        assert.deepEqual({ ...shown, relid: undefined }, {
          relid: undefined,
          nspname: "public",
          relname: "t_pk",
          att_list: ["id", "a"],
          has_row_filter: true,
          relkind: "r",
          relispartition: false,
        });
        const rows = await sql`SELECT id FROM spock.table_data_filtered(NULL::t_pk, 't_pk',
      '{default,ins_upd}') ORDER BY id`;
        assert.deepEqual(rows.map((r) => r.id), [1, 2]);
        const unknown = await rejection(
          sql`SELECT * FROM spock.repset_show_table('t_pk', '{nope}')`,
        );
        assert.equal(unknown.message, "replication set nope not found");
      },
    );

    await t.step(
      "repset_add_all_tables() adds a schema's tables and rolls back on a bad one",
      async () => {
        await sql`SELECT spock.repset_add_all_tables('default', '{app}', true)`;
        assert.deepEqual(await members("default"), ['"MixedCase"', "app.a1", "app.a2", "t_pk"]);
        const missing = await rejection(
          sql`SELECT spock.repset_add_all_tables('default', '{nope}')`,
        );
        assert.equal(missing.message, 'schema "nope" does not exist');
        await sql`CREATE TABLE app.a3 (id int PRIMARY KEY); CREATE TABLE app.b_nopk (v int)`
          .simple();
        const nopk = await rejection(sql`SELECT spock.repset_add_all_tables('default', '{app}')`);
        assert.equal(nopk.message, "table b_nopk cannot be added to replication set default");
        assert.deepEqual(await members("default"), ['"MixedCase"', "app.a1", "app.a2", "t_pk"]);
      },
    );

    await t.step(
      "sequences join sets with their state and 'S' messages, not publications",
      async () => {
        await sql`SELECT nextval('app.s1')`;
        await sql`SELECT spock.repset_add_seq('default', 'app.s1', synchronize_data := true)`;
        const [state] = await sql`SELECT cache_size, last_value::int FROM spock.sequence_state`;
        assert.deepEqual({ ...state }, { cache_size: 1000, last_value: 1 });
        const [message] = await sql`SELECT message::text FROM spock.queue WHERE message_type = 'S'`;
        assert.equal(
          message.message,
          '{"schema_name": "app","sequence_name": "s1","last_value": "1"}',
        );
        await sql`SELECT spock.repset_add_all_seqs('ins_upd', '{app}')`;
        const [count] = await sql`SELECT count(*)::int AS n FROM spock.replication_set_seq`;
        assert.equal(count.n, 3);
        const notSeq = await rejection(sql`SELECT spock.repset_add_seq('ins_upd', 't_pk')`);
        assert.equal(notSeq.message, '"t_pk" is not a sequence');
        await sql`SELECT spock.repset_remove_seq('default', 'app.s1')`;
        await sql`SELECT spock.repset_remove_seq('ins_upd', 'app.s1')`;
        const [left] =
          await sql`SELECT array_agg(seqoid::regclass::text ORDER BY 1) AS s FROM spock.sequence_state`;
        assert.deepEqual(left.s, ["app.s2"]);
        const missing = await rejection(sql`SELECT spock.repset_remove_seq('ins_upd', 'app.s1')`);
        assert.match(missing.message, /^replication set sequence mapping \d+:\d+ not found$/);
      },
    );

    await t.step("dropping a table, sequence or listed column takes it out of sets", async () => {
      await sql`CREATE ROLE app LOGIN; GRANT CREATE ON SCHEMA public TO app`.simple();
      const app = cluster.connect({ user: "app" });
      await app`CREATE TABLE mine (id int)`;
      await app`DROP TABLE mine`;
      await app.end();
      await sql`DROP TABLE app.a1`;
      await sql`DROP SEQUENCE app.s2`;
      const used = await rejection(sql`ALTER TABLE t_pk DROP COLUMN a CASCADE`);
      assert.equal(
        used.message,
        "cannot drop column a of table public.t_pk because the row_filter of replication set ins_upd uses it",
      );
      await sql`UPDATE spock.replication_set_table SET set_row_filter = NULL`;
      await sql`ALTER TABLE t_pk DROP COLUMN a CASCADE`;
      assert.deepEqual(await members("default"), ['"MixedCase"', "app.a2", "t_pk"]);
      const [seqs] = await sql`SELECT (SELECT count(*) FROM spock.replication_set_seq)::int AS sets,
      (SELECT count(*) FROM spock.sequence_state)::int AS states`;
      assert.deepEqual({ ...seqs }, { sets: 0, states: 0 });
      const [list] = await sql`SELECT set_att_list FROM spock.replication_set_table r
      JOIN spock.replication_set s USING (set_id) WHERE s.set_name = 'ins_upd' AND set_reloid = 't_pk'::regclass`;
      assert.deepEqual(list.set_att_list, ["id"]);
      assert.deepEqual(await published("spock_ins_upd"), [
        { tablename: "MixedCase", attnames: ["id", "Val"], rowfilter: null },
        { tablename: "t_pk", attnames: ["id"], rowfilter: null },
      ]);
    });

    await t.step(
      "sync_seq() and sync_sequences() push sequences ahead by their cache, grown when used fast",
      async () => {
        await sql`CREATE SCHEMA seqs; CREATE SEQUENCE seqs.fast;
          CREATE SEQUENCE seqs.short MAXVALUE 1500; CREATE SEQUENCE seqs.down INCREMENT -1`
          .simple();
        await sql`SELECT spock.repset_add_all_seqs('default', '{seqs}')`;
        await sql`CREATE SEQUENCE seqs.loose`;
        await sql`INSERT INTO spock.sequence_state VALUES ('seqs.loose'::regclass, 1000, 0)`;
        const sync = async () => (await sql`SELECT spock.sync_sequences() AS n`)[0].n;
        const state = async (seq: string) => {
          const [row] = await sql`SELECT cache_size, last_value::int8::text AS buffered
            FROM spock.sequence_state WHERE seqoid = ${seq}::regclass`;
          return { ...row };
        };
        const lastQueued = async () => {
          const [row] = await sql`SELECT replication_sets, message::text FROM spock.queue
            WHERE message_type = 'S' ORDER BY queued_at DESC LIMIT 1`;
          return { ...row };
        };
        // Ascending sequences of local sets only: fast and short, not down or loose.
        assert.equal(await sync(), 2);
        assert.deepEqual(await state("seqs.fast"), { cache_size: 1000, buffered: "1001" });
        assert.deepEqual(await state("seqs.short"), { cache_size: 1000, buffered: "1001" });
        assert.deepEqual(await state("seqs.loose"), { cache_size: 1000, buffered: "0" });
        assert.equal(await sync(), 0, "each still half a cache ahead");
        // Within half a cache of the value pushed: pushed again, same cache.
        await sql`SELECT setval('seqs.fast', 600)`;
        assert.equal(await sync(), 1);
        assert.deepEqual(await state("seqs.fast"), { cache_size: 1000, buffered: "1600" });
        assert.deepEqual(await lastQueued(), {
          replication_sets: ["default"],
          message: '{"schema_name": "seqs","sequence_name": "fast","last_value": "1600"}',
        });
        // A whole cache past the value pushed: the cache doubles, up to 1,000,000.
        await sql`SELECT setval('seqs.fast', 2600)`;
        assert.equal(await sync(), 1);
        assert.deepEqual(await state("seqs.fast"), { cache_size: 2000, buffered: "4600" });
        await sql`UPDATE spock.sequence_state SET cache_size = 800000
          WHERE seqoid = 'seqs.fast'::regclass`;
        await sql`SELECT setval('seqs.fast', 804600)`;
        assert.equal(await sync(), 1);
        assert.deepEqual(await state("seqs.fast"), { cache_size: 1000000, buffered: "1804600" });
        // No further than MAXVALUE, and no push once there.
        await sql`SELECT setval('seqs.short', 1200)`;
        assert.equal(await sync(), 1);
        assert.deepEqual(await state("seqs.short"), { cache_size: 1000, buffered: "1500" });
        await sql`SELECT setval('seqs.short', 1499)`;
        assert.equal(await sync(), 0);

        // Two callers take turns: the second waits for the first's rows, then
        // finds them pushed.
        await sql`SELECT setval('seqs.fast', 1804599)`;
        const other = cluster.connect({ max: 2 }); // the second caller, and a watcher
        let second: Promise<number> | undefined;
        await sql.begin(async (tx) => {
          assert.equal((await tx`SELECT spock.sync_sequences() AS n`)[0].n, 1);
          second = other`SELECT spock.sync_sequences() AS n`.then((rows) => rows[0].n);
          await pollUntil(async () => {
            const rows = await other`SELECT 1 FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE '%sync_sequences%'`;
            return rows.length > 0 || undefined;
          }, { what: "the second sync_sequences() waiting for the first" });
        });
        assert.equal(await second, 0);
        await other.end();

        // sync_seq() pushes one sequence at its cache, whatever its distance.
        await sql`SELECT setval('seqs.short', 10)`;
        await sql`SELECT spock.sync_seq('seqs.short')`;
        assert.deepEqual(await state("seqs.short"), { cache_size: 1000, buffered: "1010" });
        assert.deepEqual(await lastQueued(), {
          replication_sets: ["default"],
          message: '{"schema_name": "seqs","sequence_name": "short","last_value": "1010"}',
        });
        const notReplicated = await rejection(sql`SELECT spock.sync_seq('app.s1')`);
        assert.equal(notReplicated.message, '"s1" is not a replicated sequence');
        const notSequence = await rejection(sql`SELECT spock.sync_seq('t_pk')`);
        assert.equal(notSequence.message, '"t_pk" is not a sequence');

        // A value another node pushed here is not this node's use: it is not
        // pushed back (two nodes replicating one sequence would push each
        // other ever further, a cache at a time).
        await sync();
        assert.equal(await sync(), 0);
        await sql`SELECT spock._apply_queued_sequence(
          '{"schema_name": "seqs", "sequence_name": "fast", "last_value": "5000000"}')`;
        assert.equal((await sql`SELECT last_value::text AS v FROM seqs.fast`)[0].v, "5000000");
        assert.equal(await sync(), 0);
        await sql`DROP SCHEMA seqs CASCADE`;
      },
    );

    await t.step("every change is announced on the spock_catalog channel", async () => {
      const listener = cluster.connect();
      const heard: unknown[] = [];
      await listener.listen("spock_catalog", (payload) => heard.push(JSON.parse(payload)));
      await sql`SELECT spock.repset_add_table('ins_upd', 'x', row_filter := '"val" IS NOT NULL')`;
      await pollUntil(() => heard.length > 0, { what: "the notification" });
      assert.deepEqual(heard, [{
        object: "replication_set",
        name: "ins_upd",
        action: "add_table",
      }]);
      await listener.end();
    });

    await t.step("repset_drop() drops the set, its memberships and its publication", async () => {
      const [dropped] = await sql`SELECT spock.repset_drop('ins_upd') AS ok`;
      assert.equal(dropped.ok, true);
      const [gone] = await sql`SELECT
      (SELECT count(*) FROM pg_publication WHERE pubname = 'spock_ins_upd')::int AS pubs,
      (SELECT count(*) FROM spock.replication_set_table WHERE set_id = ${
        spockPairId(n1, "ins_upd")
      })::int AS rels`;
      assert.deepEqual({ ...gone }, { pubs: 0, rels: 0 });
      const [again] = await sql`SELECT spock.repset_drop('ins_upd', true) AS ok`;
      assert.equal(again.ok, false);
      const unknown = await rejection(sql`SELECT spock.repset_drop('ins_upd')`);
      assert.equal(unknown.message, "replication set ins_upd not found");
    });

    await t.step(
      "uninstallCatalog() removes the sets' publications and the drop trigger",
      async () => {
        const result = await uninstallCatalog(sql);
        assert.equal(result.removed, true);
        assert.equal(await installedVersion(sql), null);
        const [left] = await sql`SELECT (SELECT count(*) FROM pg_publication)::int AS pubs,
        (SELECT count(*) FROM pg_event_trigger)::int AS triggers`;
        assert.deepEqual({ ...left }, { pubs: 0, triggers: 0 });
      },
    );
  },
);
