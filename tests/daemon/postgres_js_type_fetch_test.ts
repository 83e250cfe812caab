/**
 * postgres.js reads the server's array types on every new connection with a
 * query nobody awaits. A pool ended while that query runs (its `end()`
 * timeout running out) rejects it unhandled, which would end the process:
 * the guard the executable installs (and the harness, as it) must swallow
 * exactly that rejection, while the query that was really waiting fails.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { pgTest, pollUntil, TcpProxy } from "../_harness/mod.ts";
import { isTypeFetchFailure } from "../../mod/daemon/mod.ts";

pgTest(
  "a pool ended during postgres.js's type query does not end the process",
  async (_t, cluster) => {
    // The server's answers reach the client a second late, so the type query stays in flight.
    const proxy = TcpProxy.start({ host: "127.0.0.1", port: cluster.port }, { delayMs: 1000 });
    const admin = cluster.connect();
    const swallowed: unknown[] = [];
    const observe = (event: PromiseRejectionEvent) => {
      if (event.defaultPrevented) swallowed.push(event.reason);
    };
    globalThis.addEventListener("unhandledrejection", observe);
    const sql = postgres({
      host: "127.0.0.1",
      port: proxy.port,
      user: "postgres",
      database: "postgres",
      max: 1,
      onnotice: () => {},
      connection: { application_name: "type_fetch_victim" },
    });
    try {
      const waiting = sql`select 1 as one`.then(() => undefined, (error: Error) => error);
      await pollUntil(async () => {
        const [row] = await admin`select query from pg_stat_activity
        where application_name = 'type_fetch_victim'`;
        return row !== undefined && String(row.query).includes("typarray");
      }, { what: "postgres.js to send its type query", intervalMs: 20 });
      await sql.end({ timeout: 0 });
      const failed = await waiting;
      assert.match(String(failed?.message), /CONNECTION_DESTROYED/, "the waiting query fails");
      await pollUntil(() => swallowed.length > 0, {
        what: "the type query's rejection to reach the guard",
      });
      assert.equal(swallowed.length, 1);
      assert.ok(isTypeFetchFailure(swallowed[0]));
    } finally {
      globalThis.removeEventListener("unhandledrejection", observe);
      await sql.end({ timeout: 0 });
      await proxy.close();
    }
  },
);
