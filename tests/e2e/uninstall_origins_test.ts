/**
 * Replication origins are server-wide: `spock uninstall --force` in one
 * database drops only its own subscriptions' origins, and another spock
 * database of the same server keeps its origin and position. A worker whose
 * origin has gone all the same stops with an error (shown by
 * sub_show_status) instead of applying everything again from 0/0.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { uninstallCatalog } from "../../mod/catalog/mod.ts";
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

async function originLsn(node: TestNode, slot: string): Promise<string | undefined> {
  const [row] = await node.sql`
    select remote_lsn::text as lsn from pg_replication_origin_status where external_id = ${slot}`;
  return row?.lsn;
}

async function slotOf(node: TestNode, sub: string): Promise<string> {
  const [row] = await node.sql`select sub_slot_name::text as slot from spock.subscription
    where sub_name = ${sub}`;
  return row.slot;
}

pgTest(
  "uninstall drops only its own origins; a lost origin stops the worker",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["up", "ua", "ub"],
      "create table t (k int primary key)",
    );
    const [provider, first, second] = nodes;
    try {
      await addAllTables([provider]);
      const subA = await subscribe(first, provider);
      const subB = await subscribe(second, provider);
      const slotA = await slotOf(first, subA);
      const slotB = await slotOf(second, subB);
      const daemon = runDaemon([first, second]);
      try {
        await waitForSync(first, subA);
        await waitForSync(second, subB);
        await provider.sql`insert into t values (1)`;
        await waitForRow(first, "t", "k", 1);
        await waitForRow(second, "t", "k", 1);
      } finally {
        await daemon.stop();
      }
      const positionB = await originLsn(second, slotB);
      assert.notEqual(positionB, undefined);
      assert.notEqual(positionB, "0/0");

      await uninstallCatalog(first.sql, { force: true });
      assert.equal(
        await originLsn(first, slotA),
        undefined,
        "the uninstalled node's origin is gone",
      );
      assert.equal(await originLsn(second, slotB), positionB, "the other node's origin is kept");

      // An origin dropped behind spock's back: the worker refuses to start from 0/0.
      await second.sql`select pg_replication_origin_drop(${slotB})`;
      await provider.sql`insert into t values (2)`;
      const again = runDaemon([second]);
      try {
        const status = await pollUntil(async () => {
          const [row] = await second.sql`select * from spock.sub_show_status(${subB})`;
          return row.last_error === null ? undefined : row;
        }, { what: "the worker's error" });
        assert.equal(status.status, "down");
        assert.match(
          status.last_error,
          new RegExp(
            `replication origin '${slotB}' is missing .*spock\\.progress says remote commit`,
          ),
        );
        assert.match(status.last_error, /pg_replication_origin_advance/);
        assert.equal(status.next_retry_at, null, "the worker does not retry");
        assert.equal(await originLsn(second, slotB), undefined, "no origin was created");
        const rows = await second.sql`select k from t order by k`;
        assert.deepEqual(rows.map((row) => row.k), [1]);
      } finally {
        await again.stop();
      }
    } finally {
      await closeNodes(nodes);
    }
  },
);
