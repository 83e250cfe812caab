/**
 * `spock install`, `uninstall` and `version` against real servers, targeting
 * the database by --dsn and by --node through a config file; --json output;
 * config and connection failures exit 1 without printing a password.
 */
import assert from "node:assert/strict";
import { pgTest, runSpock } from "../_harness/mod.ts";
import { CATALOG_VERSION } from "../../mod/catalog/mod.ts";

pgTest("spock install, version and uninstall", async (t, cluster) => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/spock.yaml`;
  const dsn = cluster.dsn();
  await Deno.writeTextFile(
    config,
    `log:\n  level: warning\nnodes:\n  - name: n1\n    dsn: "${dsn} password=\${TEST_PW}"\n`,
  );
  const env = { TEST_PW: "hunter2" };
  const spock = (args: string[]) => runSpock(args, { env });
  try {
    await t.step("before install, listings say to install first", async () => {
      const result = await spock(["node", "list", "--dsn", dsn]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^spock node list: .*spock.*\n/);
      assert.match(
        result.stderr,
        /is not this program's: spock is not installed there; run 'spock install --dsn "[^"]+"'/,
      );
    });

    await t.step("install --node resolves the DSN through --config", async () => {
      const result = await spock(["install", "--config", config, "--node", "n1"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        result.stdout,
        `Installed spock catalog version ${CATALOG_VERSION} in ${dsn} password=********\n`,
      );
      assert.ok(!result.stderr.includes("hunter2"));
    });

    await t.step("install again changes nothing (--json)", async () => {
      const result = await spock(["install", "--dsn", dsn, "--json"]);
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout);
      assert.deepEqual(
        [report.from, report.to, report.changed],
        [CATALOG_VERSION, CATALOG_VERSION, false],
      );
    });

    await t.step("a function changed by hand is refused until install puts it back", async () => {
      const sql = cluster.connect();
      try {
        await sql.unsafe(
          "create or replace function spock.spock_version_num() returns integer " +
            "language sql as 'select 0'",
        );
        const refused = await spock(["node", "list", "--dsn", dsn]);
        assert.equal(refused.code, 1);
        assert.match(
          refused.stderr,
          /SQL API functions differ from what spock install created \(changed by hand\?\); run 'spock install --dsn "[^"]+"' to put them back/,
        );
        const [before] = await sql`select spock.spock_version_num() as n`;
        assert.equal(before.n, 0, "a refused command changed nothing");
        const repaired = await spock(["install", "--dsn", dsn]);
        assert.equal(repaired.code, 0, repaired.stderr);
        assert.match(
          repaired.stdout,
          /^Re-created the SQL API of spock catalog version \d+ .*had been changed/,
        );
        const [after] = await sql`select spock.spock_version_num() as n`;
        assert.notEqual(after.n, 0);
        assert.equal((await spock(["node", "list", "--dsn", dsn])).code, 0);
      } finally {
        await sql.end();
      }
    });

    await t.step(
      "an API installed by another build of spock is refused and re-created",
      async () => {
        const sql = cluster.connect();
        try {
          await sql`update spock._catalog set api_source = 'other', program_version = '0.0.1'`;
          const refused = await spock(["status", "--dsn", dsn]);
          assert.equal(refused.code, 1);
          assert.match(
            refused.stderr,
            /its SQL API \(catalog version \d+\) was installed by spock 0\.0\.1, whose functions differ from this program's; run 'spock install --dsn/,
          );
          const repaired = await spock(["install", "--dsn", dsn, "--json"]);
          assert.equal(repaired.code, 0, repaired.stderr);
          const report = JSON.parse(repaired.stdout);
          assert.deepEqual([report.changed, report.apiReinstalled], [true, "api_changed"]);
          assert.equal(
            (await spock(["install", "--dsn", dsn, "--json"])).stdout.includes('"changed":false'),
            true,
          );
        } finally {
          await sql.end();
        }
      },
    );

    await t.step("version reports the installed catalog", async () => {
      const [text, json, bare] = await Promise.all([
        spock(["version", "--dsn", dsn]),
        spock(["version", "--config", config, "--node", "n1", "--json"]),
        spock(["version"]),
      ]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(
        text.stdout,
        new RegExp(`^spock \\S+ \\(deno .*\\)\\ncatalog: version ${CATALOG_VERSION} installed `),
      );
      assert.equal(json.code, 0, json.stderr);
      const report = JSON.parse(json.stdout);
      assert.equal(report.installed_catalog_version, CATALOG_VERSION);
      assert.equal(report.catalog_version, CATALOG_VERSION);
      assert.equal(bare.code, 0, bare.stderr);
      assert.doesNotMatch(bare.stdout, /catalog:/);
    });

    await t.step("--node naming no configured node is a usage error", async () => {
      const result = await spock(["version", "--config", config, "--node", "n9"]);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        /^spock: .*No node named "n9" in the config file \(nodes: "n1"\)/,
      );
    });

    await t.step("an invalid config file exits 1 with file:line:column", async () => {
      const bad = `${dir}/bad.yaml`;
      await Deno.writeTextFile(bad, "nodes:\n  - name: n1\n    dsn: host=a\n    port: 5\n");
      const result = await spock(["version", "--config", bad]);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `spock version: ${bad}:4:5: Unknown key "nodes[0].port": in "nodes[0]" use name, dsn, interfaces\n`,
      );
    });

    await t.step("$SPOCK_CONFIG is used when there is no --config", async () => {
      const result = await runSpock(["version", "--node", "n1", "--json"], {
        env: { ...env, SPOCK_CONFIG: config },
        cwd: dir,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).installed_catalog_version, CATALOG_VERSION);
    });

    await t.step("an unreachable server exits 1, masking the password", async () => {
      const result = await spock(["install", "--dsn", "host=127.0.0.1 port=1 password=hunter2"]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /^spock install: Cannot connect to host=127\.0\.0\.1 port=1 password=\*{8}: /,
      );
      assert.ok(!result.stderr.includes("hunter2"));
    });

    await t.step("uninstall removes it; version then says not installed", async () => {
      const result = await spock(["uninstall", "--dsn", dsn, "--json"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).removed, true);
      const again = await spock(["uninstall", "--dsn", dsn]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, `spock is not installed in ${dsn}\n`);
      const version = await spock(["version", "--dsn", dsn]);
      assert.match(version.stdout, /\ncatalog: not installed/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
