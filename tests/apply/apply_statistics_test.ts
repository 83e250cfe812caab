import assert from "node:assert/strict";
import { ApplyStatistics } from "../../mod/apply/conflicts/report.ts";
import type { LocalRelation } from "../../mod/apply/relation_map.ts";

const relation = { remoteName: "public.t", remoteNameParts: ["public", "t"] } as LocalRelation;

function written(params: string[] | undefined): { ins: number; um: number } | undefined {
  if (params === undefined) return undefined;
  const [row] = JSON.parse(params[1]);
  return { ins: row.ins, um: row.um };
}

function conflict(statistics: ApplyStatistics): void {
  statistics.noteConflict({
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
  const statistics = new ApplyStatistics({
    subscriptionId: 7,
    remoteNodeId: 1,
    logLevel: "debug",
    intervalMs: 0,
  });
  statistics.count(relation).inserts++;
  conflict(statistics);
  statistics.endTransaction(false);
  assert.equal(statistics.takeIfDue(true), undefined);

  statistics.count(relation).inserts++;
  conflict(statistics);
  statistics.endTransaction(true);
  assert.deepEqual(written(statistics.takeIfDue(true)), { ins: 1, um: 1 });
  assert.equal(statistics.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics keeps the counters a failed commit was writing", () => {
  const statistics = new ApplyStatistics({
    subscriptionId: 7,
    remoteNodeId: 1,
    logLevel: "debug",
    intervalMs: 0,
  });
  statistics.count(relation).inserts++;
  statistics.endTransaction(true);
  statistics.count(relation).inserts += 10;
  conflict(statistics);
  assert.deepEqual(written(statistics.takeForCommit()), { ins: 11, um: 1 });
  statistics.endTransaction(false);
  assert.deepEqual(written(statistics.takeForCommit()), { ins: 1, um: 0 });
  statistics.endTransaction(true);
  assert.equal(statistics.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics keeps nothing without a subscription", () => {
  const statistics = new ApplyStatistics({
    subscriptionId: undefined,
    remoteNodeId: 1,
    logLevel: "debug",
    intervalMs: 0,
  });
  statistics.count(relation).inserts++;
  statistics.endTransaction(true);
  assert.equal(statistics.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics counts conflicts reported after the commit's counters were taken", () => {
  const statistics = new ApplyStatistics({
    subscriptionId: 7,
    remoteNodeId: 1,
    logLevel: "debug",
    intervalMs: 0,
  });
  statistics.count(relation).inserts++;
  assert.deepEqual(written(statistics.takeForCommit()), { ins: 1, um: 0 });
  conflict(statistics);
  statistics.endTransaction(true);
  assert.deepEqual(written(statistics.takeIfDue(true)), { ins: 0, um: 1 });
});
