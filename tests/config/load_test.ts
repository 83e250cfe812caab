/**
 * parseConfig() and loadConfig(): defaults, the example file, `${NAME}`
 * expansion, and every rejection with its code, key path, line and column.
 * Pure: no server.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  DEFAULT_ENGINE,
  findConfigFile,
  findNode,
  loadConfig,
  parseConfig,
  resolveLogSettings,
} from "../../mod/config/mod.ts";

const EXAMPLE = new URL("../../config.example.yaml", import.meta.url).pathname;

function rejects(text: string, expected: Partial<ConfigError>, env = {}): ConfigError {
  let caught: unknown;
  try {
    parseConfig(text, { file: "spock.yaml", env });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  for (const [key, value] of Object.entries(expected)) {
    assert.equal((caught as unknown as Record<string, unknown>)[key], value, `${key} of ${caught}`);
  }
  return caught;
}

Deno.test("parseConfig() gives every default for an empty document", () => {
  const config = parseConfig("", { file: "spock.yaml" });
  assert.deepEqual(config, {
    file: "spock.yaml",
    nodes: [],
    log: { level: "info", format: "text" },
    engine: DEFAULT_ENGINE,
    monitoring: { listen: undefined },
  });
  const listening = parseConfig('monitoring:\n  listen: "127.0.0.1:9187"\n', { file: "s.yaml" });
  assert.equal(listening.monitoring.listen, "127.0.0.1:9187");
  assert.equal(config.engine.conflict_resolution, "last_update_wins");
  assert.equal(config.engine.exception_behaviour, "transdiscard");
  assert.equal(config.engine.restart_delay_default, 5000);
});

Deno.test("loadConfig() reads config.example.yaml, which states every default", async () => {
  const config = await loadConfig(EXAMPLE, { env: { PGPASSWORD: "s3cret" } });
  assert.deepEqual(config.engine, DEFAULT_ENGINE);
  assert.deepEqual(config.nodes.map((n) => n.name), ["n1", "n2"]);
  assert.equal(
    config.nodes[1].dsn,
    "postgresql://spock:s3cret@db2.example.com:5432/app?sslmode=verify-full",
  );
  assert.deepEqual(config.nodes[1].interfaces.map((i) => i.name), ["n2_private"]);
  assert.deepEqual(config.log, { level: "info", format: "text" });
});

Deno.test("parseConfig() expands ${NAME} and $$", () => {
  const config = parseConfig(
    "nodes:\n  - name: n1\n    dsn: host=h password=${PW} options=$$x\n",
    { env: { PW: "pw" } },
  );
  assert.equal(config.nodes[0].dsn, "host=h password=pw options=$x");
});

Deno.test("parseConfig() rejects bad input naming the key, file, line and column", async (t) => {
  const cases: [string, string, Partial<ConfigError>, RegExp][] = [
    [
      "a YAML syntax error",
      "log:\n  level: [info\n",
      { code: "ERR_CONFIG_SYNTAX", file: "spock.yaml" },
      /^spock\.yaml:\d+:\d+: Invalid YAML/,
    ],
    [
      "a duplicate key",
      "log:\n  level: info\n  level: debug\n",
      { code: "ERR_CONFIG_DUPLICATE", line: 3, column: 3 },
      /^spock\.yaml:3:3: Duplicate key/,
    ],
    [
      "an unknown top-level key",
      "log: {}\nnodez: []\n",
      { code: "ERR_CONFIG_UNKNOWN_KEY", path: "nodez", line: 2, column: 1 },
      /^spock\.yaml:2:1: Unknown key "nodez": at the top level use nodes, log, engine, monitoring$/,
    ],
    [
      "a monitoring address that is not HOST:PORT",
      "monitoring:\n  listen: localhost\n",
      { code: "ERR_CONFIG_VALUE", path: "monitoring.listen", line: 2, column: 11 },
      /^spock\.yaml:2:11: Key "monitoring\.listen" must be HOST:PORT/,
    ],
    [
      "an unknown key in a node",
      "nodes:\n  - name: n1\n    dsn: host=a\n    nmae: x\n",
      { code: "ERR_CONFIG_UNKNOWN_KEY", path: "nodes[0].nmae", line: 4, column: 5 },
      /^spock\.yaml:4:5: Unknown key "nodes\[0\]\.nmae"/,
    ],
    [
      "a missing dsn",
      "nodes:\n  - name: n1\n",
      { code: "ERR_CONFIG_MISSING_KEY", path: "nodes[0]", line: 2, column: 5 },
      /Missing required key "nodes\[0\]\.dsn"/,
    ],
    [
      "a list where a mapping belongs",
      "log: [info]\n",
      { code: "ERR_CONFIG_TYPE", path: "log", line: 1, column: 6 },
      /Key "log" must be a mapping/,
    ],
    [
      "a number where a string belongs",
      "nodes:\n  - name: 7\n    dsn: host=a\n",
      { code: "ERR_CONFIG_TYPE", path: "nodes[0].name", line: 2, column: 11 },
      /Key "nodes\[0\]\.name" must be a string, got the number 7/,
    ],
    [
      "a string where a boolean belongs",
      "engine:\n  save_resolutions: yes\n",
      { code: "ERR_CONFIG_TYPE", path: "engine.save_resolutions", line: 2, column: 21 },
      /must be true or false, got a string/,
    ],
    [
      "an integer out of range",
      "engine:\n  restart_delay_default: 0\n",
      { code: "ERR_CONFIG_VALUE", path: "engine.restart_delay_default", line: 2 },
      /Key "engine\.restart_delay_default" must be 1 to \d+, got 0/,
    ],
    [
      "a sequence sync interval out of range",
      "engine:\n  sequence_sync_interval: -1\n",
      { code: "ERR_CONFIG_VALUE", path: "engine.sequence_sync_interval", line: 2 },
      /Key "engine\.sequence_sync_interval" must be 0 to 86400, got -1/,
    ],
    [
      "a bad enum value",
      "engine:\n  exception_behaviour: ignore\n",
      { code: "ERR_CONFIG_VALUE", path: "engine.exception_behaviour", line: 2, column: 24 },
      /must be one of discard, transdiscard, sub_disable, got "ignore"/,
    ],
    [
      "a bad log level",
      "log:\n  level: loud\n",
      { code: "ERR_CONFIG_VALUE", path: "log.level", line: 2, column: 10 },
      /Key "log\.level" must be one of trace, debug, info, warning, error, fatal/,
    ],
    [
      "an invalid DSN",
      "nodes:\n  - name: n1\n    dsn: host=a\n  - name: n2\n    dsn: 'host=b port=x'\n",
      { code: "ERR_CONFIG_DSN", path: "nodes[1].dsn", line: 5, column: 10 },
      /^spock\.yaml:5:10: Key "nodes\[1\]\.dsn" is not a valid DSN: /,
    ],
    [
      "an invalid interface DSN",
      "nodes:\n  - name: n1\n    dsn: host=a\n    interfaces:\n      - name: i\n        dsn: 'host'\n",
      { code: "ERR_CONFIG_DSN", path: "nodes[0].interfaces[0].dsn", line: 6 },
      /not a valid DSN/,
    ],
    [
      "a duplicate node name",
      "nodes:\n  - name: n1\n    dsn: host=a\n  - name: n1\n    dsn: host=b\n",
      { code: "ERR_CONFIG_DUPLICATE", path: "nodes[1].name", line: 4, column: 11 },
      /Duplicate node name "n1": also at nodes\[0\]/,
    ],
    [
      "an unset environment variable",
      "nodes:\n  - name: n1\n    dsn: host=a password=${NOPE}\n",
      { code: "ERR_CONFIG_ENV", path: "nodes[0].dsn", line: 3, column: 10 },
      /references the environment variable NOPE, which is not set/,
    ],
  ];
  for (const [name, text, expected, message] of cases) {
    await t.step(name, () => {
      const error = rejects(text, expected);
      assert.match(error.message, message);
    });
  }
});

Deno.test("parseConfig() never puts a password in an error", () => {
  const error = rejects(
    "nodes:\n  - name: n1\n    dsn: 'host=a password=hunter2 port=bad'\n",
    { code: "ERR_CONFIG_DSN" },
  );
  assert.ok(!error.message.includes("hunter2"), error.message);
  const fromEnv = rejects(
    "nodes:\n  - name: n1\n    dsn: 'password=${PW} port=bad'\n",
    { code: "ERR_CONFIG_DSN" },
    { PW: "hunter2" },
  );
  assert.ok(!fromEnv.message.includes("hunter2"), fromEnv.message);
});

Deno.test("loadConfig() names a file it cannot read", async () => {
  await assert.rejects(loadConfig("/nonexistent/spock.yaml"), (error: ConfigError) => {
    assert.equal(error.code, "ERR_CONFIG_READ");
    assert.match(error.message, /^\/nonexistent\/spock\.yaml: Cannot read the config file/);
    return true;
  });
});

Deno.test("resolveLogSettings() applies defaults < file < environment < flags", () => {
  const config = parseConfig("log:\n  level: debug\n  format: json\n");
  assert.deepEqual(resolveLogSettings(undefined), { level: "info", format: "text" });
  assert.deepEqual(resolveLogSettings(config), { level: "debug", format: "json" });
  const env = { SPOCK_LOG_LEVEL: "warning", SPOCK_LOG_FORMAT: "text" };
  assert.deepEqual(resolveLogSettings(config, { env }), { level: "warning", format: "text" });
  assert.deepEqual(
    resolveLogSettings(config, { env, flags: { level: "error" } }),
    { level: "error", format: "text" },
  );
  assert.throws(
    () => resolveLogSettings(config, { flags: { level: "loud" } }),
    /Invalid --log-level "loud"/,
  );
  assert.throws(
    () => resolveLogSettings(config, { env: { SPOCK_LOG_FORMAT: "xml" } }),
    /Invalid SPOCK_LOG_FORMAT "xml"/,
  );
});

Deno.test("findConfigFile() prefers --config, then ./spock.yaml, then $SPOCK_CONFIG", async () => {
  const dir = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir);
    assert.equal(findConfigFile({ env: {} }), undefined);
    assert.equal(findConfigFile({ env: { SPOCK_CONFIG: "/etc/s.yaml" } }), "/etc/s.yaml");
    await Deno.writeTextFile("spock.yaml", "");
    assert.equal(findConfigFile({ env: { SPOCK_CONFIG: "/etc/s.yaml" } }), "spock.yaml");
    assert.equal(findConfigFile({ flag: "x.yaml", env: {} }), "x.yaml");
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findNode() finds a node by name and lists the known ones otherwise", () => {
  const config = parseConfig("nodes:\n  - name: n1\n    dsn: host=a\n", { file: "s.yaml" });
  assert.equal(findNode(config, "n1").dsn, "host=a");
  assert.throws(
    () => findNode(config, "n9"),
    /No node named "n9" in the config file \(nodes: "n1"\)/,
  );
});
