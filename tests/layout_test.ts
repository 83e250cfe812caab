/**
 * The tree is the data path: checks the import edges between mod/ folders
 * (STYLE.md §1) from `deno info --json`, so a shortcut across layers fails CI;
 * that `_` files stay private to their folder in mod/, tests/, bench/, demo/
 * and local_pg/; that only tests import tests/, and the server launcher
 * (local_pg/) nothing of the project's but itself, without top-level await;
 * and that the decoder does no I/O.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const MOD = new URL("mod/", ROOT).href;

/** Which mod/ folders each folder may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  pg: [],
  pgoutput: ["pg"],
  transport: ["pg"],
  catalog: ["pg"],
  config: ["pg"],
  apply: ["pgoutput", "catalog", "pg"],
  sync: ["pgoutput", "catalog", "pg", "apply", "transport"],
  daemon: ["pg", "pgoutput", "transport", "catalog", "config", "apply", "sync"],
  cluster: ["pg", "pgoutput", "catalog", "sync"],
  cli: ["pg", "pgoutput", "transport", "catalog", "config", "apply", "sync", "daemon", "cluster"],
};
const MAY_USE_POSTGRES = new Set(["transport", "apply", "sync", "catalog", "daemon", "cluster"]);
const MUST_NOT_LOG = new Set(["pg", "pgoutput"]);

interface Edge {
  from: string;
  to: string;
}

/** The import edges of the module graph below `root` (a path or file URL), from `deno info --json`. */
async function graphEdges(root: string): Promise<Edge[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: new URL(".", ROOT).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout));
  const edges: Edge[] = [];
  for (const module of graph.modules) {
    for (const dependency of module.dependencies ?? []) {
      const to = dependency.code?.specifier ?? dependency.type?.specifier;
      if (to) edges.push({ from: module.specifier, to });
    }
  }
  return edges;
}

async function importEdges(): Promise<Edge[]> {
  const roots = ["main.ts"];
  for await (const entry of Deno.readDir(new URL("mod/", ROOT))) {
    if (entry.isDirectory) roots.push(`mod/${entry.name}/mod.ts`);
  }
  return (await Promise.all(roots.map(graphEdges))).flat();
}

function folderOf(specifier: string): string | undefined {
  if (!specifier.startsWith(MOD)) return undefined;
  return specifier.slice(MOD.length).split("/")[0];
}

const edges = await importEdges();

Deno.test("mod/ folders import only the folders STYLE.md allows", () => {
  const violations = edges.filter(({ from, to }) => {
    const source = folderOf(from);
    const target = folderOf(to);
    return source && target && source !== target && !(ALLOWED[source] ?? []).includes(target);
  }).map(({ from, to }) => `${from.slice(MOD.length)} → ${to.slice(MOD.length)}`);
  assert.deepEqual([...new Set(violations)], []);
});

Deno.test("a folder is imported from outside only through its mod.ts", () => {
  const violations = edges.filter(({ from, to }) => {
    const target = folderOf(to);
    return target && folderOf(from) !== target && !to.endsWith(`/mod/${target}/mod.ts`);
  }).map(({ from, to }) => `${from} → ${to}`);
  assert.deepEqual([...new Set(violations)], []);
});

Deno.test("only transport, apply, sync, catalog and daemon import npm:postgres", () => {
  const users = edges.filter(({ to }) => to.startsWith("npm:") && /\/?postgres@/.test(to))
    .map(({ from }) => folderOf(from) ?? from)
    .filter((folder) => !MAY_USE_POSTGRES.has(folder));
  assert.deepEqual([...new Set(users)], []);
});

Deno.test("pg and pgoutput never log", () => {
  const loggers = edges.filter(({ from, to }) =>
    MUST_NOT_LOG.has(folderOf(from) ?? "") && to.includes("logtape")
  )
    .map(({ from }) => from);
  assert.deepEqual(loggers, []);
});

Deno.test("main.ts imports only the CLI's mod.ts and LogTape", () => {
  const imports = edges.filter(({ from }) => from.endsWith("/main.ts") && !from.startsWith(MOD))
    .map(({ to }) => to.startsWith(MOD) ? to.slice(MOD.length) : to.replace(/@[\d.]+$/, ""));
  assert.deepEqual([...new Set(imports)].sort(), ["cli/mod.ts", "npm:@logtape/logtape"]);
});

/** Every .ts file under `folder` (relative to the root), recursively. */
async function sourcesUnder(folder: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(`${folder}/`, ROOT))) {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory) files.push(...await sourcesUnder(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

const OUTSIDE_MOD = ["tests", "bench", "demo", "local_pg"];

/** Import edges of every module outside mod/ (one `deno info` of a root importing them all). */
async function outsideEdges(): Promise<Edge[]> {
  const files = (await Promise.all(OUTSIDE_MOD.map(sourcesUnder))).flat();
  const root = await Deno.makeTempFile({ dir: new URL(".", ROOT).pathname, suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      root,
      files.map((file) => `import "${new URL(file, ROOT).href}";`).join("\n") + "\n",
    );
    const rootUrl = new URL(`file://${root}`).href;
    return (await graphEdges(root)).filter(({ from }) => from !== rootUrl);
  } finally {
    await Deno.remove(root);
  }
}

const allEdges = [...edges, ...await outsideEdges()];

/** The folder of a file URL, and whether its file name starts with `_` (folder-private). */
function privateFile(specifier: string): { folder: string; private: boolean } | undefined {
  if (!specifier.startsWith("file:")) return undefined;
  const slash = specifier.lastIndexOf("/");
  return { folder: specifier.slice(0, slash), private: specifier[slash + 1] === "_" };
}

Deno.test("a folder's _ files are imported only from that folder (mod/ and outside it)", () => {
  const violations = allEdges.filter(({ from, to }) => {
    const target = privateFile(to);
    return target?.private && privateFile(from)?.folder !== target.folder;
  }).map(({ from, to }) => `${from.slice(ROOT.href.length)} → ${to.slice(ROOT.href.length)}`);
  assert.deepEqual([...new Set(violations)], []);
});

/** A source file's text without its comments. */
async function codeOf(file: string): Promise<string> {
  return (await Deno.readTextFile(new URL(file, ROOT)))
    .replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

/** The top-level folder of a file URL of this checkout. */
function topFolder(specifier: string): string | undefined {
  if (!specifier.startsWith(ROOT.href)) return undefined;
  return specifier.slice(ROOT.href.length).split("/")[0];
}

Deno.test("only tests import tests/; local_pg/ imports nothing of the project but itself", () => {
  const violations = allEdges.filter(({ from, to }) => {
    const source = topFolder(from);
    const target = topFolder(to);
    if (target === undefined || source === target) return false;
    return target === "tests" || (source === "local_pg" && !to.startsWith("npm:"));
  }).map(({ from, to }) => `${from.slice(ROOT.href.length)} → ${to.slice(ROOT.href.length)}`);
  assert.deepEqual([...new Set(violations)], []);
});

Deno.test("local_pg/ has no top-level await (importing it starts nothing)", async () => {
  const found: string[] = [];
  for (const file of await sourcesUnder("local_pg")) {
    const lines = (await codeOf(file)).split("\n").filter((line) => /^\S.*\bawait\b/.test(line));
    found.push(...lines.map((line) => `${file}: ${line}`));
  }
  assert.deepEqual(found, []);
});

Deno.test("pgoutput does no I/O: it imports only itself and pg, and has no async code or clocks", async () => {
  const imports = edges.filter(({ from, to }) =>
    folderOf(from) === "pgoutput" && folderOf(to) !== "pgoutput" && folderOf(to) !== "pg"
  ).map(({ from, to }) => `${from.slice(MOD.length)} → ${to}`);
  assert.deepEqual([...new Set(imports)], []);
  const found: string[] = [];
  for (const file of await sourcesUnder("mod/pgoutput")) {
    const code = await codeOf(file);
    for (
      const pattern of [
        /\bDeno\./,
        /\bawait\b/,
        /\basync\b/,
        /\bDate\.now\b/,
        /\bperformance\./,
        /\bset(Timeout|Interval)\b/,
        /\bfetch\(/,
      ]
    ) {
      if (pattern.test(code)) found.push(`${file}: ${pattern.source}`);
    }
  }
  assert.deepEqual(found, []);
});
