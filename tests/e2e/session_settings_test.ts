/**
 * Values arrive exactly as the provider has them whatever either database's
 * session defaults: with the provider at `datestyle = 'SQL, DMY'`,
 * `intervalstyle = 'sql_standard'`, `extra_float_digits = 0` and another
 * time zone (and the subscriber skewed its own way), every date, time,
 * interval and float type is equal on both sides after the initial copy, a
 * streamed INSERT and a streamed UPDATE.
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  type TestNode,
  waitForRow,
  waitForSync,
} from "./_mesh.ts";

const TABLE = `create table v (id int primary key, d date, ts timestamp, tstz timestamptz,
  t time, ttz timetz, i interval, f4 real, f8 float8, n numeric, done boolean default false)`;

const VALUES = `'2025-05-06', '2025-05-06 07:08:09.123456', '2025-05-06 07:08:09.123456+02',
  '07:08:09.123456', '07:08:09.5+02', interval '1 year 2 mons -3 days 04:05:06.789',
  1.1::real, 0.1::float8 + 0.2, 0.1 + 0.2`;

/** Every row as exact text, read under one fixed session. */
async function rows(node: TestNode): Promise<string[]> {
  return await node.sql.begin(async (tx) => {
    await tx`set local datestyle = 'ISO'`;
    await tx`set local intervalstyle = 'postgres'`;
    await tx`set local extra_float_digits = 3`;
    await tx`set local timezone = 'UTC'`;
    const result = await tx`select v::text as row from v order by id`;
    return result.map((row) => row.row as string);
  }) as string[];
}

pgTest("streamed and copied values ignore both sides' session defaults", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["zp", "zs"], TABLE);
  const [provider, subscriber] = nodes;
  await provider.sql`alter database zp set datestyle = 'SQL, DMY'`;
  await provider.sql`alter database zp set intervalstyle = 'sql_standard'`;
  await provider.sql`alter database zp set extra_float_digits = 0`;
  await provider.sql`alter database zp set timezone = 'America/Sao_Paulo'`;
  await subscriber.sql`alter database zs set datestyle = 'SQL, MDY'`;
  await subscriber.sql`alter database zs set intervalstyle = 'iso_8601'`;
  await subscriber.sql`alter database zs set timezone = 'Asia/Tokyo'`;
  await provider.sql.unsafe(`insert into v values (1, ${VALUES})`);
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider, { syncData: true });
  const daemon = runDaemon([subscriber]);
  try {
    await waitForSync(subscriber, sub);
    await provider.sql.unsafe(`insert into v values (2, ${VALUES})`);
    await provider.sql.unsafe(`update v set done = true, d = d + 1, f8 = f8 * 3, i = i * 2
      where id = 1`);
    await provider.sql`insert into v (id) values (3)`;
    await waitForRow(subscriber, "v", "id", 3);
    const expected = await rows(provider);
    assert.match(expected[0], /^\(1,2025-05-07,/, "the provider's own rows, read as ISO");
    assert.deepEqual(await rows(subscriber), expected);
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
