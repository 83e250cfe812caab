/**
 * The node functions of the SQL API (mod/catalog/sql/api/06_node.sql) against real
 * servers: ids as Spock computes them, the default sets and their
 * publications, Spock's error texts, and calls that fail changing nothing.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  hashBytes,
  installedDatabase,
  nodeDatabase,
  rejection,
  spockNodeId,
  spockPairId,
} from "./_node_fixture.ts";

pgTest("node functions create, describe and drop nodes as Spock does", async (t, cluster) => {
  const sql = await installedDatabase(cluster, "postgres");
  const n1 = spockNodeId("n1");

  await t.step("the hand computation of ids agrees with hashtext()", async () => {
    const [row] = await sql`SELECT hashtext('default_insert_only') AS h,
      spock._pair_id(${n1}, 'default')::bigint AS pair`;
    assert.equal(hashBytes(new TextEncoder().encode("default_insert_only")) | 0, row.h);
    assert.equal(Number(row.pair), spockPairId(n1, "default"));
  });

  await t.step("node_info() refuses before a node exists", async () => {
    const error = await rejection(sql`SELECT * FROM spock.node_info()`);
    assert.equal(error.message, "local spock node not found");
    const create = await rejection(sql`SELECT spock.repset_create('s')`);
    assert.equal(create.message, "current database is not configured as spock node");
    assert.equal(create.hint, "create spock node first");
  });

  await t.step("node_create() returns NULL when node_name or dsn is NULL", async () => {
    const [row] = await sql`SELECT spock.node_create(NULL, 'host=x') AS a,
      spock.node_create('n1', NULL) AS b`;
    assert.deepEqual([row.a, row.b], [null, null]);
    const [count] = await sql`SELECT count(*)::int AS n FROM spock.node`;
    assert.equal(count.n, 0);
  });

  await t.step(
    "node_create() creates the node, its interface, the default sets and their publications",
    async () => {
      const [created] = await sql`SELECT spock.node_create(node_name := 'n1',
        dsn := ${cluster.dsn()}, location := 'Paris', country := 'FR',
        info := '{"tiebreaker": 7}')::bigint AS id`;
      assert.equal(Number(created.id), n1);
      const [node] = await sql`SELECT node_id::bigint, node_name::text, location, country, info
        FROM spock.node`;
      assert.deepEqual({ ...node, node_id: Number(node.node_id) }, {
        node_id: n1,
        node_name: "n1",
        location: "Paris",
        country: "FR",
        info: { tiebreaker: 7 },
      });
      const [iface] =
        await sql`SELECT if_id::bigint, if_name::text, if_dsn FROM spock.node_interface`;
      assert.deepEqual([Number(iface.if_id), iface.if_name, iface.if_dsn], [
        spockPairId(n1, "n1"),
        "n1",
        cluster.dsn(),
      ]);
      const [local] = await sql`SELECT node_id::bigint, node_local_interface::bigint
        FROM spock.local_node`;
      assert.deepEqual([Number(local.node_id), Number(local.node_local_interface)], [
        n1,
        spockPairId(n1, "n1"),
      ]);
      const sets = await sql`SELECT s.set_id::bigint, s.set_name::text, replicate_insert AS i,
          replicate_update AS u, replicate_delete AS d, replicate_truncate AS t, p.pubname::text,
          pp.pubinsert, pp.pubupdate, pp.pubdelete, pp.pubtruncate
        FROM spock.replication_set s JOIN spock._set_publication p USING (set_id)
        JOIN pg_publication pp ON pp.pubname = p.pubname ORDER BY s.set_name`;
      assert.deepEqual(
        sets.map((s) => [Number(s.set_id), s.set_name, s.i, s.u, s.d, s.t, s.pubname]),
        [
          [spockPairId(n1, "ddl_sql"), "ddl_sql", true, false, false, false, "spock_ddl_sql"],
          [spockPairId(n1, "default"), "default", true, true, true, true, "spock_default"],
          [
            spockPairId(n1, "default_insert_only"),
            "default_insert_only",
            true,
            false,
            false,
            true,
            "spock_default_insert_only",
          ],
        ],
      );
      for (const s of sets) {
        assert.deepEqual([s.pubinsert, s.pubupdate, s.pubdelete, s.pubtruncate], [
          s.i,
          s.u,
          s.d,
          s.t,
        ]);
      }
    },
  );

  await t.step("node_info() describes the local node as a provider reports it", async () => {
    const [info] = await sql`SELECT * FROM spock.node_info()`;
    const [control] = await sql`SELECT system_identifier::text AS sysid FROM pg_control_system()`;
    assert.deepEqual({ ...info, node_id: Number(info.node_id) }, {
      node_id: n1,
      node_name: "n1",
      sysid: control.sysid,
      dbname: "postgres",
      // quote_ident(), as Spock's quote_identifier(): DEFAULT is a reserved word
      replication_sets: '"default",default_insert_only,ddl_sql',
      location: "Paris",
      country: "FR",
      info: { tiebreaker: 7 },
    });
  });

  await t.step("node_create() refuses a second node and changes nothing", async () => {
    const before = await sql`SELECT (SELECT count(*) FROM spock.node)::int AS nodes,
      (SELECT count(*) FROM pg_publication)::int AS pubs`;
    const same = await rejection(sql`SELECT spock.node_create('n1', 'host=elsewhere')`);
    assert.equal(same.message, "node n1 already exists");
    const other = await rejection(sql`SELECT spock.node_create('n2', 'host=elsewhere')`);
    assert.equal(other.message, "current database is already configured as spock node");
    const after = await sql`SELECT (SELECT count(*) FROM spock.node)::int AS nodes,
      (SELECT count(*) FROM pg_publication)::int AS pubs`;
    assert.deepEqual(after, before);
  });

  await t.step("node_add_interface() and node_drop_interface() manage interfaces", async () => {
    const [added] =
      await sql`SELECT spock.node_add_interface('n1', 'backup', 'host=b')::bigint AS id`;
    assert.equal(Number(added.id), spockPairId(n1, "backup"));
    const duplicate = await rejection(
      sql`SELECT spock.node_add_interface('n1', 'backup', 'host=c')`,
    );
    assert.equal(duplicate.message, 'node "n1" already has interface named "backup"');
    const unknown = await rejection(sql`SELECT spock.node_add_interface('nx', 'i', 'host=c')`);
    assert.equal(unknown.message, 'node "nx" not found');
    const missing = await rejection(sql`SELECT spock.node_drop_interface('n1', 'nope')`);
    assert.equal(missing.message, 'interface "nope" for node node "n1" not found');
    const own = await rejection(sql`SELECT spock.node_drop_interface('n1', 'n1')`);
    assert.match(own.message, /cannot drop interface "n1" for node "n1"/);
    const [dropped] = await sql`SELECT spock.node_drop_interface('n1', 'backup') AS ok`;
    assert.equal(dropped.ok, true);
    const [strict] = await sql`SELECT spock.node_add_interface('n1', NULL, 'x') AS id`;
    assert.equal(strict.id, null);
  });

  await t.step(
    "node_drop() and node_drop_interface() refuse while a subscription uses the node",
    async () => {
      const remote = spockNodeId("provider");
      await sql`INSERT INTO spock.node (node_id, node_name) VALUES (${remote}, 'provider')`;
      await sql`INSERT INTO spock.node_interface VALUES (${spockPairId(remote, "provider")},
      'provider', ${remote}, 'host=p')`;
      await sql`INSERT INTO spock.subscription (sub_id, sub_name, sub_origin, sub_target,
        sub_origin_if, sub_target_if, sub_slot_name)
      VALUES (1, 'sub1', ${remote}, ${n1}, ${spockPairId(remote, "provider")},
        ${spockPairId(n1, "n1")}, 'spk_postgres_provider_sub1')`;
      const iface = await rejection(sql`SELECT spock.node_drop_interface('provider', 'provider')`);
      assert.equal(
        iface.message,
        'cannot drop interface "provider" for node "provider" because subscription "sub1" is using it',
      );
      const drop = await rejection(sql`SELECT spock.node_drop('provider')`);
      assert.equal(
        drop.message,
        'cannot drop node "provider" because it still has subscriptions associated with it',
      );
      assert.equal(drop.hint, "drop the subscriptions first");
      await sql`DELETE FROM spock.subscription`;
      const [ok] = await sql`SELECT spock.node_drop('provider') AS dropped`;
      assert.equal(ok.dropped, true);
    },
  );

  await t.step(
    "node_drop() drops the local node, its sets, publications and spock slots",
    async () => {
      await sql`SELECT pg_create_logical_replication_slot('spk_postgres_n9_sub', 'pgoutput')`;
      await sql`SELECT pg_create_logical_replication_slot('other_slot', 'pgoutput')`;
      const [dropped] = await sql`SELECT spock.node_drop('n1') AS ok`;
      assert.equal(dropped.ok, true);
      const rest = await sql`SELECT (SELECT count(*) FROM spock.node)::int AS nodes,
      (SELECT count(*) FROM spock.local_node)::int AS local,
      (SELECT count(*) FROM spock.replication_set)::int AS sets,
      (SELECT count(*) FROM spock.node_interface)::int AS ifs,
      (SELECT count(*) FROM pg_publication)::int AS pubs,
      (SELECT array_agg(slot_name::text) FROM pg_replication_slots) AS slots`;
      assert.deepEqual([...rest], [{
        nodes: 0,
        local: 0,
        sets: 0,
        ifs: 0,
        pubs: 0,
        slots: ["other_slot"],
      }]);
      const [again] = await sql`SELECT spock.node_drop('n1', ifexists := true) AS ok`;
      assert.equal(again.ok, false);
      const unknown = await rejection(sql`SELECT spock.node_drop('n1')`);
      assert.equal(unknown.message, "node n1 not found");
    },
  );

  await t.step("node_create() takes odd names literally in a second database", async () => {
    const db2 = await nodeDatabase(cluster, "db2", "'); DROP TABLE x; --");
    await db2`CREATE TABLE x (id int PRIMARY KEY)`;
    await db2`SELECT spock.node_add_interface(${"'); DROP TABLE x; --"}, 'Ünï "if"', 'host=z')`;
    const [info] = await db2`SELECT node_id::bigint, node_name, dbname FROM spock.node_info()`;
    assert.deepEqual([Number(info.node_id), info.node_name, info.dbname], [
      spockNodeId("'); DROP TABLE x; --"),
      "'); DROP TABLE x; --",
      "db2",
    ]);
    const [x] = await db2`SELECT to_regclass('x') IS NOT NULL AS present`;
    assert.equal(x.present, true);
  });
});
