/**
 * The sync state machine (mod/sync/sync_states.ts, stream_gate.ts): names
 * and Spock's letters, which states still need a sync, and the stream gate
 * moving catchup and synchronized tables to ready in a real catalog only
 * once the stream has passed their positions.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { insertSubscriptionRows, pgTest } from "../_harness/mod.ts";
import { installCatalog } from "../../mod/catalog/mod.ts";
import {
  needsCopy,
  needsInitialSync,
  readTableSyncStates,
  StreamSyncGate,
  type SyncState,
  syncStateOfLetter,
} from "../../mod/sync/mod.ts";

const LETTERS: Record<string, SyncState> = {
  i: "init",
  s: "structure",
  d: "data",
  c: "constraints",
  w: "waiting",
  u: "catchup",
  y: "synchronized",
  r: "ready",
};

Deno.test("every Spock sync letter has its named state, and an unknown letter is named", () => {
  for (const [letter, state] of Object.entries(LETTERS)) {
    assert.equal(syncStateOfLetter(letter), state);
  }
  assert.throws(() => syncStateOfLetter("x"), /Unknown sync status "x"/);
});

Deno.test("only catchup and ready skip the initial sync; only synchronized and ready skip a copy", () => {
  const states = Object.values(LETTERS);
  assert.deepEqual(states.filter((s) => !needsInitialSync(s)), ["catchup", "ready"]);
  assert.deepEqual(states.filter((s) => !needsCopy(s)), ["synchronized", "ready"]);
});

/** A catalog with one subscription (id 21) in `u`, and table sync rows as given. */
async function subscriptionWithTables(
  sql: postgres.Sql,
  tables: Array<[string, string, string]>,
): Promise<void> {
  await installCatalog(sql, { programVersion: "test" });
  await insertSubscriptionRows(sql, "sub1");
  await sql.unsafe(`insert into spock.local_sync_status values ('d', 21, null, null, 'u', '0/10')`);
  for (const [relname, status, lsn] of tables) {
    await sql.unsafe(
      `insert into spock.local_sync_status values ('d', 21, 'public', $1, $2, $3::pg_lsn)`,
      [relname, status, lsn],
    );
  }
}

async function letters(sql: postgres.Sql): Promise<Record<string, string>> {
  const rows = await sql.unsafe(`select coalesce(sync_relname::text, '') as rel,
    sync_status::text as status from spock.local_sync_status where sync_subid = 21`);
  return Object.fromEntries(rows.map((row) => [row.rel, row.status]));
}

pgTest(
  "the stream gate moves states on only once the stream has passed them",
  async (_t, cluster) => {
    const sql = cluster.connect();
    await subscriptionWithTables(sql, [
      ["copied", "y", "0/100"],
      ["copying", "d", "0/0"],
      ["done", "r", "0/50"],
    ]);
    assert.deepEqual(
      (await readTableSyncStates(sql, 21)).map((t) => [t.relname, t.state]),
      [["copied", "synchronized"], ["copying", "data"], ["done", "ready"]],
    );
    const gate = await StreamSyncGate.open(sql, { id: 21, name: "sub1", state: "catchup" });
    assert.equal(gate.caughtUp, false);
    assert.equal(gate.tablesPending, true);

    // A synchronized table's changes apply from its copy's LSN on; a table still
    // being copied gets none; a ready table and one never synced get all.
    assert.equal(gate.applies("public", "copied", 0x99n), false);
    assert.equal(gate.applies("public", "copied", 0x100n), true);
    assert.equal(gate.applies("public", "copying", 0x1000n), false);
    assert.equal(gate.applies("public", "done", 0x1n), true);
    assert.equal(gate.applies("public", "other", 0x1n), true);

    await gate.passedCommit(0x99n);
    assert.deepEqual(await letters(sql), { "": "u", copied: "y", copying: "d", done: "r" });
    await gate.passedCommit(0x100n);
    assert.deepEqual(await letters(sql), { "": "u", copied: "r", copying: "d", done: "r" });
    assert.equal(gate.caughtUp, false, "a commit alone does not end catchup");
    await gate.passedIdle(0x200n);
    assert.deepEqual(await letters(sql), { "": "r", copied: "r", copying: "d", done: "r" });
    assert.equal(gate.caughtUp, true);
    assert.equal(gate.tablesPending, true, "the table being copied still waits");
  },
);
