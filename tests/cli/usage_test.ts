/**
 * The command line itself: help for the program and for `stream` (exit 0 on
 * stdout), and usage mistakes, which exit 2 with the error on the first line
 * of stderr followed by the usage. No server is needed: usage is checked
 * before connecting.
 */
import assert from "node:assert/strict";
import { runSpock } from "../_harness/mod.ts";

/** A DSN nothing listens on: reaching it would fail with exit code 1, not 2. */
const DSN = "host=127.0.0.1 port=1";

Deno.test("spock --help and spock stream --help print usage and exit 0", async (t) => {
  const [root, stream] = await Promise.all([
    runSpock(["--help"]),
    runSpock(["stream", "--help"]),
  ]);
  await t.step("spock --help lists the commands", () => {
    assert.equal(root.code, 0, root.stderr);
    assert.equal(root.stderr, "");
    assert.match(root.stdout, /^spock \S+: /);
    assert.match(root.stdout, /\nUsage: spock <command> \[options\]\n/);
    assert.match(root.stdout, /\n {2}stream +Print the decoded changes/);
    assert.match(root.stdout, /\n {2}status +Show a node's subscriptions/);
    assert.match(root.stdout, /\n {2}conflicts +Show the conflicts a node resolved/);
  });
  await t.step("spock stream --help lists every flag", () => {
    assert.equal(stream.code, 0, stream.stderr);
    assert.equal(stream.stderr, "");
    assert.match(stream.stdout, /^Usage: spock stream --dsn DSN --slot NAME --publication P/);
    const flags = [
      "--dsn DSN",
      "--slot NAME",
      "--publication NAME",
      "--create-slot",
      "--temporary",
      "--start LSN",
      "--format FORMAT",
      "--proto-version N",
      "--binary",
      "--messages",
      "--streaming",
      "--two-phase",
      "--capture FILE",
      "--replay FILE",
      "--help",
      "--log-level LEVEL",
    ];
    for (const flag of flags) assert.ok(stream.stdout.includes(flag), `help lists ${flag}`);
  });
});

Deno.test("spock nosuchcommand exits 2 naming the command", async () => {
  const result = await runSpock(["nosuchcommand"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  const [first, ...rest] = result.stderr.trimEnd().split("\n");
  assert.equal(first, 'spock: Unknown command "nosuchcommand"');
  assert.deepEqual(rest, ["Usage: spock <command> [options]", "Run 'spock --help' for more."]);
});

Deno.test("spock stream usage errors exit 2 with the error and the usage", async (t) => {
  const cases: [name: string, args: string[], error: string][] = [
    [
      "an unknown flag",
      ["--slot", "s", "--publication", "p", "--bogus"],
      `Unknown option '--bogus'`,
    ],
    ["a missing --slot", ["--publication", "p"], "Missing required option --slot"],
    ["a missing --publication", ["--slot", "s"], "Missing required option --publication"],
    [
      "--temporary without --create-slot",
      ["--slot", "s", "--publication", "p", "--temporary"],
      "--temporary needs --create-slot",
    ],
    [
      "a bad --start LSN",
      ["--slot", "s", "--publication", "p", "--start", "zz/1"],
      'Cannot parse LSN "zz/1": expected two hexadecimal numbers like "16/B374D848"',
    ],
    [
      "a bad --format",
      ["--slot", "s", "--publication", "p", "--format", "xml"],
      'Invalid --format "xml": use jsonl or pretty',
    ],
    [
      "a bad --proto-version",
      ["--slot", "s", "--publication", "p", "--proto-version", "5"],
      'Invalid --proto-version "5": use 1, 2, 3 or 4',
    ],
  ];
  const results = await Promise.all(
    cases.map(([, args]) => runSpock(["stream", "--dsn", DSN, ...args])),
  );
  for (const [i, [name, , error]] of cases.entries()) {
    await t.step(name, () => {
      const result = results[i];
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, "");
      const [first, second, ...rest] = result.stderr.trimEnd().split("\n");
      assert.equal(first, `spock: ${error}`);
      assert.match(second, /^Usage: spock stream --dsn DSN /);
      assert.equal(rest.at(-1), "Run 'spock stream --help' for more.");
    });
  }
});

Deno.test("spock run without a node to serve exits 2 saying how to name one", async () => {
  const empty = await Deno.makeTempDir();
  try {
    const result = await runSpock(["run"], { cwd: empty, env: { SPOCK_CONFIG: "" } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Nothing to serve: pass --dsn DSN, or a config file with nodes/);
    assert.match(result.stderr, /Usage: spock run/);
    const bad = await runSpock(["run", "--dsn", "host=x port=notaport"], { cwd: empty });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /port/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
