/**
 * The initial data copy of a subscription (the tables come from
 * `subscribed_tables.ts`): COPY … TO STDOUT on the provider under the slot's exported snapshot, streamed into COPY … FROM STDIN
 * on the subscriber, one table per local transaction. Creating the slot, and
 * walking the sync states around the copy, are the daemon's.
 *
 * One worker per connection takes tables from a shared queue:
 *
 *   provider session (per worker)            local session (per worker)
 *   BEGIN REPEATABLE READ READ ONLY          session_replication_role = replica
 *   SET TRANSACTION SNAPSHOT '…'             pg_replication_origin_session_setup('<slot>_c0')
 *   COPY t1 TO STDOUT  ───── bytes ───────▶  BEGIN; [TRUNCATE ONLY t1;] COPY t1 FROM STDIN; COMMIT
 *   COPY t3 TO STDOUT  ───── bytes ───────▶  BEGIN; … COMMIT
 *   (session ended)                          origin reset and dropped, session ended
 *
 * Every provider session imports the same snapshot, so all tables are copied
 * as of the slot's consistent point: the stream from the slot continues exactly
 * where the copy stops. The copied rows commit under a replication origin, so
 * the subscriber never replicates them onward (loop prevention in a mesh),
 * and with the commit timestamp 1970-01-01, so they lose every conflict.
 */
import { getLogger } from "@logtape/logtape";
import { Buffer } from "node:buffer";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ORIGIN_SQL, PinnedSession } from "../catalog/mod.ts";
import { type PgConnectOptions, quoteIdent, quoteLiteral } from "../pg/mod.ts";
import { DataCopyError } from "./errors.ts";
import type { TableToCopy } from "./subscribed_tables.ts";

const log = getLogger(["spock", "sync"]);

/** Options for {@link copyTables}. */
export interface CopyTablesOptions {
  /** Options for new provider connections (from mod/pg resolveConnectOptions(dsn, {applicationName})). */
  providerOptions: PgConnectOptions;
  /** The snapshot exported by the slot creation; every provider session uses it. */
  snapshotName: string;
  /** Options for new subscriber connections: each worker opens one session for the whole copy. */
  localOptions: PgConnectOptions;
  tables: TableToCopy[];
  /** Tables copied at once, each on its own provider session and local session (default 1). */
  connections?: number;
  /**
   * Replication origin names, one per parallel connection: each local session
   * binds one (created when missing, dropped at the end), so that copied rows
   * carry a non-local origin and are not replicated onward. No other session
   * may hold them. Length must be at least `connections`.
   */
  originNames: string[];
  /** Truncate each local table before copying it (resync). */
  truncate?: boolean;
  /** Aborts the copy (rolls back local transactions, closes sessions) and rejects with signal.reason. */
  signal?: AbortSignal;
  /** Called once per table when it finishes (after its local commit). */
  onTableCopied?: (result: TableCopyResult) => void | Promise<void>;
}

/** What copying one table did. */
export interface TableCopyResult {
  nspname: string;
  relname: string;
  rows: number;
  /** Bytes of COPY text streamed. */
  bytes: number;
  ms: number;
}

/** COPY data is forwarded in batches of about this size (the provider sends one message per row). */
const BATCH_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Copies `tables` from the provider, as of `snapshotName`, into `local`, with
 * `connections` workers taking tables from one queue. Each table is copied in
 * one local transaction; on the first error (or an abort) every worker stops,
 * open local transactions roll back (tables already committed stay copied),
 * the origins are dropped and the sessions released, and the promise rejects.
 * Resolves with one result per table, in the order of `tables`.
 *
 * The slot's replication connection must stay open until this settles: the
 * snapshot lives only as long as it does.
 *
 * @example
 * ```ts
 * const tables = await listSubscribedTables(provider, ["default"]);
 * const results = await copyTables({
 *   providerOptions, snapshotName: slot.snapshotName!, local, tables,
 *   connections: 2, originNames: [`${slotName}_c0`, `${slotName}_c1`],
 * });
 * ```
 */
export async function copyTables(options: CopyTablesOptions): Promise<TableCopyResult[]> {
  const connections = options.connections ?? 1;
  if (!Number.isInteger(connections) || connections < 1) {
    throw new RangeError(`Invalid connections ${connections}: expected an integer of at least 1`);
  }
  if (options.originNames.length < connections) {
    throw new RangeError(
      `Cannot copy with ${connections} connections: only ${options.originNames.length} origin names given`,
    );
  }
  if (options.snapshotName === "") throw new RangeError("Cannot copy without a snapshot name");
  options.signal?.throwIfAborted();
  const tables = options.tables;
  if (tables.length === 0) return [];

  const workers = Math.min(connections, tables.length);
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const results: TableCopyResult[] = new Array(tables.length);
  // The largest tables first, so a big one does not start last on one connection.
  const queue = tables.map((_, position) => position)
    .sort((a, b) => (tables[b].sizeBytes ?? 0) - (tables[a].sizeBytes ?? 0));
  let next = 0;
  let failure: { error: unknown } | undefined;

  // Sessions of its own per worker: one left mid-transaction or mid-COPY by
  // a failure is never handed to another worker, only ended.
  async function work(index: number): Promise<void> {
    let provider: PinnedSession | undefined;
    let local: PinnedSession | undefined;
    try {
      provider = await PinnedSession.open(options.providerOptions, "the provider");
      local = await PinnedSession.open(options.localOptions, "the local database");
      const session = await CopySession.open(provider, local, options, options.originNames[index]);
      try {
        while (!stop.signal.aborted && next < queue.length) {
          const position = queue[next++];
          const result = await session.copy(tables[position], stop.signal);
          results[position] = result;
          await options.onTableCopied?.(result);
        }
      } finally {
        await session.close();
      }
    } catch (error) {
      if (failure === undefined && !stop.signal.aborted) {
        failure = { error };
        stop.abort(error);
      }
    } finally {
      // A failed COPY may leave a session mid-stream: do not wait for it.
      await Promise.all(
        [provider, local].map((session) => session?.end(stop.signal.aborted ? 0 : 5)),
      );
    }
  }

  try {
    await Promise.all(Array.from({ length: workers }, (_, index) => work(index)));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  if (options.signal?.aborted) throw options.signal.reason;
  if (failure !== undefined) throw failure.error;
  return results;
}

/** One worker's pair of sessions: a provider session in the snapshot, a local session under an origin. */
class CopySession {
  #provider: PinnedSession;
  #local: PinnedSession;
  #originName: string;
  #truncate: boolean;
  #inTransaction = false;

  private constructor(
    provider: PinnedSession,
    local: PinnedSession,
    originName: string,
    truncate: boolean,
  ) {
    this.#provider = provider;
    this.#local = local;
    this.#originName = originName;
    this.#truncate = truncate;
  }

  /** Imports the snapshot on the provider session and binds the origin to the local one. */
  static async open(
    providerSession: PinnedSession,
    localSession: PinnedSession,
    options: CopyTablesOptions,
    originName: string,
  ): Promise<CopySession> {
    let created = false;
    try {
      await providerSession.unsafe(
        "select set_config('DateStyle', 'ISO', false), " +
          "set_config('IntervalStyle', 'postgres', false), " +
          "set_config('extra_float_digits', '3', false), " +
          "set_config('statement_timeout', '0', false), set_config('lock_timeout', '0', false), " +
          "set_config('idle_in_transaction_session_timeout', '0', false)",
      );
      await providerSession.unsafe("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      // SET TRANSACTION SNAPSHOT takes no parameters.
      await providerSession.unsafe(
        `SET TRANSACTION SNAPSHOT ${quoteLiteral(options.snapshotName)}`,
      );
    } catch (error) {
      throw new DataCopyError(
        `Cannot import snapshot ${quoteLiteral(options.snapshotName)} on the provider: ${
          reasonOf(error)
        }`,
        { code: "ERR_COPY_SNAPSHOT", cause: error },
      );
    }
    try {
      await localSession.unsafe("set session_replication_role = replica");
      const made = await localSession.unsafe(ORIGIN_SQL.createIfMissing, [originName]);
      created = made[0].created === true;
      await localSession.unsafe(ORIGIN_SQL.sessionSetup, [originName]);
    } catch (error) {
      // An origin we did not create may be another session's: leave it.
      await dropOrigin(localSession, created ? originName : undefined);
      throw new DataCopyError(
        `Cannot bind replication origin ${quoteLiteral(originName)} for the data copy: ${
          reasonOf(error)
        }`,
        { code: "ERR_COPY_ORIGIN", cause: error },
      );
    }
    return new CopySession(
      providerSession,
      localSession,
      originName,
      options.truncate ?? false,
    );
  }

  /** Copies one table in one local transaction; throws naming the table. */
  async copy(table: TableToCopy, signal: AbortSignal): Promise<TableCopyResult> {
    const name = `${quoteIdent(table.nspname)}.${quoteIdent(table.relname)}`;
    const started = performance.now();
    const tally = { rows: 0, bytes: 0 };
    try {
      signal.throwIfAborted();
      const { relkind, columns: allColumns } = await this.#describe(table, name);
      const columns = table.columns ?? allColumns;
      const columnList = columns.length > 0 ? ` (${columns.map(quoteIdent).join(", ")})` : "";

      await this.#local.unsafe("BEGIN");
      this.#inTransaction = true;
      await this.#local.unsafe(
        "select set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true), " +
          "set_config('DateStyle', 'ISO', true), set_config('IntervalStyle', 'postgres', true)",
      );
      if (this.#truncate) await this.#truncateLocal(table, name);
      const writable = await this.#local.copyIn(`COPY ${name}${columnList} FROM STDIN`);
      await this.#stream(copyOutSql(name, relkind, columns, table.rowFilters), writable, {
        signal,
        tally,
      });
      // Copied rows commit with the commit timestamp 1970-01-01, so any
      // change that arrives through a stream wins last-update-wins against
      // them (Spock: a row without a commit timestamp loses).
      await this.#local.unsafe(ORIGIN_SQL.xactSetupCopy);
      await this.#local.unsafe("COMMIT");
      this.#inTransaction = false;
    } catch (error) {
      await this.#rollback();
      if (signal.aborted || error instanceof DataCopyError) throw error;
      // A stream aborted by a lost connection fails with an AbortError: name the loss.
      const lost = [this.#provider.lost, this.#local.lost].find((signal) => signal.aborted);
      const reason = lost?.reason ?? error;
      throw new DataCopyError(`Cannot copy table ${name}: ${reasonOf(reason)}`, {
        code: "ERR_COPY_TABLE",
        table: name,
        cause: error,
      });
    }
    const ms = Math.round(performance.now() - started);
    const rate = Math.round(tally.rows / Math.max(ms, 1) * 1000);
    log.info("Copied {table}: {rows} rows, {bytes} bytes in {ms} ms ({rate} rows/s)", {
      table: name,
      rows: tally.rows,
      bytes: tally.bytes,
      ms,
      rate,
    });
    return {
      nspname: table.nspname,
      relname: table.relname,
      rows: tally.rows,
      bytes: tally.bytes,
      ms,
    };
  }

  /**
   * Pipes the provider's COPY TO STDOUT into `writable`. Whatever fails, both
   * streams end up destroyed, and their errors surface only here: postgres.js
   * destroys its streams with an error again when a session is terminated, and
   * an unheard 'error' event would crash the process.
   */
  async #stream(
    copyOut: string,
    writable: Writable,
    options: { signal: AbortSignal; tally: { rows: number; bytes: number } },
  ): Promise<void> {
    writable.on("error", ignore);
    let readable: Readable | undefined;
    try {
      readable = await this.#provider.copyOut(copyOut);
      readable.on("error", ignore);
      const signal = AbortSignal.any([options.signal, this.#provider.lost, this.#local.lost]);
      // An aborted signal makes pipeline() reject before it wires (and destroys) the streams.
      signal.throwIfAborted();
      await pipeline(readable, (source) => countAndBatch(source, options.tally), writable, {
        signal,
      });
      resumeSocket(readable);
    } catch (error) {
      readable?.destroy();
      writable.destroy(error instanceof Error ? error : undefined);
      throw error;
    }
  }

  /** The table's kind and copyable columns, as of the snapshot. */
  async #describe(
    table: TableToCopy,
    name: string,
  ): Promise<{ relkind: string; columns: string[] }> {
    const [row] = await this.#provider.unsafe(
      `select c.relkind::text as relkind,
         array(select a.attname::text from pg_catalog.pg_attribute a
               where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                 and a.attgenerated = '' order by a.attnum) as columns
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relname = $2`,
      [table.nspname, table.relname],
    );
    if (row === undefined) {
      throw new DataCopyError(
        `Cannot copy table ${name}: the table does not exist on the provider`,
        {
          code: "ERR_COPY_NO_TABLE",
          table: name,
        },
      );
    }
    return { relkind: String(row.relkind), columns: [...(row.columns as string[])] };
  }

  async #truncateLocal(table: TableToCopy, name: string): Promise<void> {
    // TRUNCATE ONLY is refused on a partitioned table; its partitions are its rows.
    const [row] = await this.#local.unsafe(
      `select c.relkind::text as relkind
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relname = $2`,
      [table.nspname, table.relname],
    );
    await this.#local.unsafe(`TRUNCATE ${row?.relkind === "p" ? "" : "ONLY "}${name}`);
  }

  async #rollback(): Promise<void> {
    if (!this.#inTransaction) return;
    this.#inTransaction = false;
    await this.#local.unsafe("ROLLBACK").catch(() => {});
  }

  /** Rolls back anything open and drops the origin (the caller ends the sessions). */
  async close(): Promise<void> {
    await this.#rollback();
    await dropOrigin(this.#local, this.#originName);
  }
}

/** COPY … TO STDOUT for one table: a plain COPY when it can, else COPY (SELECT …). */
function copyOutSql(name: string, relkind: string, columns: string[], filters: string[]): string {
  if (relkind === "r" && filters.length === 0) {
    const columnList = columns.length > 0 ? ` (${columns.map(quoteIdent).join(", ")})` : "";
    return `COPY ${name}${columnList} TO STDOUT`;
  }
  // The sets' filters are ANDed: a row is replicated only when every set's filter passes.
  // The catalog's lexer guarantees each filter stays inside its parentheses.
  const where = filters.length > 0 ? ` WHERE ${filters.map((f) => `(${f})`).join(" AND ")}` : "";
  const only = relkind === "p" ? "" : "ONLY ";
  return `COPY (SELECT ${
    columns.map(quoteIdent).join(", ")
  } FROM ${only}${name}${where}) TO STDOUT`;
}

/**
 * Counts rows (one newline per row in COPY text format: newlines in values are
 * escaped) and bytes, and joins the per-row messages into larger writes.
 */
async function* countAndBatch(
  source: AsyncIterable<Uint8Array>,
  tally: { rows: number; bytes: number },
): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    tally.bytes += chunk.length;
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) {
      tally.rows++;
    }
    pending.push(chunk);
    size += chunk.length;
    if (size >= BATCH_BYTES) {
      yield Buffer.concat(pending, size);
      pending = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(pending, size);
}

/**
 * postgres.js pauses the socket when a COPY OUT stream's buffer is full and
 * resumes it from the stream's read(); when the COPY's last row and its end
 * arrive in one socket read, the stream ends before read() is called again,
 * and the session's socket stays paused: its next query would wait forever.
 * Calling read() once more (it only resumes the socket) undoes that.
 */
function resumeSocket(readable: Readable): void {
  (readable as unknown as { _read(size: number): void })._read(0);
}

/** An 'error' listener for streams whose errors reach us through pipeline(). */
function ignore(): void {}

/**
 * Unbinds the local session's origin and drops it (if named), best effort. A
 * session whose connection was lost leaves it: the next copy binds the same
 * origin and drops it when done.
 */
async function dropOrigin(session: PinnedSession, originName: string | undefined): Promise<void> {
  if (session.lost.aborted) return;
  try {
    await session.unsafe(ORIGIN_SQL.sessionResetIfSetUp);
    if (originName !== undefined) await session.unsafe(ORIGIN_SQL.dropIfExists, [originName]);
  } catch (error) {
    log.warning("Cannot drop the data copy's origin {origin}: {reason}", {
      origin: originName ?? "none",
      reason: reasonOf(error),
    });
  }
}

/**
 * The reason to show for a failure. Data exceptions (SQLSTATE class 22) quote
 * the offending value, which must not reach a message: only the code is shown
 * then, and the error stays available as `cause`.
 */
function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("22")) {
    return `invalid data for the local table (SQLSTATE ${code})`;
  }
  return error instanceof Error ? error.message : String(error);
}
