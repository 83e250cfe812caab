/**
 * Folder-private readers for the transaction-control messages: Begin, Commit,
 * Origin, the Stream Start/Stop/Commit/Abort block and the two-phase family.
 * Each mirrors a `logicalrep_read_*` function of `proto.c`; dispatch and the
 * trailing-bytes check are `decode.ts`'s.
 *
 * Object literals evaluate their properties in source order, so each reader
 * lists its fields in wire order, as proto.c reads them.
 */

import { formatByte } from "./_format.ts";
import type { MessageReader } from "./_reader.ts";
import type {
  Begin,
  BeginPrepare,
  Commit,
  CommitPrepared,
  Origin,
  Prepare,
  RollbackPrepared,
  StreamAbort,
  StreamCommit,
  StreamPrepare,
  StreamStart,
  StreamStop,
} from "./messages.ts";

/** Stream Abort's optional abort LSN and abort time (protocol 4, `streaming = parallel`). */
const ABORT_INFO_BYTES = 16;

/** Begin ('B'), as `logicalrep_read_begin`. */
export function readBegin(r: MessageReader): Begin {
  return {
    type: "begin",
    finalLsn: r.readUint64(),
    commitTime: r.readInt64(),
    xid: r.readUint32(),
  };
}

/** Commit ('C'), as `logicalrep_read_commit`; its flags must be 0. */
export function readCommit(r: MessageReader): Commit {
  return {
    type: "commit",
    flags: readZeroFlags(r),
    commitLsn: r.readUint64(),
    endLsn: r.readUint64(),
    commitTime: r.readInt64(),
  };
}

/** Origin ('O'), as `logicalrep_read_origin`. */
export function readOrigin(r: MessageReader): Origin {
  return { type: "origin", originLsn: r.readUint64(), originName: r.readString() };
}

/** Stream Start ('S'), as `logicalrep_read_stream_start`. */
export function readStreamStart(r: MessageReader): StreamStart {
  // proto.c takes any byte other than 1 as "not the first segment".
  return { type: "stream_start", xid: r.readUint32(), firstSegment: r.readByte() === 1 };
}

/** Stream Stop ('E'): the type byte alone. */
export function readStreamStop(): StreamStop {
  return { type: "stream_stop" };
}

/** Stream Commit ('c'), as `logicalrep_read_stream_commit`; its flags must be 0. */
export function readStreamCommit(r: MessageReader): StreamCommit {
  return {
    type: "stream_commit",
    xid: r.readUint32(),
    flags: readZeroFlags(r),
    commitLsn: r.readUint64(),
    endLsn: r.readUint64(),
    commitTime: r.readInt64(),
  };
}

/** Stream Abort ('A'), as `logicalrep_read_stream_abort`. */
export function readStreamAbort(
  r: MessageReader,
  _xid: number | undefined,
  protoVersion: number,
): StreamAbort {
  const xid = r.readUint32();
  const subXid = r.readUint32();
  const left = r.remaining();
  // Whether abort info follows depends on `streaming = parallel`, which only
  // the subscriber knows, so the length decides: on protocol 4 exactly 0 or
  // 16 bytes; before that, any byte left is trailing and finish() rejects it.
  if (protoVersion >= 4 && left === ABORT_INFO_BYTES) {
    return {
      type: "stream_abort",
      xid,
      subXid,
      abortLsn: r.readUint64(),
      abortTime: r.readInt64(),
    };
  }
  if (protoVersion >= 4 && left !== 0) {
    r.fail(`expected 0 or ${ABORT_INFO_BYTES} bytes of abort information, got ${left}`, r.pos);
  }
  return { type: "stream_abort", xid, subXid };
}

/** Begin Prepare ('b'), as `logicalrep_read_begin_prepare`. */
export function readBeginPrepare(r: MessageReader): BeginPrepare {
  return {
    type: "begin_prepare",
    prepareLsn: r.readUint64(),
    endLsn: r.readUint64(),
    prepareTime: r.readInt64(),
    xid: r.readUint32(),
    gid: r.readString(),
  };
}

/** Prepare ('P'), as `logicalrep_read_prepare`. */
export function readPrepare(r: MessageReader): Prepare {
  return readPrepareCommon(r, "prepare");
}

/** Stream Prepare ('p'), as `logicalrep_read_stream_prepare`. */
export function readStreamPrepare(r: MessageReader): StreamPrepare {
  return readPrepareCommon(r, "stream_prepare");
}

/** Prepare and Stream Prepare share one layout, as in `logicalrep_read_prepare_common`. */
function readPrepareCommon<T extends "prepare" | "stream_prepare">(r: MessageReader, type: T) {
  return {
    type,
    flags: readZeroFlags(r),
    prepareLsn: r.readUint64(),
    endLsn: r.readUint64(),
    prepareTime: r.readInt64(),
    xid: r.readUint32(),
    gid: r.readString(),
  };
}

/** Commit Prepared ('K'), as `logicalrep_read_commit_prepared`. */
export function readCommitPrepared(r: MessageReader): CommitPrepared {
  return {
    type: "commit_prepared",
    flags: readZeroFlags(r),
    commitLsn: r.readUint64(),
    endLsn: r.readUint64(),
    commitTime: r.readInt64(),
    xid: r.readUint32(),
    gid: r.readString(),
  };
}

/** Rollback Prepared ('r'), as `logicalrep_read_rollback_prepared`. */
export function readRollbackPrepared(r: MessageReader): RollbackPrepared {
  return {
    type: "rollback_prepared",
    flags: readZeroFlags(r),
    prepareEndLsn: r.readUint64(),
    rollbackEndLsn: r.readUint64(),
    prepareTime: r.readInt64(),
    rollbackTime: r.readInt64(),
    xid: r.readUint32(),
    gid: r.readString(),
  };
}

/** Reads a flags byte that `proto.c` requires to be zero (unused for now). */
function readZeroFlags(r: MessageReader): number {
  const flags = r.readByte();
  if (flags !== 0) r.fail(`unrecognized flags ${formatByte(flags)}, expected 0`, r.pos - 1);
  return flags;
}
