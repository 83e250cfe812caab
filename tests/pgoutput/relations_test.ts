/**
 * Tests for `RelationCache`: storing, replacing and requiring Relation
 * messages by OID. Decoding them is covered by `decode_test.ts`.
 */

import assert from "node:assert/strict";
import { ProtocolError, type Relation, RelationCache } from "../../mod/pgoutput/mod.ts";

function relation(relationId: number, relationName: string): Relation {
  return {
    type: "relation",
    relationId,
    namespace: "public",
    relationName,
    replicaIdentity: "d",
    columns: [{ flags: 1, isKey: true, name: "id", typeOid: 23, typeMod: -1 }],
  };
}

Deno.test("RelationCache starts empty", () => {
  const cache = new RelationCache();
  assert.equal(cache.size, 0);
  assert.equal(cache.get(16384), undefined);
});

Deno.test("RelationCache.set() stores a relation by OID", () => {
  const cache = new RelationCache();
  const accounts = relation(16384, "accounts");
  cache.set(accounts);
  cache.set(relation(16390, "orders"));
  assert.equal(cache.size, 2);
  assert.equal(cache.get(16384), accounts);
  assert.equal(cache.require(16390, "insert").relationName, "orders");
});

Deno.test("RelationCache.set() replaces an earlier description of the same OID", () => {
  const cache = new RelationCache();
  cache.set(relation(16384, "accounts"));
  const renamed = relation(16384, "accounts_v2");
  cache.set(renamed);
  assert.equal(cache.size, 1);
  assert.equal(cache.get(16384), renamed);
});

Deno.test("RelationCache.require() rejects a relation that was never described", () => {
  const cache = new RelationCache();
  cache.set(relation(1, "other"));
  assert.throws(() => cache.require(16384, "insert"), (error: unknown) => {
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, "ERR_PGOUTPUT_PROTOCOL");
    assert.equal(error.messageType, "insert");
    assert.equal(error.offset, undefined);
    assert.equal(
      error.message,
      "Cannot decode insert: relation 16384 was not described by a Relation message",
    );
    return true;
  });
});

Deno.test("RelationCache.clear() forgets every relation", () => {
  const cache = new RelationCache();
  cache.set(relation(16384, "accounts"));
  cache.set(relation(16390, "orders"));
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get(16384), undefined);
  assert.throws(() => cache.require(16384, "update"), ProtocolError);
});
