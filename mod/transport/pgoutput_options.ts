/**
 * START_REPLICATION options for the pgoutput plugin, chosen from the server's
 * version: the highest protocol it speaks, and only the options it accepts.
 */
import { quoteIdent } from "../pg/mod.ts";

/** What the consumer wants from pgoutput. */
export interface PgoutputWanted {
  publications: string[];
  /** Protocol version; default: the highest the server supports. */
  protoVersion?: number;
  binary?: boolean;
  messages?: boolean;
  /** Stream in-progress transactions; `"parallel"` needs protocol 4 (PG 16+). */
  streaming?: boolean | "parallel";
  twoPhase?: boolean;
  /** `"none"`: only changes without a replication origin (PG 16+). */
  origin?: "none" | "any";
}

/** The negotiated option set and the protocol version it uses. */
export interface PgoutputOptions {
  protoVersion: number;
  streaming: "off" | "on" | "parallel";
  /** Option name → value, to be rendered by the replication command. */
  options: Array<[string, string]>;
}

/** The highest pgoutput protocol version a server of `serverVersionNum` speaks. */
export function maxProtoVersion(serverVersionNum: number): number {
  if (serverVersionNum >= 160000) return 4;
  if (serverVersionNum >= 150000) return 3;
  if (serverVersionNum >= 140000) return 2;
  return 1;
}

/**
 * Chooses pgoutput options for a server version.
 *
 * @throws {RangeError} when a wanted feature needs a newer server or protocol.
 */
export function choosePgoutputOptions(
  serverVersionNum: number,
  wanted: PgoutputWanted,
): PgoutputOptions {
  if (wanted.publications.length === 0) {
    throw new RangeError("At least one publication name is required");
  }
  const max = maxProtoVersion(serverVersionNum);
  const protoVersion = wanted.protoVersion ?? max;
  if (!Number.isInteger(protoVersion) || protoVersion < 1 || protoVersion > max) {
    throw new RangeError(
      `Protocol version ${wanted.protoVersion} is not supported by this server: use 1 to ${max}`,
    );
  }
  const options: Array<[string, string]> = [
    ["proto_version", String(protoVersion)],
    ["publication_names", wanted.publications.map(quoteIdent).join(",")],
  ];
  if (wanted.binary) options.push(["binary", "true"]);
  if (wanted.messages) options.push(["messages", "true"]);
  let streaming: PgoutputOptions["streaming"] = "off";
  if (wanted.streaming) {
    const parallel = wanted.streaming === "parallel";
    if (protoVersion < (parallel ? 4 : 2)) {
      throw new RangeError(
        `Streaming${parallel ? " in parallel mode" : ""} needs protocol version ` +
          `${parallel ? 4 : 2} or later, not ${protoVersion}`,
      );
    }
    streaming = parallel ? "parallel" : "on";
    options.push(["streaming", streaming]);
  }
  if (wanted.twoPhase) {
    if (protoVersion < 3) {
      throw new RangeError(
        `Two-phase decoding needs protocol version 3 or later, not ${protoVersion}`,
      );
    }
    options.push(["two_phase", "on"]);
  }
  if (wanted.origin !== undefined) {
    if (serverVersionNum < 160000) {
      throw new RangeError("The origin option needs PostgreSQL 16 or later");
    }
    options.push(["origin", wanted.origin]);
  }
  return { protoVersion, streaming, options };
}
