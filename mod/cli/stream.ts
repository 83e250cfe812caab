/**
 * `spock stream`: prints every decoded pgoutput message of a logical slot,
 * like pg_recvlogical with a JSON plugin but over the built-in pgoutput. It
 * confirms a transaction to the server only after printing it in full, so a
 * restart resumes after the last printed transaction. It can also save the
 * raw stream (`--capture`) and decode a saved one offline (`--replay`).
 */
import { getLogger } from "@logtape/logtape";
import {
  DsnError,
  formatLsn,
  type Lsn,
  maskDsn,
  parseLsn,
  quoteLiteral,
  resolveConnectOptions,
} from "../pg/mod.ts";
import { type PgoutputMessage, PgoutputStreamDecoder } from "../pgoutput/mod.ts";
import {
  CaptureReader,
  choosePgoutputOptions,
  type CopyBothMessage,
  encodeCaptureFrame,
  encodeCaptureHeader,
  parseCopyBothMessage,
  ReplicationConnection,
  type ReplicationStream,
} from "../transport/mod.ts";
import {
  type Command,
  type CommandContext,
  type ParsedFlags,
  requireString,
  UsageError,
} from "./command.ts";
import { messageToJson, messageToPretty, type StreamFormat } from "./_stream_format.ts";

const log = getLogger(["spock", "cli", "stream"]);
const encoder = new TextEncoder();
const FLUSH_BYTES = 64 * 1024;

/** Buffers output lines and writes them with backpressure. */
class Output {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: string[] = [];
  #bytes = 0;

  constructor(stdout: WritableStream<Uint8Array>) {
    this.#writer = stdout.getWriter();
  }

  add(line: string): void {
    this.#lines.push(line);
    this.#bytes += line.length + 1;
  }

  get full(): boolean {
    return this.#bytes >= FLUSH_BYTES;
  }

  async flush(): Promise<void> {
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    this.#bytes = 0;
    await this.#writer.write(encoder.encode(text));
  }

  release(): void {
    this.#writer.releaseLock();
  }
}

/**
 * Tracks which positions are safe to confirm: the end of every transaction
 * printed in full, or the server's position while nothing is open.
 */
class PrintedPositions {
  #inTransaction = false;
  #openStreams = new Set<number>();
  /** Highest position whose messages are all printed (once the output is flushed). */
  confirmable: Lsn = 0n;

  observe(message: PgoutputMessage): void {
    switch (message.type) {
      case "begin":
      case "begin_prepare":
        this.#inTransaction = true;
        break;
      case "commit":
      case "prepare":
        this.#inTransaction = false;
        this.#advance(message.endLsn);
        break;
      case "commit_prepared":
        this.#advance(message.endLsn);
        break;
      case "rollback_prepared":
        this.#advance(message.rollbackEndLsn);
        break;
      case "stream_start":
        if (message.firstSegment) this.#openStreams.add(message.xid);
        break;
      case "stream_commit":
      case "stream_prepare":
        this.#openStreams.delete(message.xid);
        this.#advance(message.endLsn);
        break;
      case "stream_abort":
        if (message.subXid === message.xid) this.#openStreams.delete(message.xid);
        break;
    }
  }

  /** A keepalive while no transaction is open confirms the server's position. */
  observeIdle(walEnd: Lsn): void {
    if (!this.#inTransaction && this.#openStreams.size === 0) this.#advance(walEnd);
  }

  #advance(lsn: Lsn): void {
    if (lsn > this.confirmable) this.confirmable = lsn;
  }
}

function parseFormat(flags: ParsedFlags): StreamFormat {
  const format = String(flags.format ?? "jsonl");
  if (format !== "jsonl" && format !== "pretty") {
    throw new UsageError(`Invalid --format "${format}": use jsonl or pretty`, streamCommand);
  }
  return format;
}

function parseProtoVersion(flags: ParsedFlags): number | undefined {
  if (flags["proto-version"] === undefined) return undefined;
  const value = Number(flags["proto-version"]);
  if (!Number.isInteger(value) || value < 1 || value > 4) {
    throw new UsageError(
      `Invalid --proto-version "${flags["proto-version"]}": use 1, 2, 3 or 4`,
      streamCommand,
    );
  }
  return value;
}

/** Decodes a batch, queues its output lines and notes which positions are now printed. */
function printMessages(
  batch: CopyBothMessage[],
  decoder: PgoutputStreamDecoder,
  positions: PrintedPositions,
  output: Output,
  format: StreamFormat,
): void {
  for (const item of batch) {
    if (item.type === "keepalive") {
      positions.observeIdle(item.walEnd);
      continue;
    }
    const message = decoder.decode(item.data);
    const json = messageToJson(message, item.walStart, decoder.relations);
    output.add(format === "jsonl" ? JSON.stringify(json) : messageToPretty(json));
    positions.observe(message);
  }
}

async function checkServer(
  conn: ReplicationConnection,
  slot: string,
  publications: string[],
  create: boolean,
  dsn: string,
): Promise<void> {
  const [walLevel] = await conn.query("SHOW wal_level");
  if (walLevel.wal_level !== "logical") {
    throw new Error(
      `The server at ${maskDsn(dsn)} has wal_level=${walLevel.wal_level}: ` +
        "set wal_level = logical in postgresql.conf and restart PostgreSQL",
    );
  }
  const names = publications.map(quoteLiteral).join(", ");
  const found = await conn.query(
    `SELECT pubname FROM pg_catalog.pg_publication WHERE pubname IN (${names})`,
  );
  const missing = publications.filter((p) => !found.some((row) => row.pubname === p));
  if (missing.length > 0) {
    throw new Error(
      `Publication ${missing.map((p) => `"${p}"`).join(", ")} does not exist in this database: ` +
        "create it with CREATE PUBLICATION",
    );
  }
  const slots = await conn.query(
    `SELECT plugin, database, current_database() AS here FROM pg_catalog.pg_replication_slots WHERE slot_name = ${
      quoteLiteral(slot)
    }`,
  );
  if (!create && slots.length === 0) {
    throw new Error(`Replication slot "${slot}" does not exist: create it with --create-slot`);
  }
  if (slots.length > 0) {
    if (create) {
      throw new Error(`Replication slot "${slot}" already exists: drop --create-slot to use it`);
    }
    if (slots[0].plugin !== "pgoutput") {
      throw new Error(
        `Replication slot "${slot}" uses the plugin "${slots[0].plugin}", not pgoutput`,
      );
    }
    if (slots[0].database !== slots[0].here) {
      throw new Error(
        `Replication slot "${slot}" belongs to database "${slots[0].database}", not "${
          slots[0].here
        }"`,
      );
    }
  }
}

async function streamFromServer(
  flags: ParsedFlags,
  context: CommandContext,
  format: StreamFormat,
): Promise<number> {
  const dsn = requireString(flags, "dsn", streamCommand);
  const slot = requireString(flags, "slot", streamCommand);
  const publications = (flags.publication as string[] | undefined) ?? [];
  if (publications.length === 0) {
    throw new UsageError("Missing required option --publication", streamCommand);
  }
  const create = flags["create-slot"] === true;
  if (flags.temporary && !create) {
    throw new UsageError("--temporary needs --create-slot", streamCommand);
  }
  let startLsn: Lsn | undefined;
  if (flags.start !== undefined) {
    try {
      startLsn = parseLsn(String(flags.start));
    } catch (error) {
      throw new UsageError((error as Error).message, streamCommand);
    }
  }
  const protoVersion = parseProtoVersion(flags);

  let connectOptions;
  try {
    connectOptions = resolveConnectOptions(dsn, {
      env: context.env,
      applicationName: "spock stream",
    });
  } catch (error) {
    if (error instanceof DsnError) throw new Error(error.message);
    throw error;
  }
  let conn: ReplicationConnection;
  try {
    conn = await ReplicationConnection.open(connectOptions);
  } catch (error) {
    throw new Error(`Cannot connect to ${maskDsn(dsn)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let stream: ReplicationStream | undefined;
  let capture: Deno.FsFile | undefined;
  const output = new Output(context.stdout);
  // A signal while a batch is being printed waits for the batch: stopping sends the final
  // status update, which must carry that batch's confirmations.
  let printing = false;
  const onAbort = () => {
    if (!printing) void stream?.stop();
  };
  try {
    await checkServer(conn, slot, publications, create, dsn);
    const chosen = choosePgoutputOptions(conn.serverVersionNum, {
      publications,
      protoVersion,
      binary: flags.binary === true,
      messages: flags.messages === true,
      streaming: flags.streaming === true,
      twoPhase: flags["two-phase"] === true,
    });
    if (create) {
      const created = await conn.createSlot(slot, {
        temporary: flags.temporary === true,
        snapshot: "nothing",
        twoPhase: flags["two-phase"] === true,
      });
      log.info("Slot {slot} created at {lsn}", { slot, lsn: formatLsn(created.consistentPoint) });
    }
    if (typeof flags.capture === "string") {
      capture = await Deno.open(flags.capture, { write: true, create: true, truncate: true });
      await capture.write(encodeCaptureHeader({
        format: "spock-capture",
        version: 1,
        protoVersion: chosen.protoVersion,
        serverVersionNum: conn.serverVersionNum,
        options: chosen.options,
      }));
    }
    if (context.signal.aborted) return 0;
    stream = await conn.startReplication(slot, { startLsn, pluginOptions: chosen.options });
    // A signal that came while START_REPLICATION was in flight must still stop the stream.
    if (context.signal.aborted) onAbort();
    else context.signal.addEventListener("abort", onAbort, { once: true });
    log.info("Streaming slot {slot} with protocol {protoVersion} from {start}", {
      slot,
      protoVersion: chosen.protoVersion,
      start: startLsn === undefined ? "its confirmed position" : formatLsn(startLsn),
    });
    const decoder = new PgoutputStreamDecoder(chosen.protoVersion);
    const positions = new PrintedPositions();
    for await (const batch of stream) {
      printing = true;
      if (capture) {
        for (const item of batch) {
          if (item.type === "xlogdata") await capture.write(encodeCaptureFrame(item));
        }
      }
      printMessages(batch, decoder, positions, output, format);
      await output.flush();
      stream.reportProgress(positions.confirmable);
      printing = false;
      if (context.signal.aborted) break; // the finally block stops with the final status
    }
    return 0;
  } finally {
    context.signal.removeEventListener("abort", onAbort);
    await output.flush().catch(() => {});
    output.release();
    await stream?.stop().catch(() => {});
    await conn.close().catch(() => {});
    capture?.close();
  }
}

async function replayCapture(
  path: string,
  context: CommandContext,
  format: StreamFormat,
): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new Error(`Cannot open capture file "${path}": ${(error as Error).message}`);
  }
  const reader = new CaptureReader();
  const output = new Output(context.stdout);
  let decoder: PgoutputStreamDecoder | undefined;
  const positions = new PrintedPositions();
  try {
    for await (const chunk of file.readable) {
      const batch = reader.push(chunk).map(parseCopyBothMessage);
      decoder ??= reader.header && new PgoutputStreamDecoder(reader.header.protoVersion);
      if (decoder) printMessages(batch, decoder, positions, output, format);
      if (output.full) await output.flush();
      if (context.signal.aborted) break;
    }
    reader.finish();
    return 0;
  } finally {
    await output.flush().catch(() => {});
    output.release();
  }
}

/** `spock stream` */
export const streamCommand: Command = {
  name: "stream",
  summary: "Print the decoded changes of a logical replication slot (pgoutput)",
  usage: "spock stream --dsn DSN --slot NAME --publication P [--publication P2 …] [options]\n" +
    "       spock stream --replay FILE [--format jsonl|pretty]",
  description:
    "Streams a logical replication slot over the pgoutput plugin and prints one line per\n" +
    "decoded message. Each transaction is confirmed to the server once printed in full, so a\n" +
    "restart resumes after it. Ctrl-C stops cleanly.",
  flags: {
    "dsn": {
      type: "string",
      value: "DSN",
      description: "Connection string (key=value or postgresql:// URI)",
    },
    "slot": { type: "string", value: "NAME", description: "Replication slot to stream" },
    "publication": {
      type: "string",
      multiple: true,
      value: "NAME",
      description: "Publication to stream (repeatable)",
    },
    "create-slot": { type: "boolean", description: "Create the slot first" },
    "temporary": {
      type: "boolean",
      description: "With --create-slot: a temporary slot, dropped on exit",
    },
    "start": {
      type: "string",
      value: "LSN",
      description: "Start at this LSN (default: the slot's confirmed position)",
    },
    "format": { type: "string", value: "FORMAT", description: "jsonl (default) or pretty" },
    "proto-version": {
      type: "string",
      value: "N",
      description: "pgoutput protocol 1-4 (default: the highest the server speaks)",
    },
    "binary": { type: "boolean", description: "Ask for binary column values" },
    "messages": { type: "boolean", description: "Include pg_logical_emit_message() messages" },
    "streaming": {
      type: "boolean",
      description: "Stream large in-progress transactions (protocol 2+)",
    },
    "two-phase": {
      type: "boolean",
      description: "Decode prepared transactions at PREPARE (protocol 3+)",
    },
    "capture": { type: "string", value: "FILE", description: "Also save the raw stream to FILE" },
    "replay": {
      type: "string",
      value: "FILE",
      description: "Decode a file saved with --capture instead of a server",
    },
  },
  run(flags, _positionals, context) {
    const format = parseFormat(flags);
    if (typeof flags.replay === "string") {
      if (flags.dsn !== undefined) {
        throw new UsageError("--replay and --dsn exclude each other", streamCommand);
      }
      return replayCapture(flags.replay, context, format);
    }
    return streamFromServer(flags, context, format);
  },
};
