/**
 * The README's walkthrough, run as written: its `sh` block, in its order, as
 * one bash script (`set -e`: every command must succeed), with `spock` being
 * this program and the README's two DSNs pointing at two databases of a test
 * server. The block ends by reading the subscriber's table and running
 * `spock status`, whose exit code is the health check.
 */
import assert from "node:assert/strict";
import { COMPILE_PERMISSIONS, pgTest } from "../_harness/mod.ts";

const README = new URL("../../README.md", import.meta.url);
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The first `sh` block after the walkthrough's heading. */
function walkthroughScript(readme: string): string {
  const section = readme.slice(readme.indexOf("### Walkthrough"));
  const match = /```sh\n([\s\S]*?)\n```/.exec(section);
  if (match === null) throw new Error("The README has no walkthrough block");
  return match[1];
}

/** A directory holding a `spock` that runs main.ts as `deno task compile` builds it. */
async function spockOnPath(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "spock-bin-" });
  const args = ["run", "--quiet", ...COMPILE_PERMISSIONS, MAIN].map((arg) => `'${arg}'`);
  await Deno.writeTextFile(
    `${dir}/spock`,
    `#!/bin/sh\nexec '${Deno.execPath()}' ${args.join(" ")} "$@"\n`,
  );
  await Deno.chmod(`${dir}/spock`, 0o755);
  return dir;
}

pgTest("the README walkthrough works as written, in its order", async (_t, cluster) => {
  const admin = cluster.connect();
  await admin`create database db1`;
  await admin`create database db2`;
  await admin.end();
  const script = walkthroughScript(await Deno.readTextFile(README))
    .replaceAll("host=db1 dbname=app", cluster.dsn({ dbname: "db1" }))
    .replaceAll("host=db2 dbname=app", cluster.dsn({ dbname: "db2" }));
  const bin = await spockOnPath();
  try {
    const out = await new Deno.Command("bash", {
      args: ["-c", `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n${script}`],
      env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `the walkthrough failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /^ +1 \| ana +\| +90$/m, "the update reached the subscriber");
    assert.match(stdout, /^ +2 \| bo +\| +50$/m, "the initial copy did");
    assert.match(stdout, /^subscription1 +replicating +provider1 /m);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});
