import assert from "node:assert/strict";
import { ApplyCounters, ApplyStatistics } from "../../mod/apply/conflicts/report.ts";
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

function conflict(stats: ApplyStatistics, counters?: ApplyCounters): void {
  stats.noteConflict(
    {
      relation,
      type: "update_missing",
      resolution: "skip",
      indexName: null,
      recorded: true,
      localNodeId: null,
      localCommitTime: null,
      localXid: null,
    },
    undefined,
    counters,
  );
}

Deno.test("ApplyStatistics counts a rolled-back transaction only when it is applied again", () => {
  const stats = statistics(7);
  stats.count(relation).inserts++;
  conflict(stats);
  stats.discardTransaction();
  assert.equal(stats.takeIfDue(true), undefined);

  stats.count(relation).inserts++;
  conflict(stats);
  stats.settle(stats.detach(), true);
  assert.deepEqual(written(stats.takeIfDue(true)), { ins: 1, um: 1 });
  assert.equal(stats.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics keeps the counters a failed commit was writing", () => {
  const stats = statistics(7);
  stats.count(relation).inserts++;
  stats.settle(stats.detach(), true);
  stats.count(relation).inserts += 10;
  const open = stats.detach();
  const first = stats.takeForCommit();
  assert.deepEqual(written(first?.params), { ins: 1, um: 0 });
  stats.settle(open, false, first?.taken);
  const second = stats.takeForCommit();
  assert.deepEqual(written(second?.params), { ins: 1, um: 0 });
  stats.settle(new ApplyCounters(), true, second?.taken);
  assert.equal(stats.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics keeps nothing without a subscription", () => {
  const stats = statistics(undefined);
  stats.count(relation).inserts++;
  stats.settle(stats.detach(), true);
  assert.equal(stats.takeIfDue(true), undefined);
});

Deno.test("ApplyStatistics counts a conflict reported after its transaction's COMMIT was sent", () => {
  const stats = statistics(7);
  stats.count(relation).inserts++;
  const sent = stats.detach();
  stats.count(relation).inserts += 5;
  conflict(stats, sent);
  stats.settle(sent, true);
  stats.discardTransaction();
  assert.deepEqual(written(stats.takeIfDue(true)), { ins: 1, um: 1 });
});
