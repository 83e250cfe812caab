/**
 * Upgrading the catalog from every earlier version to the current one, with
 * rows in every catalog table: nothing is lost (each table's rows, over the
 * columns it had, are the same after), the API is this program's, and
 * objects an older version made are brought up to date (the tombstone
 * trigger of catalog version 3 on a table that was already in a set).
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { pgTest } from "../_harness/mod.ts";
import {
  CATALOG_VERSION,
  catalogMismatch,
  installCatalog,
  installedVersion,
} from "../../mod/catalog/mod.ts";
import { quoteIdent } from "../../mod/pg/mod.ts";

/** Rows for the tables each catalog version added, with that version's columns only. */
const FIXTURES: Record<number, string> = {
  1: `
    INSERT INTO spock.node VALUES (1, 'n1', 'Prague', 'cz', '{"a": 1}'), (2, 'n2', NULL, NULL, NULL);
    INSERT INTO spock.node_interface VALUES (11, 'n1', 1, 'host=a dbname=x'),
      (12, 'n2', 2, 'host=b dbname=y');
    INSERT INTO spock.local_node VALUES (1, 11);
    INSERT INTO spock.subscription (sub_id, sub_name, sub_origin, sub_target, sub_origin_if,
      sub_target_if, sub_enabled, sub_slot_name, sub_replication_sets, sub_forward_origins,
      sub_apply_delay, sub_force_text_transfer, sub_skip_lsn)
    VALUES (21, 'sub1', 2, 1, 12, 11, false, 'spk_x_n2_sub1', '{default}', '{}', '1 min', false,
      '0/10');
    INSERT INTO spock.local_sync_status VALUES ('d', 21, NULL, NULL, 'r', '0/20'),
      ('d', 21, 'public', 't', 'r', '0/20');
    INSERT INTO spock.exception_log VALUES (2, '2026-01-01 10:00+00', 1, '2026-01-02 10:00+00',
      77, NULL, NULL, 'public', 't', 'INSERT', NULL, NULL, '{"id": 1}', NULL, NULL, 'boom');
    INSERT INTO spock.exception_status VALUES (2, '2026-01-01 10:00+00', '2026-01-02 10:00+00',
      77, 'pending', NULL, NULL);
    INSERT INTO spock.exception_status_detail VALUES (2, '2026-01-01 10:00+00', 1,
      '2026-01-02 10:00+00', 77, 'pending', NULL, NULL);
    INSERT INTO spock.progress VALUES (1, 2, '2026-01-01 10:00+00', '0/30', '0/40',
      '2026-01-01 10:00+00', true);
    INSERT INTO spock.replication_set VALUES (31, 1, 'default', true, true, true, true);
    INSERT INTO spock.replication_set_table VALUES (31, 'public.t', '{id,v}', 'id > 0');
    INSERT INTO spock.replication_set_seq VALUES (31, 'public.s');
    INSERT INTO spock.sequence_state VALUES ('public.s'::regclass::oid, 1000, 5);
    INSERT INTO spock.depend VALUES (1259, 'public.t'::regclass, 0, 1259, 'public.t'::regclass, 0,
      'n');
    INSERT INTO spock.pii (pii_schema, pii_table, pii_column) VALUES ('public', 't', 'v');
    INSERT INTO spock.resolutions (node_name, log_time, relname, conflict_type,
      conflict_resolution, remote_xid) VALUES ('n1', '2026-01-01 10:00+00', 'public.t',
      'insert_exists', 'apply_remote', '123');
    INSERT INTO spock.queue VALUES ('2026-01-01 10:00+00', 'postgres', '{default}', 'Q',
      '"select 1"');`,
  2: `
    INSERT INTO spock._apply_worker (sub_id, daemon, pid, state) VALUES (21, 'host:1', 123,
      'streaming');
    INSERT INTO spock._set_publication VALUES (31, 'spock_default');`,
  3: `
    INSERT INTO spock._sub_option VALUES (21, '{"conflict_resolution": "last_update_wins"}');
    INSERT INTO spock._delta_apply VALUES ('public', 't', 'n');
    INSERT INTO spock._channel_stats (sub_id, nspname, relname, n_tup_ins, n_tup_upd,
      confl_insert_exists) VALUES (21, 'public', 't', 5, 3, 1);
    INSERT INTO spock._tombstone VALUES ('public', 't', '{"id": 9}', '2026-01-01 10:00+00', NULL);`,
  4: `
    INSERT INTO spock._sub_error (sub_id, error_message, sqlstate, remote_lsn) VALUES (21, 'err',
      'XX000', '0/50');
    INSERT INTO spock._sub_filter_state VALUES (21, '{}');
    INSERT INTO spock._channel (sets) VALUES ('{default}');
    INSERT INTO spock._channel_publication SELECT channel_id, 31, 'spock_ch1_x' FROM spock._channel;
    INSERT INTO spock._sub_channel (sub_id, sets, publications, valid_from) VALUES (21,
      '{default}', '{spock_ch1_x}', '0/60');`,
  6: `
    INSERT INTO spock._setting_default (name, value) VALUES ('spock.enable_ddl_replication', 'on');`,
};

/** Each spock table (but `_catalog`) with its columns, row count and an md5 of its rows. */
async function snapshot(
  sql: postgres.Sql,
  columns?: Map<string, string[]>,
): Promise<Map<string, { columns: string[]; rows: number; digest: string }>> {
  const tables = columns ?? new Map(
    (await sql`select c.relname::text as name,
        array_agg(a.attname::text order by a.attnum) as columns
      from pg_class c join pg_attribute a on a.attrelid = c.oid
      where c.relnamespace = 'spock'::regnamespace and c.relkind = 'r'
        and c.relname <> '_catalog' and a.attnum > 0 and not a.attisdropped
      group by c.relname`).map((row) => [row.name as string, row.columns as string[]]),
  );
  const result = new Map<string, { columns: string[]; rows: number; digest: string }>();
  for (const [table, names] of tables) {
    const [row] = await sql.unsafe(
      `select count(*)::int as rows,
         md5(coalesce(string_agg(x::text, E'\\n' order by x::text), '')) as digest
       from (select ${names.map(quoteIdent).join(", ")} from spock.${quoteIdent(table)}) x`,
    );
    result.set(table, { columns: names, rows: row.rows, digest: row.digest });
  }
  return result;
}

for (let from = 1; from < CATALOG_VERSION; from++) {
  pgTest(
    `installCatalog() upgrades catalog version ${from} with rows in every table, losing nothing`,
    async (_t, cluster) => {
      const sql = cluster.connect();
      await sql.unsafe(`
        create table public.t (id int primary key, v text, n int);
        create sequence public.s;
      `);
      await installCatalog(sql, { programVersion: "old", targetVersion: from });
      for (let version = 1; version <= from; version++) {
        if (FIXTURES[version] !== undefined) await sql.unsafe(FIXTURES[version]);
      }
      const before = await snapshot(sql);
      for (const [table, { rows }] of before) {
        assert.ok(rows > 0, `spock.${table} has rows before the upgrade (a fixture is missing)`);
      }

      const result = await installCatalog(sql, { programVersion: "new" });
      assert.deepEqual([result.from, result.to, result.changed], [from, CATALOG_VERSION, true]);
      assert.equal(await installedVersion(sql), CATALOG_VERSION);
      const after = await snapshot(
        sql,
        new Map([...before].map(([table, { columns }]) => [table, columns])),
      );
      assert.deepEqual(after, before, "every row of every table is kept");
      assert.equal(await catalogMismatch(sql), undefined, "the API is this program's");

      const [trigger] = await sql`select count(*)::int as n from pg_trigger
        where tgrelid = 'public.t'::regclass and tgname = 'spock_tombstone'`;
      assert.equal(trigger.n, 1, "a table already in a set has its tombstone trigger");
      await sql`insert into public.t values (7, 'x', 1)`;
      await sql`delete from public.t where id = 7`;
      const [tombstone] = await sql`select count(*)::int as n from spock._tombstone
        where relname = 't' and key = '{"id": 7}'`;
      assert.equal(tombstone.n, 1, "a local delete leaves its tombstone");
    },
  );
}
