/**
 * Fixtures for the catalog's SQL API tests: a database of a test cluster with
 * the spock catalog installed and, optionally, a local node (two nodes of a
 * test are two databases of one cluster); Spock's ids computed by hand; the
 * tables and row filters the replication-set tests use.
 */
import type postgres from "postgres";
import type { Cluster } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";

/** Creates `dbname` (unless it is "postgres") and installs the catalog there. */
export async function installedDatabase(cluster: Cluster, dbname: string): Promise<postgres.Sql> {
  if (dbname !== "postgres") {
    const admin = cluster.connect();
    await admin.unsafe(`CREATE DATABASE "${dbname}"`);
    await admin.end();
  }
  const sql = cluster.connect({ database: dbname });
  await installCatalog(sql, { programVersion: "test" });
  return sql;
}

/** Like {@link installedDatabase}, then `spock.node_create(nodeName, <its dsn>)`. */
export async function nodeDatabase(
  cluster: Cluster,
  dbname: string,
  nodeName: string,
): Promise<postgres.Sql> {
  const sql = await installedDatabase(cluster, dbname);
  await sql`SELECT spock.node_create(${nodeName}, ${cluster.dsn({ dbname })})`;
  return sql;
}

/** The error a promise rejects with, for asserting its message and fields. */
export async function rejection(promise: Promise<unknown>): Promise<postgres.PostgresError> {
  try {
    await promise;
  } catch (error) {
    return error as postgres.PostgresError;
  }
  throw new Error("Expected the statement to fail, but it succeeded");
}

function rot(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** PostgreSQL's hash_bytes() (lookup3) in TypeScript: the tests' hand computation of ids. */
export function hashBytes(key: Uint8Array): number {
  let a = (0x9e3779b9 + key.length + 3923095) >>> 0;
  let b = a;
  let c = a;
  const word = (i: number) =>
    ((key[i] ?? 0) | ((key[i + 1] ?? 0) << 8) | ((key[i + 2] ?? 0) << 16) |
      ((key[i + 3] ?? 0) << 24)) >>> 0;
  let pos = 0;
  for (; key.length - pos >= 12; pos += 12) {
    a = (a + word(pos)) >>> 0;
    b = (b + word(pos + 4)) >>> 0;
    c = (c + word(pos + 8)) >>> 0;
    a = ((a - c) >>> 0 ^ rot(c, 4)) >>> 0, c = (c + b) >>> 0;
    b = ((b - a) >>> 0 ^ rot(a, 6)) >>> 0, a = (a + c) >>> 0;
    c = ((c - b) >>> 0 ^ rot(b, 8)) >>> 0, b = (b + a) >>> 0;
    a = ((a - c) >>> 0 ^ rot(c, 16)) >>> 0, c = (c + b) >>> 0;
    b = ((b - a) >>> 0 ^ rot(a, 19)) >>> 0, a = (a + c) >>> 0;
    c = ((c - b) >>> 0 ^ rot(b, 4)) >>> 0, b = (b + a) >>> 0;
  }
  const rest = key.subarray(pos);
  for (let i = 0; i < rest.length; i++) {
    if (i < 4) a = (a + (rest[i] << (8 * i))) >>> 0;
    else if (i < 8) b = (b + (rest[i] << (8 * (i - 4)))) >>> 0;
    else c = (c + (rest[i] << (8 * (i - 7)))) >>> 0;
  }
  c = ((c ^ b) - rot(b, 14)) >>> 0;
  a = ((a ^ c) - rot(c, 11)) >>> 0;
  b = ((b ^ a) - rot(a, 25)) >>> 0;
  c = ((c ^ b) - rot(b, 16)) >>> 0;
  a = ((a ^ c) - rot(c, 4)) >>> 0;
  b = ((b ^ a) - rot(a, 14)) >>> 0;
  c = ((c ^ b) - rot(b, 24)) >>> 0;
  return c;
}

/** Spock's node id: hash_any(name) & 0xffff. */
export function spockNodeId(name: string): number {
  return hashBytes(new TextEncoder().encode(name)) & 0xffff;
}

/** Spock's interface and set ids: hash_any over {node id, hash_any(name)} as two uint32s. */
export function spockPairId(nodeId: number, name: string): number {
  const words = new Uint8Array(8);
  const view = new DataView(words.buffer);
  view.setUint32(0, nodeId, true);
  view.setUint32(4, hashBytes(new TextEncoder().encode(name)), true);
  return hashBytes(words);
}

/** Tables, a view, partitions and sequences the replication-set tests use; x is the victim. */
export const REPSET_SCHEMA = `
  CREATE TABLE x (id int PRIMARY KEY, val text);
  CREATE TABLE t_pk (id int PRIMARY KEY, a int, b text, c int);
  CREATE TABLE t_nopk (a int, b text);
  CREATE UNLOGGED TABLE t_unlogged (id int PRIMARY KEY);
  CREATE TABLE "MixedCase" (id int PRIMARY KEY, "Val" text);
  CREATE TABLE parted (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
  CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
  CREATE VIEW v AS SELECT 1 AS one;
  CREATE SCHEMA app;
  CREATE TABLE app.a1 (id int PRIMARY KEY);
  CREATE TABLE app.a2 (id int PRIMARY KEY);
  CREATE SEQUENCE app.s1;
  CREATE SEQUENCE app.s2;
`;

/** Row filters (on t_pk: id, a, b, c) that must be refused, most of them injection attempts. */
export const INVALID_ROW_FILTERS: readonly string[] = [
  "true); DROP TABLE x; --",
  "'); DROP TABLE x; --",
  "c > 1; DROP TABLE x",
  "c > 1) OR (true",
  "(c > 1",
  "c > 1 /* unterminated",
  "b = 'unterminated",
  'b = "unterminated',
  "b = $q$unterminated",
  "b = $$ ; $$; DROP TABLE x",
  "1$a$'$a$; DROP TABLE x; --'",
  "$a😀$'$a😀$; DROP TABLE x; --' = b",
  "b = e'\\''; DROP TABLE x; SELECT '",
  "xe'\\'' = b; DROP TABLE x; --'",
  "(SELECT count(*) FROM x) > 0",
  "count(*) > 0",
  "nope > 1",
  "x.id > 1",
  "c",
  "",
  "   ",
];

/** Row filters that must pass although they quote ';', '(' or ')'. */
export const VALID_ROW_FILTERS: readonly string[] = [
  "b = 'it''s; fine)'",
  "b <> $q$;)($q$",
  "b <> E'\\'; )'",
  "c > 1 -- trailing comment ;)",
  "b <> 'x' /* nested /* ; */ ) */",
  't_pk.c > 0 AND "b" IS NOT NULL',
  "b <> $ü$;)$ü$",
  "b <> $a😀$;)$a😀$",
];
