/**
 * Helpers for transport tests: reading just enough of pgoutput's bytes to
 * find commits, without depending on the decoder under test elsewhere.
 */
import type { CopyBothMessage } from "../../mod/transport/mod.ts";

/** The end LSN of a pgoutput Commit message, or undefined for other messages. */
export function commitEndLsn(message: CopyBothMessage): bigint | undefined {
  if (message.type !== "xlogdata" || message.data[0] !== 0x43) return undefined;
  const view = new DataView(message.data.buffer, message.data.byteOffset, message.data.byteLength);
  return view.getBigUint64(10);
}
