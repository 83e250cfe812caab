/**
 * Hostile names end to end: databases, nodes, a replication set, a schema,
 * a table and a column named with quotes, semicolons, comment markers,
 * unicode and the full 63 bytes, and a row filter with a quoted literal that
 * reads like an injection. Everything goes through the SQL API, the CLI and
 * the daemon, replicates as named, and nothing else runs: a `victim` table
 * survives on both nodes. A subscription name outside Spock's rule is
 * refused with the rule, a name over 63 bytes by the CLI.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type Cluster, pgTest, runSpock } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import { runDaemon, type TestNode, waitForRow, waitForSync } from "./_mesh.ts";

/** Pads `name` with `x` to exactly 63 bytes (PostgreSQL's identifier limit). */
function full(name: string): string {
  const bytes = new TextEncoder().encode(name).length;
  assert.ok(bytes <= 63, `${name} is already ${bytes} bytes`);
  return name + "x".repeat(63 - bytes);
}

const INJECTION = "'; drop table victim; --";
const DATABASES = { provider: `hp'; ü "db"`, subscriber: `hs$$ 🚀; x` };
const NODES = { provider: `prov${INJECTION}`, subscriber: full(`sübscriber "x" 🚀 ;`) };
const SET = full(`set"; select pg_sleep(30); --`);
/** Subscription names are Spock's: lower case letters, digits and `_` only. */
const REFUSED_SUBSCRIPTION = `sub'$$"${INJECTION}`;
const SUBSCRIPTION = full("sub_of_the_longest_name_");
const SCHEMA = `s'"; ü`;
const TABLE = full(`T"; drop table victim; --`);
const COLUMN = `v "'; 1`;
const SKIPPED = `skip${INJECTION}`;

/** A quoted identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A quoted libpq key=value value. */
function dsnValue(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

const QUALIFIED = `${ident(SCHEMA)}.${ident(TABLE)}`;
const ROW_FILTER = `${ident(COLUMN)} <> '${SKIPPED.replaceAll("'", "''")}'`;

async function hostileNode(cluster: Cluster, database: string, name: string): Promise<TestNode> {
  const admin = cluster.connect();
  await admin.unsafe(`create database ${ident(database)}`);
  await admin.end();
  const sql = cluster.connect({ database, max: 3 });
  await installCatalog(sql, { programVersion: "test" });
  const dsn = `host=${cluster.host} port=${cluster.port} dbname=${
    dsnValue(database)
  } user=postgres`;
  await sql`select spock.node_create(${name}, ${dsn})`;
  await sql.unsafe(`create table victim (k int);
    create schema ${ident(SCHEMA)};
    create table ${QUALIFIED} (k int primary key, ${ident(COLUMN)} text)`);
  return { name, dsn, sql };
}

async function victimsLeft(nodes: TestNode[]): Promise<boolean[]> {
  return await Promise.all(nodes.map(async (node) => {
    const [row] = await node.sql`select to_regclass('public.victim') is not null as present`;
    return row.present;
  }));
}

async function rowsOf(sql: postgres.Sql): Promise<Array<{ k: number; v: string }>> {
  const rows = await sql.unsafe(`select k, ${ident(COLUMN)} as v from ${QUALIFIED} order by k`);
  return rows.map(({ k, v }) => ({ k, v }));
}

pgTest("hostile names go through the SQL API, the CLI and the daemon as names", async (
  t,
  cluster,
) => {
  const provider = await hostileNode(cluster, DATABASES.provider, NODES.provider);
  const subscriber = await hostileNode(cluster, DATABASES.subscriber, NODES.subscriber);
  const nodes = [provider, subscriber];
  await provider.sql.unsafe(
    `insert into ${QUALIFIED} values (1, 'before'), (2, '${SKIPPED.replaceAll("'", "''")}')`,
  );
  const daemon = runDaemon([subscriber]);
  try {
    await t.step("sets, tables and row filters by the SQL API", async () => {
      await provider.sql`select spock.repset_create(${SET})`;
      const [added] = await provider.sql`select spock.repset_add_table(${SET},
        ${QUALIFIED}::regclass, synchronize_data := true, row_filter := ${ROW_FILTER}) as ok`;
      assert.equal(added.ok, true);
      const [shown] = await provider.sql`select nspname, relname, has_row_filter
        from spock.repset_show_table(${QUALIFIED}::regclass, array[${SET}])`;
      assert.deepEqual(shown, { nspname: SCHEMA, relname: TABLE, has_row_filter: true });
    });

    await t.step("a subscription: initial copy and streaming, filtered as written", async () => {
      await assert.rejects(
        subscriber.sql`select spock.sub_create(${REFUSED_SUBSCRIPTION}, ${provider.dsn})`,
        /subscription name .* contains invalid character/,
      );
      await subscriber.sql`select spock.sub_create(${SUBSCRIPTION}, ${provider.dsn},
        replication_sets := array[${SET}], synchronize_data := true)`;
      await waitForSync(subscriber, SUBSCRIPTION);
      await provider.sql.unsafe(
        `insert into ${QUALIFIED} values (3, 'after'), (4, '${SKIPPED.replaceAll("'", "''")}');
         update ${QUALIFIED} set ${ident(COLUMN)} = 'updated ü' where k = 1`,
      );
      await waitForRow(subscriber, QUALIFIED, "k", 3);
      assert.deepEqual(await rowsOf(subscriber.sql), [
        { k: 1, v: "updated ü" },
        { k: 3, v: "after" },
      ]);
      const [status] = await subscriber.sql`select subscription_name, provider_node, slot_name,
        replication_sets from spock.sub_show_status(${SUBSCRIPTION})`;
      assert.equal(status.subscription_name, SUBSCRIPTION);
      assert.equal(status.provider_node, NODES.provider);
      assert.deepEqual(status.replication_sets, [SET]);
      assert.match(status.slot_name, /^spk_[a-z0-9_]{1,59}$/);
    });

    await t.step("the CLI takes the names as arguments, never as SQL", async () => {
      for (const command of ["disable", "enable"]) {
        const result = await runSpock([
          "sub",
          command,
          "--dsn",
          subscriber.dsn,
          "--subscription-name",
          SUBSCRIPTION,
          "--immediate",
        ]);
        assert.equal(result.code, 0, result.stderr);
      }
      const listed = await runSpock(["sub", "show-status", "--dsn", subscriber.dsn, "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok(listed.stdout.includes(JSON.stringify(SUBSCRIPTION)), listed.stdout);
      await provider.sql.unsafe(`insert into ${QUALIFIED} values (5, 'after the CLI')`);
      await waitForRow(subscriber, QUALIFIED, "k", 5);
    });

    await t.step("a name over 63 bytes: the CLI refuses it, the server cuts it", async () => {
      const tooLong = `${SUBSCRIPTION}y`;
      const cli = await runSpock([
        "sub",
        "create",
        "--dsn",
        subscriber.dsn,
        "--subscription-name",
        tooLong,
        "--provider-dsn",
        provider.dsn,
      ]);
      assert.notEqual(cli.code, 0);
      assert.match(cli.stderr, /subscription-name.*64 bytes long; PostgreSQL names are at most 63/);
      // PostgreSQL cuts a name argument to 63 bytes: here that is the existing subscription.
      await assert.rejects(
        subscriber.sql`select spock.sub_create(${tooLong}, ${provider.dsn})`,
        /already exists/,
      );
      const [count] = await subscriber.sql`select count(*)::int as n from spock.subscription`;
      assert.equal(count.n, 1);
    });

    await t.step("drops by name clean up slots and origins", async () => {
      const [{ slot }] = await subscriber.sql`select sub_slot_name::text as slot
        from spock.subscription where sub_name = ${SUBSCRIPTION}`;
      await subscriber.sql`select spock.sub_drop(${SUBSCRIPTION})`;
      const [left] = await provider.sql`select count(*)::int as n from pg_replication_slots
        where slot_name = ${slot}`;
      assert.equal(left.n, 0, "the provider's slot is dropped");
      assert.equal(
        (await provider.sql`select spock.repset_remove_table(${SET}, ${QUALIFIED}::regclass)
          as ok`)[0].ok,
        true,
      );
      assert.equal((await provider.sql`select spock.repset_drop(${SET}) as ok`)[0].ok, true);
      for (const node of nodes) {
        assert.equal((await node.sql`select spock.node_drop(${node.name}) as ok`)[0].ok, true);
      }
    });
    assert.deepEqual(await victimsLeft(nodes), [true, true]);
  } finally {
    await daemon.stop();
    await Promise.all(nodes.map((node) => node.sql.end({ timeout: 2 })));
  }
});
