/**
 * How the table-driven management commands call SQL, checked against stub
 * functions with Spock's signatures that record their arguments: named
 * arguments, only those given (SQL defaults apply), --x/--no-x booleans,
 * lists, values that arrive verbatim as bind parameters (injection attempts
 * included), server errors exiting 1, and `sub create` asking the provider.
 */
import assert from "node:assert/strict";
import { pgTest, runSpock } from "../_harness/mod.ts";
import { API_SOURCE_HASH, CATALOG_VERSION, liveApiChecksum } from "../../mod/catalog/mod.ts";

const STUBS = String.raw`
CREATE SCHEMA spock;
CREATE TABLE spock.calls (id serial, fn text, args jsonb);
CREATE TABLE public.victim (id int PRIMARY KEY);
CREATE TABLE public."Mixed Case ü" (id int PRIMARY KEY);
CREATE FUNCTION spock.repset_add_table(set_name name, relation regclass,
  synchronize_data boolean DEFAULT false, columns text[] DEFAULT NULL,
  row_filter text DEFAULT NULL, include_partitions boolean DEFAULT true)
RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO spock.calls (fn, args) VALUES ('repset_add_table', jsonb_build_object(
    'set_name', set_name, 'relation', relation::text, 'synchronize_data', synchronize_data,
    'columns', columns, 'row_filter', row_filter, 'include_partitions', include_partitions));
  RETURN true;
END $$;
CREATE FUNCTION spock.repset_alter(set_name name, replicate_insert boolean DEFAULT NULL,
  replicate_update boolean DEFAULT NULL, replicate_delete boolean DEFAULT NULL,
  replicate_truncate boolean DEFAULT NULL)
RETURNS oid LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO spock.calls (fn, args) VALUES ('repset_alter', jsonb_build_object(
    'set_name', set_name, 'replicate_insert', replicate_insert, 'replicate_update',
    replicate_update, 'replicate_delete', replicate_delete, 'replicate_truncate', replicate_truncate));
  RETURN 4242;
END $$;
CREATE FUNCTION spock.node_create(node_name name, dsn text, location text DEFAULT NULL,
  country text DEFAULT NULL, info jsonb DEFAULT NULL)
RETURNS oid LANGUAGE plpgsql AS $$ BEGIN
  RAISE EXCEPTION 'node % already exists', node_name USING HINT = 'pick another name';
END $$;
CREATE FUNCTION spock.sub_show_status(subscription_name name DEFAULT NULL,
  OUT subscription_name text, OUT status text, OUT provider_node text, OUT provider_dsn text,
  OUT slot_name text, OUT replication_sets text[], OUT forward_origins text[])
RETURNS SETOF record LANGUAGE sql AS $$
  SELECT 'sub1', 'down', 'n1', 'host=h password=hunter2', 'spk_x', '{default}'::text[], '{}'::text[]
$$;
CREATE FUNCTION spock._sub_create_local(subscription_name name, provider_dsn text,
  provider_node_id oid, provider_node_name name,
  replication_sets text[] DEFAULT '{default,default_insert_only,ddl_sql}',
  synchronize_structure boolean DEFAULT false, synchronize_data boolean DEFAULT false,
  forward_origins text[] DEFAULT '{}', apply_delay interval DEFAULT '0',
  force_text_transfer boolean DEFAULT false, enabled boolean DEFAULT true,
  skip_schema text[] DEFAULT '{}')
RETURNS oid LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO spock.calls (fn, args) VALUES ('_sub_create_local', jsonb_build_object(
    'subscription_name', subscription_name, 'provider_node_id', provider_node_id,
    'provider_node_name', provider_node_name, 'replication_sets', replication_sets,
    'forward_origins', forward_origins, 'apply_delay', apply_delay::text, 'enabled', enabled));
  RETURN 77;
END $$;
`;

const PROVIDER_STUB = String.raw`
CREATE SCHEMA spock;
CREATE FUNCTION spock.node_info(OUT node_id oid, OUT node_name text) RETURNS record
LANGUAGE sql AS $$ SELECT 12345::oid, 'prov' $$;
`;

pgTest("management commands call SQL with named bind parameters", async (t, cluster) => {
  const sql = cluster.connect();
  await sql`CREATE DATABASE sub`;
  await sql`CREATE DATABASE prov`;
  const sub = cluster.connect({ database: "sub" });
  const prov = cluster.connect({ database: "prov" });
  await sub.unsafe(STUBS);
  await prov.unsafe(PROVIDER_STUB);
  // The commands refuse a catalog that is not this program's: the stubs are recorded as one.
  await sub.unsafe(
    "CREATE TABLE spock._catalog (version int, program_version text, api_source text, " +
      "api_checksum text)",
  );
  await sub`INSERT INTO spock._catalog VALUES (${CATALOG_VERSION}, 'stub', ${API_SOURCE_HASH},
    ${await liveApiChecksum(sub)})`;
  const dsn = cluster.dsn({ dbname: "sub" });
  const lastCall = async () => {
    const [row] = await sub`SELECT fn, args FROM spock.calls ORDER BY id DESC LIMIT 1`;
    return row;
  };

  await t.step("only the arguments given are passed; the rest take SQL defaults", async () => {
    const result = await runSpock([
      "repset",
      "add-table",
      "--dsn",
      dsn,
      "--set-name",
      "default",
      "--relation",
      "victim",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "true\n");
    assert.deepEqual((await lastCall()).args, {
      set_name: "default",
      relation: "victim",
      synchronize_data: false,
      columns: null,
      row_filter: null,
      include_partitions: true,
    });
  });

  await t.step("injection attempts, quoted identifiers and unicode arrive verbatim", async () => {
    const evil = "'); DROP TABLE public.victim; --";
    const result = await runSpock([
      "repset",
      "add-table",
      "--dsn",
      dsn,
      "--set-name",
      `x"; DROP TABLE public.victim; --`,
      "--relation",
      `public."Mixed Case ü"`,
      "--synchronize-data",
      "--no-include-partitions",
      "--columns",
      `id, "b,c", ${evil}`,
      "--row-filter",
      evil,
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { repset_add_table: true });
    assert.deepEqual((await lastCall()).args, {
      set_name: `x"; DROP TABLE public.victim; --`,
      relation: `"Mixed Case ü"`,
      synchronize_data: true,
      columns: ["id", `"b`, `c"`, evil],
      row_filter: evil,
      include_partitions: false,
    });
    const [victim] = await sub`SELECT to_regclass('public.victim') IS NOT NULL AS present`;
    assert.equal(victim.present, true);
  });

  await t.step("NULL-default booleans stay NULL unless given", async () => {
    const result = await runSpock([
      "repset",
      "alter",
      "--dsn",
      dsn,
      "--set-name",
      "s",
      "--no-replicate-delete",
      "--replicate-truncate",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "4242\n");
    assert.deepEqual((await lastCall()).args, {
      set_name: "s",
      replicate_insert: null,
      replicate_update: null,
      replicate_delete: false,
      replicate_truncate: true,
    });
  });

  await t.step("a server error exits 1 with the server's message and hint", async () => {
    const result = await runSpock([
      "node",
      "create",
      "--dsn",
      dsn,
      "--node-name",
      "n1",
      "--info",
      '{"a":1}',
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "spock node create: node n1 already exists\nHINT: pick another name\n",
    );
  });

  await t.step("set-returning functions print a table, or a JSON array; DSNs masked", async () => {
    const [table, json] = await Promise.all([
      runSpock(["sub", "show-status", "--dsn", dsn]),
      runSpock(["sub", "show-status", "--dsn", dsn, "--json"]),
    ]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.split("\n");
    assert.match(
      lines[0],
      /^subscription_name {2}status {2}provider_node {2}provider_dsn +slot_name/,
    );
    assert.match(lines[2], /^sub1 +down +n1 +host=h password=\*{8} +spk_x +default$/);
    assert.equal(lines[3], "(1 row)");
    assert.ok(!table.stdout.includes("hunter2"));
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [{
      subscription_name: "sub1",
      status: "down",
      provider_node: "n1",
      provider_dsn: "host=h password=********",
      slot_name: "spk_x",
      replication_sets: ["default"],
      forward_origins: [],
    }]);
  });

  await t.step("sub create reads the provider's node, then calls _sub_create_local", async () => {
    const result = await runSpock([
      "sub",
      "create",
      "--dsn",
      dsn,
      "--subscription-name",
      "sub_n2_n1",
      "--provider-dsn",
      cluster.dsn({ dbname: "prov" }),
      "--replication-sets",
      "default,ddl_sql",
      "--forward-origins",
      "",
      "--apply-delay",
      "5 seconds",
      "--no-enabled",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "77\n");
    assert.deepEqual((await lastCall()).args, {
      subscription_name: "sub_n2_n1",
      provider_node_id: "12345",
      provider_node_name: "prov",
      replication_sets: ["default", "ddl_sql"],
      forward_origins: [],
      apply_delay: "00:00:05",
      enabled: false,
    });
  });

  await t.step("sub create names the provider it cannot read, without its password", async () => {
    const result = await runSpock([
      "sub",
      "create",
      "--dsn",
      dsn,
      "--subscription-name",
      "s",
      "--provider-dsn",
      cluster.dsn({ dbname: "sub", password: "hunter2" }).replace("dbname=sub", "dbname=postgres"),
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^spock sub create: Cannot read the provider's node at .*password=\*{8}/,
    );
    assert.ok(!result.stderr.includes("hunter2"), result.stderr);
  });
});
