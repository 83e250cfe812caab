import assert from "node:assert/strict";
import { ApplyStatistics } from "../../mod/apply/conflicts/report.ts";
import type { LocalRelation } from "../../mod/apply/relation_map.ts";

const relation = { remoteName: "public.t", remoteNameParts: ["public", "t"] } as LocalRelation;

/** Statistics kept under `subscriptionId` (or not kept), written whenever asked. */
function statistics(subscriptionId: number | undefined): ApplyStatistics {
  return new ApplyStatistics({ subscriptionId, remoteNodeId: 1, logLevel: "debug", intervalMs: 0 });
}

function written(params: string[] | undefined): { ins: number; um: number } | undefined {
  if (params === undefined) return undefined;
  const [row] = JSON.parse(params[1]);
  return { ins: row.ins, um: row.um };
}

function conflict(stats: ApplyStatistics): void {
  stats.noteConflict({
    relation,
    type: "update_missing",
    resolution: "skip",
    indexName: null,
    recorded: true,
    localNodeId: null,
    localCommitTime: null,
    localXid: null,
  }, undefined);
}

Deno.test("ApplyStatistics counts a rolled-back transaction only when it is applied again", () => {
  const stats = statistics(7);
  stats.count(relation).inserts++;
  conflict(stats);
  stats.endTransaction(false);
  assert.equal(stats.takeIfDue(true), undefined);

  stats.count(relation).inserts++;
  conflict(stats);
  stats.endTransaction(true);
  assert.deepEqual(written(stats.takeIfDue(true)), { ins: 1, um: 1 });
  assert.equal(stats.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics keeps the counters a failed commit was writing", () => {
  const stats = statistics(7);
  stats.count(relation).inserts++;
  stats.endTransaction(true);
  stats.count(relation).inserts += 10;
  conflict(stats);
  assert.deepEqual(written(stats.takeForCommit()), { ins: 11, um: 1 });
  stats.endTransaction(false);
  assert.deepEqual(written(stats.takeForCommit()), { ins: 1, um: 0 });
  stats.endTransaction(true);
  assert.equal(stats.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics keeps nothing without a subscription", () => {
  const stats = statistics(undefined);
  stats.count(relation).inserts++;
  stats.endTransaction(true);
  assert.equal(stats.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics counts conflicts reported after the commit's counters were taken", () => {
  const stats = statistics(7);
  stats.count(relation).inserts++;
  assert.deepEqual(written(stats.takeForCommit()), { ins: 1, um: 0 });
  conflict(stats);
  stats.endTransaction(true);
  assert.deepEqual(written(stats.takeIfDue(true)), { ins: 0, um: 1 });
});
