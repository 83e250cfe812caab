/**
 * `spock run` fails fast on a configuration that cannot work (no catalog, no
 * local node, a wrong password: exit 1 with the reason), waits for a server
 * that is down (saying so on every try), names a `--dsn` node as its
 * catalog does, and serves /metrics and /health with --metrics-listen.
 */
import assert from "node:assert/strict";
import { freePorts, pgTest, pollUntil, runSpock } from "../_harness/mod.ts";
import { CATALOG_VERSION, installCatalog } from "../../mod/catalog/mod.ts";
import { SpockProcess } from "../_harness/spock_process.ts";

pgTest("spock run exits 1 at start when a node cannot be served", async (_t, cluster) => {
  const admin = cluster.connect();
  await admin.unsafe("create database nocat");
  await admin.unsafe("create database nonode");
  await admin.unsafe("create database oldcat");
  await admin.unsafe("create role runner login password 'right'");
  await admin.end();
  const nonode = cluster.connect({ database: "nonode" });
  await installCatalog(nonode, { programVersion: "test" });
  const oldcat = cluster.connect({ database: "oldcat" });
  await installCatalog(oldcat, { programVersion: "test", targetVersion: CATALOG_VERSION - 1 });
  await oldcat.end();
  const cases: Array<[string, RegExp]> = [
    [cluster.dsn({ dbname: "nocat" }), /spock is not installed there; run 'spock install/],
    [
      cluster.dsn({ dbname: "oldcat" }),
      new RegExp(
        `its catalog is version ${CATALOG_VERSION - 1}, this program's is ${CATALOG_VERSION}; ` +
          `run 'spock install --dsn "[^"]+dbname=oldcat[^"]*"' to upgrade it`,
      ),
    ],
    [cluster.dsn({ dbname: "nonode" }), /it is not a spock node; create one with/],
    [
      cluster.dsn({ dbname: "nonode", user: "runner", password: "wrong" }),
      /password authentication failed for user "runner" \(28P01\)/,
    ],
    [cluster.dsn({ dbname: "missing" }), /database "missing" does not exist \(3D000\)/],
  ];
  for (const [dsn, expected] of cases) {
    const started = performance.now();
    const result = await runSpock(["run", "--dsn", dsn]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^spock run: Cannot serve /m);
    assert.match(result.stderr, expected);
    assert.doesNotMatch(result.stderr, /wrong/);
    assert.ok(performance.now() - started < 20_000, "it fails at start");
  }
}, { hba: ["host all runner 127.0.0.1/32 scram-sha-256"] });

pgTest("spock run waits for a server that is down and names the node", async (_t, cluster) => {
  const port = freePorts(1)[0];
  const down = new SpockProcess([
    "run",
    "--dsn",
    `host=127.0.0.1 port=${port} dbname=app user=postgres`,
  ]);
  try {
    await pollUntil(
      () => (down.stderr.match(/Cannot reach the served database at /g) ?? []).length >= 2,
      {
        what: "two tries at the server that is down",
      },
    );
    assert.match(down.stderr, /\(attempt 2\).*trying again in 1000 ms/);
  } finally {
    const result = await down.interrupt("SIGTERM");
    assert.equal(result.code, 0);
  }

  const sql = cluster.connect();
  await installCatalog(sql, { programVersion: "test" });
  await sql`select spock.node_create('n_named', ${cluster.dsn()})`;
  const metricsPort = freePorts(1)[0];
  const up = new SpockProcess([
    "run",
    "--dsn",
    cluster.dsn(),
    "--log-format",
    "json",
    "--metrics-listen",
    `127.0.0.1:${metricsPort}`,
  ]);
  try {
    await pollUntil(() => /Serving node/.test(up.stderr), { what: "the daemon to start" });
    const serving = up.stderr.split("\n").filter((line) => line.includes("Serving node"))
      .map((line) => JSON.parse(line));
    assert.equal(serving[0].properties.node, "n_named");
    // The monitoring server, with the compile task's permissions: no subscription, healthy.
    const health = await fetch(`http://127.0.0.1:${metricsPort}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { healthy: true, problems: [] });
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^spock_node_up\{node="n_named"\} 1$/m);
  } finally {
    assert.equal((await up.interrupt("SIGTERM")).code, 0);
  }
});

Deno.test("spock run refuses a --metrics-listen that is not HOST:PORT", async () => {
  for (const value of ["9187", "localhost:0", "localhost:70000", "[::1:9187"]) {
    const result = await runSpock(["run", "--dsn", "host=127.0.0.1", "--metrics-listen", value]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--metrics-listen .* is not HOST:PORT, \[IPv6\]:PORT or :PORT/);
  }
});
