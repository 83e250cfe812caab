/**
 * mod/daemon/catalog_listener.ts against a real server: a notification on
 * the channel is reported (others are not), a lost connection is reported
 * once and stays lost (no reconnect of its own), and a close is not a loss
 * to report.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type Cluster, pgTest, pollUntil } from "../_harness/mod.ts";
import { CatalogListener } from "../../mod/daemon/catalog_listener.ts";
import { resolveConnectOptions } from "../../mod/pg/mod.ts";

const LISTENER = "catalog_listener";

function open(cluster: Cluster, channel: string, onEvent: () => void): Promise<CatalogListener> {
  const options = resolveConnectOptions(cluster.dsn(), { applicationName: LISTENER });
  return CatalogListener.open(options, channel, onEvent);
}

async function notify(sql: postgres.Sql, channel: string): Promise<void> {
  await sql`select pg_notify(${channel}, 'payload')`;
}

pgTest("CatalogListener reports notifications on its channel only", async (_t, cluster) => {
  const sql = cluster.connect();
  let events = 0;
  const listener = await open(cluster, "spock_catalog", () => events++);
  try {
    await notify(sql, "spock_catalog");
    await pollUntil(() => events === 1, { what: "the notification" });
    // Both in one commit: they arrive together, the other channel's first.
    await sql`select pg_notify('another_channel', 'x'), pg_notify('spock_catalog', 'x')`;
    await pollUntil(() => events >= 2, { what: "the second notification" });
    assert.equal(events, 2, "the other channel's notification is not reported");
    assert.equal(listener.lost, false);
  } finally {
    await listener.close();
  }
});

pgTest("CatalogListener listens on a channel name that needs quoting", async (_t, cluster) => {
  const sql = cluster.connect();
  let events = 0;
  const channel = 'Odd "channel"';
  const listener = await open(cluster, channel, () => events++);
  try {
    await notify(sql, channel);
    await pollUntil(() => events === 1, { what: "the notification" });
  } finally {
    await listener.close();
  }
});

pgTest(
  "CatalogListener reports a lost connection once and stays lost, without reconnecting",
  async (_t, cluster) => {
    const sql = cluster.connect();
    let events = 0;
    const listener = await open(cluster, "spock_catalog", () => events++);
    const [{ terminated }] = await sql`select count(pg_terminate_backend(pid))::int as terminated
      from pg_stat_activity where application_name = ${LISTENER}`;
    assert.equal(terminated, 1);
    await pollUntil(() => listener.lost, { what: "the listener to notice" });
    assert.equal(events, 1);
    // Notifications are missed from now on; the caller opens a new listener.
    const listening =
      await sql`select 1 from pg_stat_activity where application_name = ${LISTENER}`;
    assert.equal(listening.length, 0, "no connection of its own again");
    await listener.close();
    assert.equal(events, 1);
  },
);

pgTest("CatalogListener.close() is not reported as a loss", async (_t, cluster) => {
  let events = 0;
  const listener = await open(cluster, "spock_catalog", () => events++);
  await listener.close();
  assert.equal(listener.lost, true, "closed: check lost and open a new one");
  assert.equal(events, 0);
  const sql = cluster.connect();
  await pollUntil(
    async () =>
      (await sql`select 1 from pg_stat_activity where application_name = ${LISTENER}`).length === 0,
    { what: "the listener's connection to end" },
  );
});

pgTest("CatalogListener.open() fails when the server cannot be reached", async (_t, cluster) => {
  await cluster.stopServer();
  await assert.rejects(open(cluster, "spock_catalog", () => {}));
});
