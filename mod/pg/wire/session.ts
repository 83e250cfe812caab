/**
 * A PostgreSQL frontend session that pipelines without a Sync per statement
 * (postgres.js ends every query with one). Statements go out back to back,
 * each write ending in Flush; the server answers them in order, and after an
 * error skips everything until the next {@link WireSession.sync}, which is
 * what lets a caller keep many transactions in flight and still know that
 * nothing after a failure ran. Framing is `pg-protocol`'s; this file owns the
 * order of replies, prepared statements, notices and the connection's life.
 *
 *   query(BEGIN) query(INSERT…) simple("… commit")  query(BEGIN) query(UPDATE ✗)  query(…) sync()
 *   ok           ok             ok (at ReadyForQuery)  ok          PgServerError   skipped  'E'
 */
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { serialize } from "pg-protocol";
import { Parser } from "pg-protocol/dist/parser";
import type { PgConnectOptions } from "../connection_options.ts";
import {
  connectEndpoint,
  describeEndpoint,
  type Endpoint,
  endpoints,
  openSocket,
} from "./connect.ts";
import {
  PgConnectionError,
  PgServerError,
  PgSkippedError,
  type ServerMessageFields,
} from "./errors.ts";
import { Fifo } from "./fifo.ts";
import { ScramClient } from "./scram.ts";
import { parseTextValue } from "./text_values.ts";

/** Queued bytes that are written without waiting for the event loop. */
const WRITE_CHUNK_BYTES = 256 * 1024;

/** A result row: column name → value (see `text_values.ts`). */
export type Row = Record<string, unknown>;

/** What one statement returned. */
export interface QueryResult {
  rows: Row[];
  /** The command tag, e.g. `UPDATE 1`. */
  command: string;
  /** Rows affected (the tag's last number; 0 when it has none). */
  count: number;
}

/** How one statement is sent. */
export interface QueryOptions {
  /** Run as a named prepared statement (parsed once per session). */
  prepare?: boolean;
  /** End with a Sync (the statement is then not skipped after a failure before it). */
  sync?: boolean;
  /** Notices raised while the statement runs (else the session's handler). */
  onNotice?: (notice: ServerMessageFields) => void;
}

/** The rows of a `COPY … FROM STDIN` in the pipeline (see {@link WireSession.copyIn}). */
export interface CopyIn {
  /** The COPY's result ("COPY n"), or its failure (as {@link WireSession.query}'s). */
  readonly result: Promise<QueryResult>;
  /** Sends rows in COPY text format (each ends in a newline). */
  write(rows: string): void;
  /** Ends the data (CopyDone). */
  end(): void;
}

/** Options of {@link WireSession.open}. */
export interface WireSessionOptions {
  /** Notices not claimed by a statement. */
  onNotice?: (notice: ServerMessageFields) => void;
}

interface Field {
  name: string;
  dataTypeID: number;
}

interface Statement {
  name: string;
  state: "unsent" | "sent" | "ready";
  fields: Field[] | undefined;
}

interface Pending {
  kind: "extended" | "simple" | "sync";
  resolve: (result: QueryResult & { status: string }) => void;
  reject: (error: unknown) => void;
  rows: Row[];
  fields: Field[] | undefined;
  command: string;
  /** The statement this entry sends Parse for. */
  parses: Statement | undefined;
  /** The prepared statement it runs (its fields come from the Describe at Parse). */
  statement: Statement | undefined;
  /** A simple query's error, settled at its ReadyForQuery. */
  error: unknown;
  onNotice: ((notice: ServerMessageFields) => void) | undefined;
  /** A simple query's rows as they arrive, before the query ends (or the session is lost). */
  onRow?: (row: Row) => void;
}

interface BackendMessage {
  name: string;
  [field: string]: unknown;
}

function commandCount(tag: string): number {
  const last = tag.slice(tag.lastIndexOf(" ") + 1);
  const count = Number(last);
  return Number.isInteger(count) ? count : 0;
}

function fieldsOf(message: BackendMessage): ServerMessageFields {
  const m = message as unknown as ServerMessageFields;
  return {
    severity: m.severity,
    code: m.code,
    message: m.message,
    detail: m.detail,
    hint: m.hint,
    position: m.position,
    where: m.where,
    schema: m.schema,
    table: m.table,
    column: m.column,
    dataType: m.dataType,
    constraint: m.constraint,
    routine: m.routine,
  };
}

function md5Hex(data: string | Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** One frontend session on the extended query protocol, pipelined. */
export class WireSession {
  #socket: Duplex;
  #endpoint: Endpoint;
  #onNotice: ((notice: ServerMessageFields) => void) | undefined;
  #pending = new Fifo<Pending>();
  #outgoing: Buffer[] = [];
  #outgoingBytes = 0;
  #flushScheduled = false;
  #writable = true;
  #drainWaiters: Array<() => void> = [];
  #statements = new Map<string, Statement>();
  /** The first error since the last completed Sync: later results count as skipped. */
  #failure: unknown = undefined;
  /**
   * The server discards everything until a Sync (an extended-protocol
   * message failed, and no Sync was sent since): what is sent now is never
   * answered, so it is skipped at once.
   */
  #ignoring = false;
  #lost: PgConnectionError | undefined;
  /** The COPY FROM STDIN whose data is still being sent: the server reads nothing else. */
  #copying: CopyIn | undefined;
  #backendKey: { processID: number; secretKey: number } | undefined;
  #status = "I";
  #parameters = new Map<string, string>();
  #startup: {
    resolve: () => void;
    reject: (error: unknown) => void;
    step: (m: BackendMessage) => void;
  } | undefined;
  #closed: Promise<void>;

  private constructor(socket: Duplex, endpoint: Endpoint, options: WireSessionOptions) {
    this.#socket = socket;
    this.#endpoint = endpoint;
    this.#onNotice = options.onNotice;
    socket.on("drain", () => {
      this.#writable = true;
      for (const wake of this.#drainWaiters.splice(0)) wake();
    });
    socket.on("error", (error: Error) => this.#lose(error));
    this.#closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#lose(undefined);
        resolve();
      })
    );
    const parser = new Parser();
    const handle = (message: unknown) => this.#handle(message as BackendMessage);
    socket.on("data", (data: Buffer) => {
      try {
        parser.parse(data, handle);
      } catch (error) {
        // A message this client cannot read (or a fault handling one) ends the session, never
        // the process: the throw would otherwise escape the socket's event handler.
        this.#lose(error instanceof Error ? error : new Error(String(error)));
        socket.destroy();
      }
    });
  }

  /**
   * Connects to the first endpoint of `options` that accepts the session
   * (libpq's order), authenticating with trust, password, MD5 or
   * SCRAM-SHA-256, with TLS as `sslmode` said.
   */
  static async open(
    options: PgConnectOptions,
    settings: WireSessionOptions = {},
  ): Promise<WireSession> {
    const timeoutMs = options.connect_timeout === undefined
      ? undefined
      : options.connect_timeout * 1000;
    let lastError: unknown;
    for (const endpoint of endpoints(options)) {
      try {
        const { socket } = await openSocket(endpoint, options, timeoutMs);
        const session = new WireSession(socket, endpoint, settings);
        try {
          await session.#start(options);
        } catch (error) {
          session.#socket.destroy();
          throw error;
        }
        return session;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** The transaction status of the last ReadyForQuery: 'I' idle, 'T' in a block, 'E' failed block. */
  get transactionStatus(): string {
    return this.#status;
  }

  /** A server parameter reported at startup or since (`server_version_num` …). */
  parameter(name: string): string | undefined {
    return this.#parameters.get(name);
  }

  /** True once the connection is gone. */
  get lost(): boolean {
    return this.#lost !== undefined;
  }

  /** Statements sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.length;
  }

  /**
   * Sends one statement with text parameters (their types inferred by the
   * server, as postgres.js does for strings) without waiting for it.
   * Rejects with `PgServerError` when it fails, `PgSkippedError` when an
   * earlier statement since the last Sync failed, `PgConnectionError` when
   * the connection is lost first.
   */
  query(
    text: string,
    params: readonly (string | null)[] = [],
    options: QueryOptions = {},
  ): Promise<QueryResult> {
    const result = new Promise<QueryResult>((resolve, reject) => {
      if (this.#lost) return reject(this.#lost);
      if (this.#ignoring) return reject(new PgSkippedError(this.#failure));
      const entry = this.#entry("extended", resolve, reject, options.onNotice);
      if (options.prepare) {
        let statement = this.#statements.get(text);
        if (statement === undefined) {
          statement = {
            name: `spock_${this.#statements.size + 1}`,
            state: "unsent",
            fields: undefined,
          };
          this.#statements.set(text, statement);
        }
        entry.statement = statement;
        if (statement.state === "unsent") {
          statement.state = "sent";
          entry.parses = statement;
          this.#send(serialize.parse({ name: statement.name, text }));
          this.#send(serialize.describe({ type: "S", name: statement.name }));
        }
        this.#send(
          serialize.bind({ statement: statement.name, values: params as (string | null)[] }),
        );
      } else {
        this.#send(serialize.parse({ text }));
        this.#send(serialize.bind({ values: params as (string | null)[] }));
        this.#send(serialize.describe({ type: "P" }));
      }
      this.#send(serialize.execute({}));
      this.#pending.push(entry);
    });
    if (options.sync) void this.sync().catch(() => {});
    return result;
  }

  /**
   * Sends a simple Query (one message, possibly several statements, no
   * parameters): the server reads it whole before running any of it, and
   * skips it after an earlier failure like any other statement. `onRow`
   * sees each row as it arrives, so rows sent before the session was lost
   * are not lost with it.
   */
  simple(
    text: string,
    options: Pick<QueryOptions, "onNotice"> & { onRow?: (row: Row) => void } = {},
  ): Promise<QueryResult> {
    return new Promise((resolve, reject) => {
      if (this.#lost) return reject(this.#lost);
      if (this.#ignoring) return reject(new PgSkippedError(this.#failure));
      const entry = this.#entry("simple", resolve, reject, options.onNotice);
      entry.onRow = options.onRow;
      this.#pending.push(entry);
      this.#send(serialize.query(text));
    });
  }

  /**
   * Starts `text`, a `COPY … FROM STDIN` in text format, without waiting:
   * its rows follow through the returned {@link CopyIn}, and nothing else may
   * be sent before its `end()`. After an earlier failure since the last Sync
   * the server skips the COPY and its data like any other statement.
   */
  copyIn(text: string, options: Pick<QueryOptions, "onNotice"> = {}): CopyIn {
    if (this.#copying !== undefined) {
      throw new Error("copyIn() while another COPY is sending its data");
    }
    const refused = this.#lost ?? (this.#ignoring ? new PgSkippedError(this.#failure) : undefined);
    const result = new Promise<QueryResult>((resolve, reject) => {
      if (refused !== undefined) return reject(refused);
      this.#pending.push(this.#entry("extended", resolve, reject, options.onNotice));
      this.#send(serialize.parse({ text }));
      this.#send(serialize.bind({}));
      this.#send(serialize.execute({}));
    });
    // After a failure the server discards the data until Sync: it is not sent.
    const sending = () => this.#copying === copy && !this.#lost && !this.#ignoring;
    const copy: CopyIn = {
      result,
      write: (rows) => {
        if (sending()) this.#send(serialize.copyData(Buffer.from(rows)));
      },
      end: () => {
        if (sending()) this.#send(serialize.copyDone());
        if (this.#copying === copy) this.#copying = undefined;
      },
    };
    if (refused === undefined) this.#copying = copy;
    return copy;
  }

  /**
   * Sends Sync: ends the pipeline's error state. Resolves with the
   * transaction status after everything before it ('I', 'T' or 'E').
   */
  sync(): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.#lost) return reject(this.#lost);
      if (this.#copying !== undefined) {
        // The server would ignore a Sync while it reads COPY data.
        this.#copying = undefined;
        this.#send(serialize.copyFail("abandoned by the client"));
      }
      this.#ignoring = false;
      this.#pending.push(
        this.#entry("sync", (result) => resolve(result.status), reject, undefined),
      );
      this.#send(serialize.sync());
    });
  }

  /** Resolves once the socket accepts more data (writes are bounded by its buffer). */
  writable(): Promise<void> {
    if (this.#writable || this.#lost) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Asks the server, on a connection of its own, to cancel the statement running now. */
  async cancel(): Promise<void> {
    const key = this.#backendKey;
    if (key === undefined) return;
    const socket = await connectEndpoint(this.#endpoint, 5_000);
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.end(serialize.cancel(key.processID, key.secretKey));
    });
  }

  /** Ends the session (Terminate) and waits, at most `timeoutMs`, for the socket to close. */
  async close(timeoutMs = 2_000): Promise<void> {
    if (!this.#lost) {
      this.#flushNow();
      this.#socket.end(serialize.end());
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#closed,
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
    this.#socket.destroy();
  }

  #entry(
    kind: Pending["kind"],
    resolve: Pending["resolve"],
    reject: Pending["reject"],
    onNotice: Pending["onNotice"],
  ): Pending {
    return {
      kind,
      resolve,
      reject,
      rows: [],
      fields: undefined,
      command: "",
      parses: undefined,
      statement: undefined,
      error: undefined,
      onNotice,
    };
  }

  /**
   * Queues a message. Writes go out once the event loop has run what is
   * ready (a whole chunk of replication messages becomes one write), or at
   * once past {@link WRITE_CHUNK_BYTES}: each socket write costs far more
   * than its bytes.
   */
  #send(message: Buffer): void {
    this.#outgoing.push(message);
    this.#outgoingBytes += message.length;
    if (this.#outgoingBytes >= WRITE_CHUNK_BYTES) return this.#flushNow();
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flushNow());
  }

  /** Writes what is queued as one chunk, ending in Flush so the server answers at once. */
  #flushNow(): void {
    this.#flushScheduled = false;
    if (this.#outgoing.length === 0 || this.#lost) return;
    // Authentication messages must come alone; after startup every write ends in Flush.
    if (this.#startup === undefined) {
      const flush = serialize.flush();
      this.#outgoing.push(flush);
      this.#outgoingBytes += flush.length;
    }
    const data = Buffer.concat(this.#outgoing, this.#outgoingBytes);
    this.#outgoing = [];
    this.#outgoingBytes = 0;
    if (!this.#socket.write(data)) this.#writable = false;
  }

  async #start(options: PgConnectOptions): Promise<void> {
    const where = `${describeEndpoint(this.#endpoint)} as user "${options.user}"`;
    const done = new Promise<void>((resolve, reject) => {
      let scram: ScramClient | undefined;
      const needPassword = () => {
        if (options.pass === undefined) {
          throw new PgConnectionError(
            `Cannot connect to ${where}: the server asks for a password and none is given (DSN password, PGPASSWORD or password file)`,
          );
        }
        return options.pass;
      };
      const step = (message: BackendMessage) => {
        switch (message.name) {
          case "authenticationCleartextPassword":
            this.#send(serialize.password(needPassword()));
            return;
          case "authenticationMD5Password": {
            const inner = md5Hex(needPassword() + options.user);
            const salted = md5Hex(Buffer.concat([Buffer.from(inner), message.salt as Buffer]));
            this.#send(serialize.password(`md5${salted}`));
            return;
          }
          case "authenticationSASL": {
            if (!(message.mechanisms as string[]).includes("SCRAM-SHA-256")) {
              throw new PgConnectionError(
                `Cannot connect to ${where}: the server offers only SASL mechanisms ${
                  JSON.stringify(message.mechanisms)
                } (SCRAM-SHA-256 is supported)`,
              );
            }
            scram = new ScramClient(needPassword());
            this.#send(
              serialize.sendSASLInitialResponseMessage("SCRAM-SHA-256", scram.firstMessage()),
            );
            return;
          }
          case "authenticationSASLContinue":
            this.#send(
              serialize.sendSCRAMClientFinalMessage(scram!.finalMessage(message.data as string)),
            );
            return;
          case "authenticationSASLFinal":
            scram!.verifyFinal(message.data as string);
            return;
          case "authenticationOk":
          case "parameterStatus":
          case "backendKeyData":
          case "notice":
            return;
          case "readyForQuery":
            this.#startup = undefined;
            resolve();
            return;
          case "error": {
            const fields = fieldsOf(message);
            throw new PgServerError({
              ...fields,
              message: `Cannot connect to ${where}: ${fields.message}`,
            });
          }
          default:
            throw new PgConnectionError(
              `Cannot connect to ${where}: unexpected ${message.name} during startup`,
            );
        }
      };
      this.#startup = { resolve, reject, step };
    });
    const params: Record<string, string> = {
      user: options.user,
      database: options.database,
      client_encoding: "UTF8",
      ...options.connection,
    };
    this.#send(serialize.startup(params));
    await done;
  }

  #handle(message: BackendMessage): void {
    if (message.name === "parameterStatus") {
      this.#parameters.set(message.parameterName as string, message.parameterValue as string);
      return;
    }
    if (message.name === "backendKeyData") {
      this.#backendKey = {
        processID: message.processID as number,
        secretKey: message.secretKey as number,
      };
      return;
    }
    const startup = this.#startup;
    if (startup !== undefined) {
      try {
        startup.step(message);
      } catch (error) {
        this.#startup = undefined;
        startup.reject(error);
        this.#socket.destroy();
      }
      return;
    }
    const head = this.#pending.peek();
    switch (message.name) {
      case "parseComplete":
        if (head?.parses) head.parses.state = "ready";
        return;
      case "parameterDescription":
      case "bindComplete":
      case "notification":
      case "copyInResponse":
        return;
      case "rowDescription": {
        const fields = (message.fields as Field[]).map(({ name, dataTypeID }) => ({
          name,
          dataTypeID,
        }));
        if (head === undefined) return;
        if (head.parses !== undefined) head.parses.fields = fields;
        head.fields = fields;
        head.rows = head.kind === "simple" ? [] : head.rows;
        return;
      }
      case "noData":
        if (head?.parses !== undefined) head.parses.fields = [];
        if (head !== undefined) head.fields = [];
        return;
      case "dataRow": {
        if (head === undefined) return;
        const fields = head.fields ?? head.statement?.fields ?? [];
        const values = message.fields as (string | null)[];
        const row: Row = {};
        for (let i = 0; i < fields.length; i++) {
          row[fields[i].name] = parseTextValue(values[i], fields[i].dataTypeID);
        }
        head.rows.push(row);
        head.onRow?.(row);
        return;
      }
      case "commandComplete":
      case "emptyQuery":
        if (head === undefined) return;
        head.command = (message.text as string | undefined) ?? "";
        if (head.kind === "extended") this.#settle(this.#pending.shift()!);
        return;
      case "readyForQuery":
        this.#status = message.status as string;
        if (head !== undefined && head.kind !== "extended") this.#settle(this.#pending.shift()!);
        return;
      case "notice":
        (head?.onNotice ?? this.#onNotice)?.(fieldsOf(message));
        return;
      case "error": {
        const error = new PgServerError(fieldsOf(message));
        // FATAL and PANIC end the session: what was in flight is lost with it.
        if (error.severity === "FATAL" || error.severity === "PANIC") {
          this.#lose(error);
          this.#socket.destroy();
        } else this.#fail(head, error);
        return;
      }
      default:
        this.#lose(new Error(`unexpected ${message.name} from the server`));
        this.#socket.destroy();
    }
  }

  /** Completes an entry: a success after a failure since the last Sync counts as skipped. */
  #settle(entry: Pending): void {
    if (entry.kind === "sync") {
      this.#failure = undefined;
      entry.resolve({ rows: [], command: "", count: 0, status: this.#status });
      return;
    }
    if (entry.error !== undefined) return entry.reject(entry.error);
    if (this.#failure !== undefined) return entry.reject(new PgSkippedError(this.#failure));
    entry.resolve({
      rows: entry.rows,
      command: entry.command,
      count: commandCount(entry.command),
      status: this.#status,
    });
  }

  /**
   * An ErrorResponse for `head`. After an extended-protocol message the
   * server discards everything until Sync: every entry up to the next Sync
   * is skipped now. A simple query's error ends at its ReadyForQuery.
   */
  #fail(head: Pending | undefined, error: PgServerError): void {
    const first = this.#failure === undefined;
    this.#failure ??= error;
    if (head === undefined || head.kind === "sync") {
      this.#lose(new Error(`unexpected error from the server: ${error.message}`));
      this.#socket.destroy();
      return;
    }
    const reason = first ? error : new PgSkippedError(this.#failure);
    if (head.kind === "simple") {
      head.error = reason;
      return;
    }
    this.#pending.shift();
    if (head.parses?.state === "sent") head.parses.state = "unsent";
    head.reject(reason);
    if (!this.#pending.some((entry) => entry.kind === "sync")) this.#ignoring = true;
    while (this.#pending.length > 0 && this.#pending.peek()!.kind !== "sync") {
      const skipped = this.#pending.shift()!;
      if (skipped.parses?.state === "sent") skipped.parses.state = "unsent";
      skipped.reject(new PgSkippedError(this.#failure));
    }
  }

  #lose(cause: Error | undefined): void {
    if (this.#lost) return;
    const message = cause instanceof PgServerError
      ? `Connection to ${describeEndpoint(this.#endpoint)} ended by the server: ${cause.message}`
      : `Connection to ${describeEndpoint(this.#endpoint)} lost${
        cause ? `: ${cause.message}` : ""
      }`;
    this.#lost = new PgConnectionError(message, { cause });
    const startup = this.#startup;
    this.#startup = undefined;
    startup?.reject(cause instanceof PgServerError ? cause : this.#lost);
    for (const entry of this.#pending.takeAll()) entry.reject(this.#lost);
    for (const wake of this.#drainWaiters.splice(0)) wake();
  }
}
