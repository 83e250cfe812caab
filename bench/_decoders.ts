/**
 * The decoders the bench times, each a plain loop over every message of the
 * capture with fresh decoder state: spock's stream decoder alone, spock plus
 * its text layer, spock plus pg-types values, and
 * pg-logical-replication's pgoutput parser. Timing is `_measure.ts`'s.
 */
import type { Buffer } from "node:buffer";
import { type Pgoutput, PgoutputPlugin } from "pg-logical-replication";
import { PgoutputStreamDecoder, type Tuple, tupleText } from "../mod/pgoutput/mod.ts";
import { PUBLICATION } from "./_workload.ts";

/** What one pass over the capture saw; equal across decoders for the same bytes. */
export interface DecodeCounts {
  messages: number;
  /** Insert, Update and Delete messages. */
  rowChanges: number;
}

/** A pg-types text parser, e.g. `parseInt` for int4 or `parseDate` for timestamptz. */
export type TypeParser = (text: string) => unknown;

/** A column's converted value: `undefined` for an unchanged TOASTed value. */
type Value = unknown;

/**
 * The last values built, kept where the optimizer cannot prove them unused,
 * so building them cannot be optimized away.
 */
export let lastValues: Value[] = [];

/** (a) spock's `PgoutputStreamDecoder` alone: column values stay byte subarrays. */
export function decodeWithSpock(
  payloads: readonly Uint8Array[],
  protoVersion: number,
): DecodeCounts {
  const decoder = new PgoutputStreamDecoder(protoVersion);
  let rowChanges = 0;
  for (let i = 0; i < payloads.length; i++) {
    const type = decoder.decode(payloads[i]).type;
    if (type === "insert" || type === "update" || type === "delete") rowChanges++;
  }
  return { messages: payloads.length, rowChanges };
}

/** (b) spock, then every column turned into text by the decoder's text layer, `tupleText()`. */
export function decodeWithSpockStrings(
  payloads: readonly Uint8Array[],
  protoVersion: number,
): DecodeCounts {
  const decoder = new PgoutputStreamDecoder(protoVersion);
  let rowChanges = 0;
  for (let i = 0; i < payloads.length; i++) {
    const message = decoder.decode(payloads[i]);
    switch (message.type) {
      case "insert":
        lastValues = tupleText(message.newTuple);
        rowChanges++;
        break;
      case "update":
        if (message.oldTuple !== null) lastValues = tupleText(message.oldTuple);
        lastValues = tupleText(message.newTuple);
        rowChanges++;
        break;
      case "delete":
        lastValues = tupleText(message.oldTuple);
        rowChanges++;
        break;
    }
  }
  return { messages: payloads.length, rowChanges };
}

/**
 * (d) spock, then every text column converted by the same pg-types parser
 * pg-logical-replication uses for its type: the same values (c) produces,
 * in an array per tuple instead of an object keyed by column name.
 */
export function decodeWithSpockPgTypes(
  payloads: readonly Uint8Array[],
  options: { protoVersion: number; parsers: ReadonlyMap<number, TypeParser> },
): DecodeCounts {
  const { protoVersion, parsers } = options;
  const decoder = new PgoutputStreamDecoder(protoVersion);
  const relationParsers = new Map<number, TypeParser[]>();
  let rowChanges = 0;
  for (let i = 0; i < payloads.length; i++) {
    const message = decoder.decode(payloads[i]);
    switch (message.type) {
      case "relation":
        relationParsers.set(
          message.relationId,
          message.columns.map((column) => parsers.get(column.typeOid) ?? noParse),
        );
        break;
      case "insert":
        lastValues = parsedValues(message.newTuple, relationParsers.get(message.relationId)!);
        rowChanges++;
        break;
      case "update": {
        const columnParsers = relationParsers.get(message.relationId)!;
        if (message.oldTuple !== null) lastValues = parsedValues(message.oldTuple, columnParsers);
        lastValues = parsedValues(message.newTuple, columnParsers);
        rowChanges++;
        break;
      }
      case "delete":
        lastValues = parsedValues(message.oldTuple, relationParsers.get(message.relationId)!);
        rowChanges++;
        break;
    }
  }
  return { messages: payloads.length, rowChanges };
}

/** (c) pg-logical-replication's `PgoutputPlugin.parse()`, as its replication service calls it. */
export function decodeWithPgLogicalReplication(buffers: readonly Buffer[]): DecodeCounts {
  const plugin = newPlugin();
  let rowChanges = 0;
  for (let i = 0; i < buffers.length; i++) {
    const tag = (plugin.parse(buffers[i]) as Pgoutput.Message).tag;
    if (tag === "insert" || tag === "update" || tag === "delete") rowChanges++;
  }
  return { messages: buffers.length, rowChanges };
}

/**
 * The pg-types parser of every column type in the capture, taken from
 * pg-logical-replication's own Relation output (it looks them up with pg's
 * `types.getTypeParser()`), so (d) converts exactly as (c) does.
 */
export function typeParsersOf(buffers: readonly Buffer[]): Map<number, TypeParser> {
  const plugin = newPlugin();
  const parsers = new Map<number, TypeParser>();
  for (const buffer of buffers) {
    if (buffer[0] !== 0x52 /* R */) continue;
    const relation = plugin.parse(buffer) as Pgoutput.MessageRelation;
    for (const column of relation.columns) parsers.set(column.typeOid, column.parser);
  }
  return parsers;
}

/**
 * Decodes the first `limit` messages with (d) and (c) side by side, and
 * throws at the first message or value on which they disagree: evidence that they decode the same bytes to the same rows.
 * Returns how many column values were compared.
 */
export function crossCheck(
  payloads: readonly Uint8Array[],
  buffers: readonly Buffer[],
  options: { protoVersion: number; parsers: ReadonlyMap<number, TypeParser>; limit: number },
): number {
  const decoder = new PgoutputStreamDecoder(options.protoVersion);
  const plugin = newPlugin();
  const count = Math.min(options.limit, payloads.length);
  let compared = 0;
  for (let i = 0; i < count; i++) {
    const ours = decoder.decode(payloads[i]);
    const theirs = plugin.parse(buffers[i]) as Pgoutput.Message;
    if (ours.type !== theirs.tag) {
      throw new Error(`Decoders disagree on message ${i}: "${ours.type}" vs "${theirs.tag}"`);
    }
    if (ours.type !== "insert" && ours.type !== "update" && ours.type !== "delete") continue;
    const tuple = ours.type === "delete" ? ours.oldTuple : ours.newTuple;
    const row = theirsRowImage(theirs);
    const columns = decoder.relations.require(ours.relationId, ours.type).columns;
    const values = parsedValues(
      tuple,
      columns.map((c) => options.parsers.get(c.typeOid) ?? noParse),
    );
    columns.forEach((column, index) => {
      const where = `message ${i} (${ours.type}), column "${column.name}"`;
      // A delete's key image: pg-logical-replication keeps only the key columns.
      if (!(column.name in row)) return;
      if (!sameValue(values[index], row[column.name])) {
        throw new Error(
          `(d) and (c) disagree on ${where}: ` +
            `${JSON.stringify(values[index])} vs ${JSON.stringify(row[column.name])}`,
        );
      }
      compared++;
    });
  }
  return compared;
}

/** The row image pg-logical-replication built for a row message, keyed by column name. */
function theirsRowImage(message: Pgoutput.Message): Record<string, unknown> {
  switch (message.tag) {
    case "insert":
    case "update":
      return message.new;
    case "delete":
      return message.key ?? message.old ?? {};
    default:
      throw new TypeError(`Expected a row message, got "${message.tag}"`);
  }
}

function newPlugin(): PgoutputPlugin {
  return new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION] });
}

function parsedValues(tuple: Tuple, parsers: readonly TypeParser[]): Value[] {
  const values: Value[] = tupleText(tuple);
  for (let i = 0; i < tuple.length; i++) {
    const value = values[i];
    if (typeof value === "string") values[i] = parsers[i](value);
  }
  return values;
}

function noParse(text: string): string {
  return text;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  return JSON.stringify(a) === JSON.stringify(b);
}
