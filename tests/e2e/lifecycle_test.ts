/**
 * The daemon follows the catalog: a second daemon for the same subscription
 * waits for the first (and says so), takes over when it stops; sub_disable
 * stops the worker and sub_enable resumes from where it stopped; sub_drop
 * removes the provider's slot and the local origin.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  subscribe,
  type TestNode,
  waitForSync,
} from "./_mesh.ts";

async function count(node: TestNode): Promise<number> {
  const [row] = await node.sql`select count(*)::int as n from kv`;
  return row.n;
}

async function status(node: TestNode, sub: string): Promise<string> {
  const [row] = await node.sql`select status from spock.sub_show_status(${sub})`;
  return row.status;
}

pgTest(
  "the daemon follows sub_disable, sub_enable, sub_drop and a second daemon waits",
  async (_t, cluster) => {
    const nodes = await createNodes(
      cluster,
      ["lp", "ls"],
      "create table kv (k int primary key, v text)",
    );
    const [provider, subscriber] = nodes;
    await addAllTables([provider]);
    const sub = await subscribe(subscriber, provider);
    const first = new SpockProcess(["run", "--dsn", subscriber.dsn, "--log-format", "json"]);
    let second: SpockProcess | undefined;
    try {
      await waitForSync(subscriber, sub);
      await pollUntil(async () => await status(subscriber, sub) === "replicating", {
        what: "the first daemon to replicate",
      });
      const waiting = new SpockProcess(["run", "--dsn", subscriber.dsn]);
      second = waiting;
      await pollUntil(() => /served by another daemon/.test(waiting.stderr), {
        what: "the second daemon to say it waits",
      });
      await provider.sql`insert into kv select g, 'a' from generate_series(1, 100) g`;
      await pollUntil(async () => await count(subscriber) === 100, {
        what: "rows through the first",
      });

      // The first stops (its log is JSON lines carrying the worker's
      // properties); the second takes the subscription over.
      const stopped = await first.interrupt("SIGTERM");
      assert.equal(stopped.code, 0);
      const records = stopped.stderr.trim().split("\n").map((line) => JSON.parse(line));
      assert.ok(records.some((r) => r.properties?.subscription === sub));
      await provider.sql`insert into kv select g, 'b' from generate_series(101, 200) g`;
      await pollUntil(async () => await count(subscriber) === 200, {
        what: "rows through the second",
      });

      // Disabled: the worker stops within a second or two, and nothing arrives.
      const started = performance.now();
      await subscriber.sql`select spock.sub_disable(${sub})`;
      await pollUntil(async () => await status(subscriber, sub) === "disabled", {
        what: "the subscription to show as disabled",
      });
      const reaction = performance.now() - started;
      assert.ok(reaction < 2_000, `worker stopped after ${reaction.toFixed(0)} ms`);
      await provider.sql`insert into kv select g, 'c' from generate_series(201, 300) g`;
      const [slot] = await provider.sql`select active from pg_replication_slots
        where slot_name like 'spk_%'`;
      assert.equal(slot.active, false);
      assert.equal(await count(subscriber), 200);

      // Enabled again: it resumes where it stopped.
      await subscriber.sql`select spock.sub_enable(${sub})`;
      await pollUntil(async () => await count(subscriber) === 300, {
        what: "rows after sub_enable",
      });
      assert.equal(await status(subscriber, sub), "replicating");

      // Dropped: the slot on the provider and the origin here are gone.
      await subscriber.sql`select spock.sub_drop(${sub})`;
      await pollUntil(async () => {
        const [left] = await provider.sql`select count(*)::int as n from pg_replication_slots
          where slot_name like 'spk_%'`;
        return left.n === 0;
      }, { what: "the provider's slot to be dropped" });
      // The daemon drops the origin once its worker has let go of it.
      await pollUntil(async () => {
        const [origins] = await subscriber.sql`select count(*)::int as n
          from pg_replication_origin where roname like 'spk_%'`;
        return origins.n === 0;
      }, { what: "the subscription's origin to be dropped" });
      assert.equal((await waiting.interrupt("SIGTERM")).code, 0);
    } catch (error) {
      console.error(`--- first ---\n${first.stderr.slice(-3000)}`);
      console.error(`--- second ---\n${second?.stderr.slice(-3000)}`);
      throw error;
    } finally {
      await first.kill();
      await second?.kill();
      await closeNodes(nodes);
    }
  },
);
