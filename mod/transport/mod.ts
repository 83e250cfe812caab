/**
 * The replication transport: a `replication=database` connection, slots,
 * START_REPLICATION with pgoutput options chosen by server version, the
 * CopyBoth framing ('w', 'k', 'r'), and capture files. It knows nothing of
 * pgoutput's messages or of applying them.
 *
 * @example
 * ```ts
 * import { choosePgoutputOptions, ReplicationConnection } from "./mod.ts";
 * import { resolveConnectOptions } from "../pg/mod.ts";
 *
 * const conn = await ReplicationConnection.open(resolveConnectOptions("host=db1 dbname=app"));
 * const { options } = choosePgoutputOptions(conn.serverVersionNum, { publications: ["pub"] });
 * const stream = await conn.startReplication("my_slot", { pluginOptions: options });
 * for await (const batch of stream) {
 *   for (const message of batch) {
 *     if (message.type === "xlogdata") console.log(message.walStart, message.data.length);
 *   }
 *   stream.reportProgress(stream.positions.received);
 * }
 * await conn.close();
 * ```
 */
export {
  type CaptureHeader,
  CaptureReader,
  encodeCaptureFrame,
  encodeCaptureHeader,
} from "./capture.ts";
export {
  type CopyBothMessage,
  encodeStandbyStatus,
  parseCopyBothMessage,
  type PrimaryKeepalive,
  type StandbyStatus,
  type XLogData,
} from "./copy_both.ts";
export { SlotInvalidatedError, TransportError } from "./errors.ts";
export {
  choosePgoutputOptions,
  maxProtoVersion,
  type PgoutputOptions,
  type PgoutputWanted,
} from "./pgoutput_options.ts";
export {
  assertSlotName,
  type CreatedSlot,
  type CreateSlotOptions,
  ReplicationConnection,
  type SystemIdentity,
} from "./replication_connection.ts";
export {
  ReplicationStream,
  type ReplicationStreamOptions,
  type StreamPositions,
} from "./replication_stream.ts";
