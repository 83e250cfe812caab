/**
 * Commands of the provider's replicated queue (`spock.queue`), as the
 * transactional 'spock_queue' messages that carry them arrive in the stream:
 * 'Q' a command to run (replicate_ddl's), 'D' one automatic DDL replication
 * captured, 'S' a sequence value, 'A' a table to copy. Which of them a subscription acts on, and the statement that
 * does it, are decided here; the applier runs that statement at the
 * message's position, in the remote transaction's local one.
 */
import type { Message } from "../pgoutput/mod.ts";
import { ApplyError } from "./errors.ts";

/** The prefix of the logical messages that carry `spock.queue` rows. */
export const QUEUE_MESSAGE_PREFIX = "spock_queue";

/** One queued command. */
export type QueuedCommand =
  | { type: "Q" | "D"; role: string; sets: string[] | null; command: string }
  | {
    type: "S";
    role: string;
    sets: string[] | null;
    schema: string;
    sequence: string;
    lastValue: string;
  }
  | { type: "A"; role: string; sets: string[] | null; schema: string; table: string };

const decoder = new TextDecoder();

function malformed(what: string): ApplyError {
  return new ApplyError(`Cannot read a "${QUEUE_MESSAGE_PREFIX}" message: ${what}`, {
    code: "ERR_APPLY_BAD_MESSAGE",
    operation: "message",
  });
}

/** Reads a 'spock_queue' message; a malformed one is an ApplyError naming what is wrong. */
export function parseQueuedCommand(message: Message): QueuedCommand {
  let row: Record<string, unknown>;
  try {
    row = JSON.parse(decoder.decode(message.content));
  } catch {
    throw malformed("not JSON");
  }
  const { role, replication_sets: sets, message_type: type, message: body } = row ?? {};
  if (typeof role !== "string") throw malformed("no role");
  if (sets !== null && !(Array.isArray(sets) && sets.every((s) => typeof s === "string"))) {
    throw malformed("replication_sets is neither null nor a list of names");
  }
  const common = { role, sets: sets as string[] | null };
  const field = (name: string): string => {
    const value = (body as Record<string, unknown> | null)?.[name];
    if (typeof value !== "string") throw malformed(`'${type}' without ${name}`);
    return value;
  };
  switch (type) {
    case "Q":
    case "D":
      if (typeof body !== "string") throw malformed(`'${type}' without its command text`);
      return { type, ...common, command: body };
    case "S":
      return {
        type,
        ...common,
        schema: field("schema_name"),
        sequence: field("sequence_name"),
        lastValue: field("last_value"),
      };
    case "A":
      return { type, ...common, schema: field("schema_name"), table: field("table_name") };
    default:
      throw malformed(`unknown message_type ${JSON.stringify(type)}`);
  }
}

/**
 * Whether a subscription of `subscribed` sets acts on `command`: one queued
 * for no set in particular goes to every subscriber, else it must share a
 * set with the subscription (as Spock's output plugin filters queue rows).
 */
export function queuedForSets(command: QueuedCommand, subscribed: readonly string[]): boolean {
  return command.sets === null || command.sets.some((set) => subscribed.includes(set));
}

/** Runs a 'Q' or 'D' command: $1 role, $2 command text. */
export const APPLY_QUEUED_SQL = "select spock._apply_queued_sql($1, $2)";
/** Sets a sequence from an 'S' command: $1 the message as JSON. */
export const APPLY_QUEUED_SEQUENCE_SQL = "select spock._apply_queued_sequence($1::text::jsonb)";
/** Asks for a copy of an 'A' table: $1 subscription id, $2 schema, $3 table. */
export const APPLY_QUEUED_TABLE_SYNC_SQL =
  "select spock._apply_queued_table_sync($1::text::oid, $2, $3)";
