/**
 * The decoded shape of every pgoutput message, protocol versions 1–4
 * (PostgreSQL 15–18), as the `PgoutputMessage` union. Field names follow the
 * "Logical Replication Message Formats" page; turning column bytes into JS
 * values is left to consumers, as `proto.c` leaves type input to `worker.c`.
 */

import type { Lsn, PgTimestamp } from "../pg/mod.ts";

/** A column that is SQL NULL. */
export interface NullColumn {
  readonly kind: "null";
}

/** An unchanged TOASTed column: the server did not send its value. */
export interface UnchangedColumn {
  readonly kind: "unchanged";
}

/** A column value in the type's text output format. */
export interface TextColumn {
  readonly kind: "text";
  /** The value's bytes: a subarray of the decoded message, not a copy. */
  readonly bytes: Uint8Array;
}

/** A column value in the type's binary send format (subscription `binary = true`). */
export interface BinaryColumn {
  readonly kind: "binary";
  /** The value's bytes: a subarray of the decoded message, not a copy. */
  readonly bytes: Uint8Array;
}

/** One column of a tuple, per the TupleData column kinds `n`, `u`, `t` and `b`. */
export type TupleColumn = NullColumn | UnchangedColumn | TextColumn | BinaryColumn;

/** A row image: one entry per column, in the order of the Relation message's columns. */
export type Tuple = TupleColumn[];

/** The shared column for every NULL; frozen, so compare by `kind`, not by mutation. */
export const NULL_COLUMN: NullColumn = Object.freeze({ kind: "null" });

/** The shared column for every unchanged TOASTed value. */
export const UNCHANGED_COLUMN: UnchangedColumn = Object.freeze({ kind: "unchanged" });

/** `pg_class.relreplident`: default, nothing, full or index. */
export type ReplicaIdentity = "d" | "n" | "f" | "i";

/** Begin ('B'): a transaction starts; `finalLsn` is its commit record's LSN. */
export interface Begin {
  readonly type: "begin";
  readonly finalLsn: Lsn;
  readonly commitTime: PgTimestamp;
  readonly xid: number;
}

/** Commit ('C'): the transaction started by the last Begin ends. */
export interface Commit {
  readonly type: "commit";
  /** Always 0: `proto.c` rejects any other value. */
  readonly flags: number;
  readonly commitLsn: Lsn;
  /** End of the commit record: the position to confirm once applied. */
  readonly endLsn: Lsn;
  readonly commitTime: PgTimestamp;
}

/** Origin ('O'): the transaction was replicated from the named origin. */
export interface Origin {
  readonly type: "origin";
  /** Commit LSN on the origin server. */
  readonly originLsn: Lsn;
  readonly originName: string;
}

/** One column of a Relation message. */
export interface RelationColumn {
  /** Raw column flags; bit 0 marks a replica identity (key) column. */
  readonly flags: number;
  /** `(flags & 1) === 1`: the column is part of the replica identity. */
  readonly isKey: boolean;
  readonly name: string;
  readonly typeOid: number;
  /** `atttypmod`, `-1` when the type has none. */
  readonly typeMod: number;
}

/** Relation ('R'): describes a table before the first row message that uses it. */
export interface Relation {
  readonly type: "relation";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly relationId: number;
  /** Schema name; the wire's empty string is reported as `"pg_catalog"`. */
  readonly namespace: string;
  readonly relationName: string;
  readonly replicaIdentity: ReplicaIdentity;
  readonly columns: RelationColumn[];
}

/** Type ('Y'): describes a non-built-in data type used by a following Relation. */
export interface Type {
  readonly type: "type";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly typeOid: number;
  /** Schema name; the wire's empty string is reported as `"pg_catalog"`. */
  readonly namespace: string;
  readonly typeName: string;
}

/** Insert ('I'): a new row. */
export interface Insert {
  readonly type: "insert";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly relationId: number;
  readonly newTuple: Tuple;
}

/**
 * Update ('U'): a changed row. `oldKind` says what precedes the new tuple:
 * `"key"` ('K', the replica identity columns, others null), `"old"` ('O', the
 * whole old row, REPLICA IDENTITY FULL) or `null` (no old image was sent).
 */
export interface Update {
  readonly type: "update";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly relationId: number;
  readonly oldKind: "key" | "old" | null;
  readonly oldTuple: Tuple | null;
  readonly newTuple: Tuple;
}

/** Delete ('D'): a removed row, identified by its key ('K') or whole old row ('O'). */
export interface Delete {
  readonly type: "delete";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly relationId: number;
  readonly oldKind: "key" | "old";
  readonly oldTuple: Tuple;
}

/** Truncate ('T'): one TRUNCATE statement over one or more relations. */
export interface Truncate {
  readonly type: "truncate";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly relationIds: number[];
  readonly cascade: boolean;
  readonly restartIdentity: boolean;
}

/** Message ('M'): a `pg_logical_emit_message()` call (publication option `messages`). */
export interface Message {
  readonly type: "message";
  /** Present inside a Stream Start/Stop block. */
  readonly xid?: number;
  readonly transactional: boolean;
  readonly messageLsn: Lsn;
  readonly prefix: string;
  /** The payload: a subarray of the decoded message, not a copy. */
  readonly content: Uint8Array;
}

/** Stream Start ('S'): a block of changes of an in-progress transaction begins (v2+). */
export interface StreamStart {
  readonly type: "stream_start";
  readonly xid: number;
  /** True for the first block streamed for this transaction. */
  readonly firstSegment: boolean;
}

/** Stream Stop ('E'): the current block of streamed changes ends (v2+). */
export interface StreamStop {
  readonly type: "stream_stop";
}

/** Stream Commit ('c'): a streamed transaction commits (v2+). */
export interface StreamCommit {
  readonly type: "stream_commit";
  readonly xid: number;
  /** Always 0: `proto.c` rejects any other value. */
  readonly flags: number;
  readonly commitLsn: Lsn;
  readonly endLsn: Lsn;
  readonly commitTime: PgTimestamp;
}

/**
 * Stream Abort ('A'): a streamed (sub)transaction aborts (v2+); `xid` equals
 * `subXid` for the top-level transaction. `abortLsn` and `abortTime` are
 * present only on protocol 4 with `streaming = parallel`.
 */
export interface StreamAbort {
  readonly type: "stream_abort";
  readonly xid: number;
  readonly subXid: number;
  readonly abortLsn?: Lsn;
  readonly abortTime?: PgTimestamp;
}

/** Begin Prepare ('b'): a two-phase transaction starts (v3+). */
export interface BeginPrepare {
  readonly type: "begin_prepare";
  readonly prepareLsn: Lsn;
  readonly endLsn: Lsn;
  readonly prepareTime: PgTimestamp;
  readonly xid: number;
  /** The user-given global transaction identifier. */
  readonly gid: string;
}

/** Prepare ('P'): the transaction started by Begin Prepare is prepared (v3+). */
export interface Prepare {
  readonly type: "prepare";
  /** Always 0: `proto.c` rejects any other value. */
  readonly flags: number;
  readonly prepareLsn: Lsn;
  readonly endLsn: Lsn;
  readonly prepareTime: PgTimestamp;
  readonly xid: number;
  readonly gid: string;
}

/** Commit Prepared ('K'): COMMIT PREPARED of a transaction sent earlier (v3+). */
export interface CommitPrepared {
  readonly type: "commit_prepared";
  /** Always 0: `proto.c` rejects any other value. */
  readonly flags: number;
  readonly commitLsn: Lsn;
  readonly endLsn: Lsn;
  readonly commitTime: PgTimestamp;
  readonly xid: number;
  readonly gid: string;
}

/** Rollback Prepared ('r'): ROLLBACK PREPARED of a transaction sent earlier (v3+). */
export interface RollbackPrepared {
  readonly type: "rollback_prepared";
  /** Always 0: `proto.c` rejects any other value. */
  readonly flags: number;
  readonly prepareEndLsn: Lsn;
  readonly rollbackEndLsn: Lsn;
  readonly prepareTime: PgTimestamp;
  readonly rollbackTime: PgTimestamp;
  readonly xid: number;
  readonly gid: string;
}

/** Stream Prepare ('p'): a streamed transaction is prepared (v3+). */
export interface StreamPrepare {
  readonly type: "stream_prepare";
  /** Always 0: `proto.c` rejects any other value. */
  readonly flags: number;
  readonly prepareLsn: Lsn;
  readonly endLsn: Lsn;
  readonly prepareTime: PgTimestamp;
  readonly xid: number;
  readonly gid: string;
}

/**
 * Every pgoutput message. Switch on `type` (the snake_case names that
 * `spock stream --format jsonl` prints) with an exhaustive `never` default.
 */
export type PgoutputMessage =
  | Begin
  | Commit
  | Origin
  | Relation
  | Type
  | Insert
  | Update
  | Delete
  | Truncate
  | Message
  | StreamStart
  | StreamStop
  | StreamCommit
  | StreamAbort
  | BeginPrepare
  | Prepare
  | CommitPrepared
  | RollbackPrepared
  | StreamPrepare;

/** The `type` discriminant of {@linkcode PgoutputMessage}. */
export type PgoutputMessageType = PgoutputMessage["type"];
