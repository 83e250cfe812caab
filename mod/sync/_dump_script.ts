/**
 * Cleaning a plain pg_dump script before it runs on the subscriber: psql
 * meta-commands, event triggers of excluded schemas, and table triggers of
 * theirs that the subscriber may have made itself. A small lexer finds
 * the lines that start outside literals and comments. Running pg_dump is
 * `structure_sync.ts`'s.
 */
import { getLogger } from "@logtape/logtape";
import { quoteIdent } from "../pg/mod.ts";
import { StructureSyncError } from "./errors.ts";

const log = getLogger(["spock", "sync"]);

const RESTRICT_LINE = /^\\(?:un)?restrict [0-9A-Za-z]+\r?$/;
const TOC_HEADER = /^-- (?:Data for )?Name: (.*); Type: ([A-Z ]+); Schema: /;

/** One pg_dump TOC entry of a plain script: its header's name and type, and its lines. */
interface ScriptEntry {
  name?: string;
  type?: string;
  lines: string[];
}

/**
 * Removes `\restrict`/`\unrestrict` lines, refuses other meta-commands,
 * drops event triggers (and their comments) that run a function of an
 * excluded schema, and makes table triggers running one `CREATE OR REPLACE`
 * (spock's read-only guard may be on the table already, put there by a
 * daemon started between the two sections). Works on lines outside literals
 * and comments only, so a
 * function body with a line starting with `\` stays as it is.
 */
export function cleanDumpScript(script: string, excludedSchemas: string[]): string {
  const lines = script.split("\n");
  const topLevel = topLevelLines(script, lines.length);
  const entries: ScriptEntry[] = [{ lines: [] }];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index];
    if (topLevel[index] && line.startsWith("\\")) {
      if (RESTRICT_LINE.test(line)) continue;
      const command = line.split(/\s/, 1)[0];
      throw new StructureSyncError(
        `Cannot use the pg_dump script: line ${index + 1} holds the psql meta-command ` +
          `"${command}", which spock does not run`,
        { code: "ERR_SYNC_DUMP_META" },
      );
    }
    const header = topLevel[index] && topLevel[index + 1] && line === "--"
      ? TOC_HEADER.exec(lines[index + 1] ?? "")
      : null;
    if (header) entries.push({ name: header[1], type: header[2], lines: [] });
    entries.at(-1)!.lines.push(line);
  }
  const dropped = new Set<string>();
  for (const entry of entries) {
    if (entry.type === "TRIGGER") replaceableTrigger(entry, excludedSchemas);
    if (entry.type !== "EVENT TRIGGER" || entry.name === undefined) continue;
    const text = entry.lines.join("\n");
    const schema = excludedSchemas.find((name) => runsFunctionOf(text, name));
    if (schema === undefined) continue;
    log.info("Leaving out event trigger {name}: its function is in excluded schema {schema}", {
      name: entry.name,
      schema,
    });
    dropped.add(entry.name);
    dropped.add(`EVENT TRIGGER ${entry.name}`);
    dropped.add(`EVENT TRIGGER ${quoteIdent(entry.name)}`);
  }
  return entries
    .filter((entry) => entry.name === undefined || !dropped.has(entry.name))
    .map((entry) => entry.lines.join("\n"))
    .join("\n");
}

/** Makes a table trigger entry that runs a function of an excluded schema `CREATE OR REPLACE`. */
function replaceableTrigger(entry: ScriptEntry, excludedSchemas: string[]): void {
  const text = entry.lines.join("\n");
  if (!excludedSchemas.some((name) => runsFunctionOf(text, name))) return;
  const create = "CREATE TRIGGER ";
  const at = entry.lines.findIndex((line) => line.startsWith(create));
  if (at >= 0) {
    entry.lines[at] = `CREATE OR REPLACE TRIGGER ${entry.lines[at].slice(create.length)}`;
  }
}

function runsFunctionOf(text: string, schema: string): boolean {
  const spellings = [quoteIdent(schema)];
  if (/^[a-z_][a-z0-9_$]*$/.test(schema)) spellings.push(schema);
  return spellings.some((spelling) =>
    text.includes(`EXECUTE FUNCTION ${spelling}.`) ||
    text.includes(`EXECUTE PROCEDURE ${spelling}.`)
  );
}

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

/**
 * For each line of `script`, whether it starts outside any string literal,
 * quoted identifier, dollar-quoted body or block comment: only there can
 * psql see a meta-command or pg_dump a TOC header.
 */
function topLevelLines(script: string, lineCount: number): boolean[] {
  const topLevel = new Array<boolean>(lineCount).fill(false);
  topLevel[0] = true;
  // pg_dump emits `SET standard_conforming_strings = off;` only for servers running so.
  const backslashEscapes = /^SET standard_conforming_strings = off;$/m.test(script);
  let line = 0;
  let i = 0;
  const skipTo = (end: number) => {
    for (
      let at = script.indexOf("\n", i);
      at !== -1 && at < end;
      at = script.indexOf("\n", at + 1)
    ) {
      line++;
    }
    i = end;
  };
  while (i < script.length) {
    const char = script[i];
    const previous = i > 0 ? script[i - 1] : "";
    if (char === "\n") {
      topLevel[++line] = true;
      i++;
    } else if (char === "-" && script[i + 1] === "-") {
      const end = script.indexOf("\n", i);
      i = end === -1 ? script.length : end;
    } else if (char === "/" && script[i + 1] === "*") {
      let depth = 0;
      let at = i;
      do {
        const open = script.indexOf("/*", at);
        const close = script.indexOf("*/", at);
        if (close === -1) {
          at = script.length;
          break;
        }
        if (open !== -1 && open < close) {
          depth++;
          at = open + 2;
        } else {
          depth--;
          at = close + 2;
        }
      } while (depth > 0);
      skipTo(at);
    } else if (char === "'" || char === '"') {
      const escapes = char === "'" &&
        (backslashEscapes ||
          (/[eE]/.test(previous) && !IDENT_CHAR.test(i > 1 ? script[i - 2] : "")));
      let at = i + 1;
      while (at < script.length) {
        if (escapes && script[at] === "\\") at += 2;
        else if (script[at] === char && script[at + 1] === char) at += 2;
        else if (script[at] === char) break;
        else at++;
      }
      skipTo(Math.min(at + 1, script.length));
    } else if (char === "$" && !IDENT_CHAR.test(previous)) {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(script)?.[0];
      if (tag === undefined) {
        i++;
        continue;
      }
      const close = script.indexOf(tag, i + tag.length);
      skipTo(close === -1 ? script.length : close + tag.length);
    } else {
      i++;
    }
  }
  return topLevel;
}

/** Duplicate-object SQLSTATEs: the subscriber already has what the script creates. */
