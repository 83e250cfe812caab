/**
 * Usage of the management commands (node, repset, sub, install, uninstall,
 * version): help exits 0, every mistake exits 2 with the error and the usage
 * before any connection is made. No server is needed.
 */
import assert from "node:assert/strict";
import { runSpock } from "../_harness/mod.ts";

/** A DSN nothing listens on: reaching it would exit 1, not 2. */
const DSN = "host=127.0.0.1 port=1 connect_timeout=1";

Deno.test("management help: groups and subcommands print usage and exit 0", async (t) => {
  const [root, node, create, subCreate] = await Promise.all([
    runSpock(["--help"]),
    runSpock(["node", "--help"]),
    runSpock(["repset", "add-table", "--help"]),
    runSpock(["help", "sub", "create"]),
  ]);
  await t.step("spock --help lists the groups", () => {
    assert.equal(root.code, 0, root.stderr);
    for (const name of ["install", "uninstall", "node", "repset", "sub", "version"]) {
      assert.match(root.stdout, new RegExp(`\\n  ${name} +\\S`), name);
    }
  });
  await t.step("spock node --help lists its subcommands", () => {
    assert.equal(node.code, 0, node.stderr);
    for (const word of ["create", "drop", "add-interface", "drop-interface", "info", "list"]) {
      assert.match(node.stdout, new RegExp(`\\n  ${word} +\\S`), word);
    }
  });
  await t.step("spock repset add-table --help shows the SQL arguments as flags", () => {
    assert.equal(create.code, 0, create.stderr);
    assert.match(
      create.stdout,
      /^Usage: spock repset add-table --set-name NAME --relation TABLE \[--synchronize-data\] \[--columns A,B\] \[--row-filter TEXT\] \[--no-include-partitions\] \(--dsn DSN \| --node NAME\) \[--json\]\n/,
    );
    assert.match(
      create.stdout,
      /--\[no-\]include-partitions +Include the partitions .*\(default true\)/,
    );
    assert.match(create.stdout, /spock\.repset_add_table\(\)/);
  });
  await t.step("spock help sub create documents every sub_create argument", () => {
    assert.equal(subCreate.code, 0, subCreate.stderr);
    for (
      const flag of [
        "--subscription-name NAME",
        "--provider-dsn DSN",
        "--replication-sets A,B",
        "--[no-]synchronize-structure",
        "--[no-]synchronize-data",
        "--forward-origins A,B",
        "--apply-delay INTERVAL",
        "--[no-]force-text-transfer",
        "--[no-]enabled",
        "--skip-schema A,B",
      ]
    ) assert.ok(subCreate.stdout.includes(flag), flag);
  });
});

Deno.test("management usage errors exit 2 with the error and the usage", async (t) => {
  const cases: [name: string, args: string[], error: string, usage: RegExp][] = [
    ["a group without a subcommand", ["node"], "Missing command", /^Usage: spock node </],
    [
      "an unknown subcommand",
      ["repset", "frobnicate"],
      'Unknown command "repset frobnicate"',
      /^Usage: spock repset </,
    ],
    [
      "a missing required argument",
      ["node", "drop", "--dsn", DSN],
      "Missing required option --node-name",
      /^Usage: spock node drop --node-name NAME/,
    ],
    [
      "an unknown flag",
      ["node", "info", "--dsn", DSN, "--node-nmae", "x"],
      "Unknown option '--node-nmae'",
      /^Usage: spock node info/,
    ],
    [
      "no target database",
      ["repset", "list"],
      "Missing required option --dsn or --node",
      /^Usage: spock repset list/,
    ],
    [
      "--x with --no-x",
      [
        "repset",
        "alter",
        "--dsn",
        DSN,
        "--set-name",
        "s",
        "--replicate-insert",
        "--no-replicate-insert",
      ],
      "--replicate-insert and --no-replicate-insert exclude each other",
      /^Usage: spock repset alter/,
    ],
    [
      "a bad LSN",
      ["sub", "alter-skiplsn", "--dsn", DSN, "--subscription-name", "s", "--lsn", "zz"],
      'Invalid --lsn "zz": ',
      /^Usage: spock sub alter-skiplsn/,
    ],
    [
      "bad JSON",
      ["node", "create", "--dsn", DSN, "--node-name", "n1", "--info", "{nope"],
      'Invalid --info "{nope": expected a JSON document',
      /^Usage: spock node create/,
    ],
    [
      "--node without a config file",
      ["node", "info", "--node", "n1", "--config", ""],
      "--node n1 needs a config file: pass --config FILE, create ./spock.yaml or set SPOCK_CONFIG",
      /^Usage: spock node info/,
    ],
    [
      "an invalid --dsn",
      ["install", "--dsn", "host=a port=notaport password=hunter2"],
      "Invalid DSN",
      /^Usage: spock install/,
    ],
    [
      "a bad --log-level",
      ["version", "--log-level", "loud"],
      'Invalid --log-level "loud": use trace, debug, info, warning, error, fatal',
      /^Usage: spock version/,
    ],
  ];
  const results = await Promise.all(
    cases.map(([, args]) => runSpock(args, { env: { SPOCK_CONFIG: "" }, cwd: "/" })),
  );
  for (const [i, [name, , error, usage]] of cases.entries()) {
    await t.step(name, () => {
      const result = results[i];
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, "");
      assert.ok(!result.stderr.includes("hunter2"), result.stderr);
      const [first, second] = result.stderr.split("\n");
      assert.ok(first.startsWith(`spock: ${error}`), first);
      assert.match(second, usage);
    });
  }
});
