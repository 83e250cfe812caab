/**
 * How `spock stream` prints decoded pgoutput messages: `jsonl` (one JSON
 * object per message, snake_case fields, the message types as `type`) and
 * `pretty` (one readable line per message). Values stay text; binary values
 * print as `\x` hex, as bytea does.
 */
import { formatLsn, formatPgTimestamp, type Lsn } from "../pg/mod.ts";
import {
  byteaHex,
  type PgoutputMessage,
  type Relation,
  type RelationCache,
  type Tuple,
  tupleText,
  UNCHANGED_TOAST,
} from "../pgoutput/mod.ts";

/** Output formats of `spock stream`. */
export type StreamFormat = "jsonl" | "pretty";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const IDENTITY_NAMES = { d: "default", n: "nothing", f: "full", i: "index" } as const;

/** Maps a tuple to `{column: value}`, leaving out unchanged TOAST columns (and non-key ones). */
function tupleObject(
  relation: Relation,
  tuple: Tuple,
  keyOnly = false,
): { values: Record<string, string | null>; unchanged: string[] } {
  const values: Record<string, string | null> = {};
  const unchanged: string[] = [];
  const texts = tupleText(tuple);
  for (let i = 0; i < texts.length; i++) {
    const column = relation.columns[i];
    const name = column?.name ?? `column_${i + 1}`;
    if (keyOnly && column && !column.isKey) continue;
    const text = texts[i];
    if (text === UNCHANGED_TOAST) unchanged.push(name);
    else values[name] = text;
  }
  return { values, unchanged };
}

function lsn(value: Lsn | undefined): string | undefined {
  return value === undefined ? undefined : formatLsn(value);
}

function time(value: bigint | undefined): string | undefined {
  return value === undefined ? undefined : formatPgTimestamp(value);
}

function messageContent(content: Uint8Array): Record<string, string> {
  try {
    return { content: strictUtf8.decode(content) };
  } catch {
    return { content_hex: byteaHex(content).slice(2) };
  }
}

/** The JSON object `--format jsonl` prints for one message. */
export function messageToJson(
  message: PgoutputMessage,
  walStart: Lsn,
  relations: RelationCache,
): Record<string, unknown> {
  const base: Record<string, unknown> = { type: message.type, lsn: formatLsn(walStart) };
  switch (message.type) {
    case "begin":
      return {
        ...base,
        xid: message.xid,
        final_lsn: lsn(message.finalLsn),
        commit_time: time(message.commitTime),
      };
    case "commit":
      return {
        ...base,
        commit_lsn: lsn(message.commitLsn),
        end_lsn: lsn(message.endLsn),
        commit_time: time(message.commitTime),
      };
    case "origin":
      return { ...base, origin_lsn: lsn(message.originLsn), name: message.originName };
    case "relation":
      return {
        ...base,
        xid: message.xid,
        relation_id: message.relationId,
        schema: message.namespace,
        table: message.relationName,
        replica_identity: IDENTITY_NAMES[message.replicaIdentity],
        columns: message.columns.map((c) => ({
          name: c.name,
          type_oid: c.typeOid,
          type_mod: c.typeMod,
          key: c.isKey,
        })),
      };
    case "type":
      return {
        ...base,
        xid: message.xid,
        type_oid: message.typeOid,
        schema: message.namespace,
        name: message.typeName,
      };
    case "insert": {
      const relation = relations.require(message.relationId, "insert");
      const row = tupleObject(relation, message.newTuple);
      return {
        ...base,
        xid: message.xid,
        schema: relation.namespace,
        table: relation.relationName,
        new: row.values,
        ...(row.unchanged.length > 0 ? { unchanged_toast: row.unchanged } : {}),
      };
    }
    case "update": {
      const relation = relations.require(message.relationId, "update");
      const row = tupleObject(relation, message.newTuple);
      const out: Record<string, unknown> = {
        ...base,
        xid: message.xid,
        schema: relation.namespace,
        table: relation.relationName,
      };
      if (message.oldKind === "key" && message.oldTuple) {
        out.key = tupleObject(relation, message.oldTuple, true).values;
      } else if (message.oldKind === "old" && message.oldTuple) {
        out.old = tupleObject(relation, message.oldTuple).values;
      }
      out.new = row.values;
      if (row.unchanged.length > 0) out.unchanged_toast = row.unchanged;
      return out;
    }
    case "delete": {
      const relation = relations.require(message.relationId, "delete");
      const old = tupleObject(relation, message.oldTuple, message.oldKind === "key");
      return {
        ...base,
        xid: message.xid,
        schema: relation.namespace,
        table: relation.relationName,
        [message.oldKind === "key" ? "key" : "old"]: old.values,
      };
    }
    case "truncate":
      return {
        ...base,
        xid: message.xid,
        relations: message.relationIds.map((id) => {
          const relation = relations.require(id, "truncate");
          return { schema: relation.namespace, table: relation.relationName };
        }),
        cascade: message.cascade,
        restart_identity: message.restartIdentity,
      };
    case "message":
      return {
        ...base,
        xid: message.xid,
        transactional: message.transactional,
        message_lsn: lsn(message.messageLsn),
        prefix: message.prefix,
        ...messageContent(message.content),
      };
    case "stream_start":
      return { ...base, xid: message.xid, first_segment: message.firstSegment };
    case "stream_stop":
      return base;
    case "stream_commit":
      return {
        ...base,
        xid: message.xid,
        commit_lsn: lsn(message.commitLsn),
        end_lsn: lsn(message.endLsn),
        commit_time: time(message.commitTime),
      };
    case "stream_abort":
      return {
        ...base,
        xid: message.xid,
        subxid: message.subXid,
        abort_lsn: lsn(message.abortLsn),
        abort_time: time(message.abortTime),
      };
    case "begin_prepare":
      return {
        ...base,
        xid: message.xid,
        gid: message.gid,
        prepare_lsn: lsn(message.prepareLsn),
        end_lsn: lsn(message.endLsn),
        prepare_time: time(message.prepareTime),
      };
    case "prepare":
    case "stream_prepare":
      return {
        ...base,
        xid: message.xid,
        gid: message.gid,
        prepare_lsn: lsn(message.prepareLsn),
        end_lsn: lsn(message.endLsn),
        prepare_time: time(message.prepareTime),
      };
    case "commit_prepared":
      return {
        ...base,
        xid: message.xid,
        gid: message.gid,
        commit_lsn: lsn(message.commitLsn),
        end_lsn: lsn(message.endLsn),
        commit_time: time(message.commitTime),
      };
    case "rollback_prepared":
      return {
        ...base,
        xid: message.xid,
        gid: message.gid,
        prepare_end_lsn: lsn(message.prepareEndLsn),
        rollback_end_lsn: lsn(message.rollbackEndLsn),
        prepare_time: time(message.prepareTime),
        rollback_time: time(message.rollbackTime),
      };
    default: {
      const unknown: never = message;
      throw new TypeError(`Unhandled message ${(unknown as PgoutputMessage).type}`);
    }
  }
}

function prettyValues(values: Record<string, unknown>): string {
  return Object.entries(values)
    .map(([name, value]) =>
      `${name}=${value === null ? "NULL" : `'${String(value).replaceAll("'", "''")}'`}`
    )
    .join(" ");
}

/** One line of `--format pretty` output for a message. */
export function messageToPretty(json: Record<string, unknown>): string {
  const type = String(json.type).toUpperCase();
  const table = json.table ? `${json.schema}.${json.table}` : "";
  switch (json.type) {
    case "begin":
      return `BEGIN xid ${json.xid} at ${json.lsn} (commit time ${json.commit_time})`;
    case "commit":
      return `COMMIT at ${json.commit_lsn}, end ${json.end_lsn}`;
    case "insert":
      return `  INSERT ${table}: ${prettyValues(json.new as Record<string, unknown>)}`;
    case "update": {
      const before = json.key ?? json.old;
      const keyText = before
        ? ` ${json.key ? "key" : "old"}(${prettyValues(before as Record<string, unknown>)}) →`
        : "";
      const toast = json.unchanged_toast
        ? ` (unchanged: ${(json.unchanged_toast as string[]).join(", ")})`
        : "";
      return `  UPDATE ${table}:${keyText} ${
        prettyValues(json.new as Record<string, unknown>)
      }${toast}`;
    }
    case "delete":
      return `  DELETE ${table}: ${
        prettyValues((json.key ?? json.old) as Record<string, unknown>)
      }`;
    case "relation":
      return `  RELATION ${table} (${json.relation_id}), replica identity ${json.replica_identity}`;
    case "truncate": {
      const names = (json.relations as { schema: string; table: string }[]).map((r) =>
        `${r.schema}.${r.table}`
      );
      const flags = [json.cascade ? "CASCADE" : "", json.restart_identity ? "RESTART IDENTITY" : ""]
        .filter(Boolean);
      return `  TRUNCATE ${names.join(", ")}${flags.length ? ` ${flags.join(" ")}` : ""}`;
    }
    case "message":
      return `${json.transactional ? "  " : ""}MESSAGE ${json.prefix}: ${
        json.content ?? `\\x${json.content_hex}`
      }`;
    default: {
      const rest = Object.entries(json)
        .filter(([key, value]) => key !== "type" && value !== undefined)
        .map(([key, value]) =>
          `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`
        );
      return `${type} ${rest.join(" ")}`;
    }
  }
}
