/**
 * TransactionFilter, pure: transactions with an Origin message dropped when
 * asked (forward_origins '{}' on PG 15), a skip LSN empties one transaction
 * but keeps its Begin and Commit, gated tables lose their rows, and repair
 * mode drops rows, TRUNCATEs and queued commands until it is off or the
 * transaction ends.
 */
import assert from "node:assert/strict";
import { TransactionFilter } from "../../mod/apply/mod.ts";
import {
  type Begin,
  type Commit,
  type Insert,
  type Message,
  type PgoutputMessage,
  type Relation,
  RelationCache,
} from "../../mod/pgoutput/mod.ts";

const relation: Relation = {
  type: "relation",
  relationId: 7,
  namespace: "public",
  relationName: "t",
  replicaIdentity: "d",
  columns: [{ flags: 1, isKey: true, name: "id", typeOid: 23, typeMod: -1 }],
};
const other: Relation = { ...relation, relationId: 8, relationName: "u" };

function begin(finalLsn: bigint): Begin {
  return { type: "begin", finalLsn, commitTime: 1n, xid: Number(finalLsn) };
}
function commit(commitLsn: bigint): Commit {
  return { type: "commit", flags: 0, commitLsn, endLsn: commitLsn + 8n, commitTime: 1n };
}
function insert(relationId = 7): Insert {
  return { type: "insert", relationId, newTuple: [{ kind: "text", bytes: new Uint8Array([49]) }] };
}

function run(filter: TransactionFilter, messages: PgoutputMessage[]): string[] {
  return messages.flatMap((m) => filter.filter(m)).map((m) => m.type);
}

function relations(): RelationCache {
  const cache = new RelationCache();
  cache.set(relation);
  cache.set(other);
  return cache;
}

Deno.test("TransactionFilter drops transactions that carry an Origin when asked", () => {
  const filter = new TransactionFilter({ skipOriginated: true, relations: relations() });
  const origin = { type: "origin" as const, originLsn: 5n, originName: "n2" };
  assert.deepEqual(run(filter, [begin(100n), origin, insert(), commit(100n)]), []);
  assert.equal(filter.lastOutcome, "originated");
  assert.deepEqual(run(filter, [begin(200n), relation, insert(), commit(200n)]), [
    "relation",
    "begin",
    "insert",
    "commit",
  ]);
  assert.equal(filter.lastOutcome, "applied");
  const forwarding = new TransactionFilter({ skipOriginated: false, relations: relations() });
  assert.deepEqual(run(forwarding, [begin(300n), origin, insert(), commit(300n)]), [
    "begin",
    "origin",
    "insert",
    "commit",
  ]);
});

Deno.test("TransactionFilter keeps Relation messages of a dropped transaction", () => {
  const filter = new TransactionFilter({ skipOriginated: true, relations: relations() });
  const origin = { type: "origin" as const, originLsn: 5n, originName: "n2" };
  assert.deepEqual(run(filter, [begin(100n), origin, relation, insert(), commit(100n)]), [
    "relation",
  ]);
  assert.equal(filter.inTransaction, false);
});

Deno.test("TransactionFilter empties the transaction at the skip LSN, once cleared", () => {
  const filter = new TransactionFilter({
    skipOriginated: false,
    skipLsn: 100n,
    relations: relations(),
  });
  assert.deepEqual(run(filter, [begin(100n), insert(), insert(), commit(100n)]), [
    "begin",
    "commit",
  ]);
  assert.equal(filter.lastOutcome, "skipped_lsn");
  filter.clearSkipLsn();
  assert.deepEqual(run(filter, [begin(100n), insert(), commit(100n)]), [
    "begin",
    "insert",
    "commit",
  ]);
});

Deno.test("TransactionFilter drops rows of gated tables, truncates included", () => {
  const filter = new TransactionFilter({
    skipOriginated: false,
    relations: relations(),
    applyTable: (_schema, table, finalLsn) => table !== "u" || finalLsn >= 500n,
  });
  const truncate = {
    type: "truncate" as const,
    relationIds: [7, 8],
    cascade: false,
    restartIdentity: false,
  };
  const before = [begin(400n), insert(7), insert(8), truncate, commit(400n)];
  const out = before.flatMap((m) => filter.filter(m));
  assert.deepEqual(out.map((m) => m.type), ["begin", "insert", "truncate", "commit"]);
  assert.deepEqual(out.find((m) => m.type === "truncate"), { ...truncate, relationIds: [7] });
  assert.deepEqual(run(filter, [begin(600n), insert(8), commit(600n)]), [
    "begin",
    "insert",
    "commit",
  ]);
});

function spockMessage(mtype: number, transactional = true): Message {
  const content = new Uint8Array(4);
  new DataView(content.buffer).setUint32(0, mtype, true);
  return { type: "message", transactional, messageLsn: 1n, prefix: "Spock", content };
}
function queued(): Message {
  return {
    type: "message",
    transactional: true,
    messageLsn: 1n,
    prefix: "spock_queue",
    content: new Uint8Array(),
  };
}

Deno.test("TransactionFilter leaves out what repair mode covers, up to off or the commit", () => {
  const filter = new TransactionFilter({ skipOriginated: false, relations: relations() });
  const [on, off, syncEvent] = [spockMessage(1), spockMessage(2), spockMessage(3)];
  const truncate = {
    type: "truncate" as const,
    relationIds: [7],
    cascade: false,
    restartIdentity: false,
  };
  assert.deepEqual(
    run(filter, [
      begin(100n),
      insert(),
      on,
      insert(),
      truncate,
      queued(),
      off,
      queued(),
      insert(),
      commit(100n),
    ]),
    ["begin", "insert", "message", "insert", "commit"],
  );
  assert.deepEqual(run(filter, [begin(200n), on, insert(), relation, syncEvent, commit(200n)]), [
    "begin",
    "relation",
    "message",
    "commit",
  ]);
  assert.deepEqual(run(filter, [begin(300n), insert(), commit(300n)]), [
    "begin",
    "insert",
    "commit",
  ]);
  assert.deepEqual(run(filter, [spockMessage(1, false), begin(400n), insert(), commit(400n)]), [
    "message",
    "begin",
    "insert",
    "commit",
  ]);
});
