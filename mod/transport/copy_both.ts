/**
 * The streaming replication sub-protocol inside CopyBoth: parsing the server's
 * XLogData ('w') and primary keepalive ('k') messages, and encoding the
 * standby status update ('r') we send back. Payload bytes stay untouched.
 */
import type { Lsn, PgTimestamp } from "../pg/mod.ts";
import { TransportError } from "./errors.ts";

/** A chunk of WAL data; for logical replication `data` is one output-plugin message. */
export interface XLogData {
  type: "xlogdata";
  /** Where the message's WAL record starts (0/0 for some plugin messages). */
  walStart: Lsn;
  /** The server's current end of WAL. */
  walEnd: Lsn;
  sendTime: PgTimestamp;
  /** The output plugin's message: a subarray of the received buffer. */
  data: Uint8Array;
}

/** The server's keepalive; `replyRequested` asks for an immediate status update. */
export interface PrimaryKeepalive {
  type: "keepalive";
  walEnd: Lsn;
  sendTime: PgTimestamp;
  replyRequested: boolean;
}

/** A message the server sends inside CopyBoth. */
export type CopyBothMessage = XLogData | PrimaryKeepalive;

const XLOGDATA_HEADER = 25;
const KEEPALIVE_LENGTH = 18;

/** Parses one CopyData payload received during START_REPLICATION. */
export function parseCopyBothMessage(payload: Uint8Array): CopyBothMessage {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const kind = payload[0];
  if (kind === 0x77 /* w */) {
    if (payload.length < XLOGDATA_HEADER) {
      throw new TransportError(
        `Cannot parse XLogData: ${payload.length} bytes is shorter than its 25-byte header`,
      );
    }
    return {
      type: "xlogdata",
      walStart: view.getBigUint64(1),
      walEnd: view.getBigUint64(9),
      sendTime: view.getBigInt64(17),
      data: payload.subarray(XLOGDATA_HEADER),
    };
  }
  if (kind === 0x6b /* k */) {
    if (payload.length !== KEEPALIVE_LENGTH) {
      throw new TransportError(
        `Cannot parse primary keepalive: expected 18 bytes, got ${payload.length}`,
      );
    }
    return {
      type: "keepalive",
      walEnd: view.getBigUint64(1),
      sendTime: view.getBigInt64(9),
      replyRequested: payload[17] !== 0,
    };
  }
  throw new TransportError(
    `Cannot parse replication message: unknown type byte 0x${(kind ?? 0).toString(16)}`,
  );
}

/** The positions a standby status update reports. */
export interface StandbyStatus {
  /** Last WAL position received. */
  written: Lsn;
  /** Last position whose effects are durable on our side (confirms the slot). */
  flushed: Lsn;
  /** Last position applied. */
  applied: Lsn;
  sendTime: PgTimestamp;
  replyRequested: boolean;
}

/** Encodes a standby status update ('r'). */
export function encodeStandbyStatus(status: StandbyStatus): Uint8Array {
  const bytes = new Uint8Array(34);
  const view = new DataView(bytes.buffer);
  bytes[0] = 0x72; // r
  view.setBigUint64(1, status.written);
  view.setBigUint64(9, status.flushed);
  view.setBigUint64(17, status.applied);
  view.setBigInt64(25, status.sendTime);
  bytes[33] = status.replyRequested ? 1 : 0;
  return bytes;
}
