/**
 * Apply fires row triggers only, as PostgreSQL's and Spock's apply do:
 * statement-level triggers enabled ALWAYS or REPLICA on the subscriber do
 * not fire for applied INSERTs (batched), UPDATEs and DELETEs, while row
 * triggers do; afterwards the statement triggers are enabled as before and
 * fire for local writes.
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

const TRIGGERS = `
create table fired (kind text);
create function log_statement() returns trigger language plpgsql as $$
begin insert into fired values ('statement ' || tg_op); return null; end $$;
create function log_row() returns trigger language plpgsql as $$
begin insert into fired values ('row ' || tg_op); return null; end $$;
create trigger s_always after insert or update or delete on t
  for each statement execute function log_statement();
create trigger s_replica after insert on t for each statement execute function log_statement();
create trigger r_always after insert or update or delete on t
  for each row execute function log_row();
alter table t enable always trigger s_always;
alter table t enable replica trigger s_replica;
alter table t enable always trigger r_always`;

async function fired(node: TestNode): Promise<Record<string, number>> {
  const rows = await node.sql`select kind, count(*)::int as n from fired group by kind`;
  return Object.fromEntries(rows.map((row) => [row.kind, row.n]));
}

pgTest("applied changes fire row triggers, not statement triggers", async (_t, cluster) => {
  const nodes = await createNodes(cluster, ["gp2", "gs2"], "create table t (k int primary key)");
  const [provider, subscriber] = nodes;
  await subscriber.sql.unsafe(TRIGGERS);
  await addAllTables([provider]);
  const sub = await subscribe(subscriber, provider);
  const daemon = runDaemon([subscriber]);
  try {
    await waitForSync(subscriber, sub);
    await provider.sql`insert into t values (1), (2), (3)`;
    await provider.sql`update t set k = k + 10 where k = 1`;
    await provider.sql`delete from t where k = 2`;
    await provider.sql`insert into t values (4)`;
    await waitForRow(subscriber, "t", "k", 4);
    assert.deepEqual(await fired(subscriber), {
      "row INSERT": 4,
      "row UPDATE": 1,
      "row DELETE": 1,
    });
    const triggers = await subscriber.sql`select tgname::text as name, tgenabled::text as enabled
      from pg_trigger where tgrelid = 't'::regclass order by tgname`;
    assert.deepEqual(triggers.map((row) => `${row.name}:${row.enabled}`), [
      "r_always:A",
      "s_always:A",
      "s_replica:R",
      "spock_readonly:O",
    ]);
    await subscriber.sql`insert into t values (100)`;
    assert.equal((await fired(subscriber))["statement INSERT"], 1, "local writes fire them");
  } finally {
    await daemon.stop();
    await closeNodes(nodes);
  }
});
