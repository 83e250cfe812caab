/**
 * The SQL writer: per (relation, action, shape) one statement text, built once
 * with quoted identifiers and run as a prepared statement with text bind
 * parameters cast to the local column types. Statements are issued without
 * waiting: in a pipelined transaction they go back to back and a failure is
 * handed to the transaction's `onFailure` (the commit window's); otherwise
 * each ends in a Sync and `drain()` collects the first failure. What to write
 * and when to commit is `transaction_applier.ts`'s decision.
 */
import {
  type CopyIn,
  copyTextRow,
  type QueryResult,
  type Row,
  type ServerMessageFields,
  textArrayLiteral,
  type WireSession,
} from "../pg/mod.ts";
import { type ColumnText, UNCHANGED_TOAST } from "../pgoutput/mod.ts";
import {
  copyStatements,
  deleteStatement,
  fastApplicable,
  fastDeleteBatchStatement,
  fastUpdateBatchStatement,
  insertAnyUniqueStatement,
  insertStatement,
  updateStatement,
} from "./conflicts/statements.ts";
import type { ConflictContext, ConflictType } from "./conflicts/settings.ts";
import type { LocalRelation, MappedColumn } from "./relation_map.ts";

/** A statement that failed, with what it was doing. */
export interface WriteFailure {
  cause: unknown;
  operation: string;
  relation: LocalRelation | undefined;
}

/** One conflict as a row statement reported it. */
export interface ConflictEvent {
  relation: LocalRelation;
  type: ConflictType;
  /** `apply_remote`, `keep_local`, `skip`. */
  resolution: string;
  /** The unique index the row was found by, if any. */
  indexName: string | null;
  /** Whether it belongs in `spock.resolutions` (and the log at `conflict_log_level`). */
  recorded: boolean;
  localXid: string | null;
  /** Commit time of the local row as the server prints it (microseconds kept). */
  localCommitTime: string | null;
  /** Node that wrote the local row (`spock.node` id), if known. */
  localNodeId: number | null;
}

/** Options for {@link SqlWriter}. */
export interface SqlWriterOptions {
  /** Runs of INSERTs become multi-row INSERTs (engine.batch_inserts); default true. */
  batchInserts?: boolean;
}

/** The remote transaction the statements belong to: their first three parameters. */
export interface RemoteTransaction {
  /** Commit timestamp as PostgreSQL text (microseconds). */
  commitTime: string;
  xid: string;
  /** Commit LSN as X/Y. */
  commitLsn: string;
  /**
   * Apply it optimistically with fast statements (no conflict handling; a
   * conflict fails the statement, and so the transaction).
   */
  fast: boolean;
  /** Called for every conflict its statements report, when the reply arrives. */
  onConflict?: (event: ConflictEvent) => void;
  /**
   * Pipelined: statements carry no Sync and every failure goes here (the
   * server skips the rest until the next Sync). Without it, each statement
   * ends in a Sync and {@link SqlWriter.drain} returns the first failure.
   */
  onFailure?: (failure: WriteFailure) => void;
}

/** Rows per multi-row INSERT; a fast run that reaches it goes on as a COPY. */
const MAX_BATCH_ROWS = 100;
/** Rows per batched fast UPDATE or DELETE. */
const MAX_CHANGE_ROWS = 1000;
/** COPY data sent per CopyData message. */
const COPY_CHUNK_CHARS = 64 * 1024;
/**
 * Bind parameters per statement. The protocol allows 65,535, but pg-protocol
 * reads a prepared statement's ParameterDescription count as a signed int16,
 * so a statement of more than 32,767 cannot be described.
 */
const MAX_PARAMS = 32_767;

/** The fast run of INSERTs being copied, and its rows not yet sent. */
interface OpenCopy {
  relation: LocalRelation;
  stream: CopyIn;
  columns: MappedColumn[];
  data: string;
}

/**
 * A run of fast UPDATEs or DELETEs of one relation and shape, sent as one
 * statement: each row's values in statement order (`set`, then `where`).
 */
interface ChangeRun {
  kind: "update" | "delete";
  relation: LocalRelation;
  shape: string;
  set: MappedColumn[];
  where: MappedColumn[];
  rows: (string | null)[][];
  /** The rows' keys: a key seen again ends the run (one statement changes a row once). */
  keys: Set<string>;
}

/** A run of INSERTs into one relation, sent as one multi-row INSERT (or copied). */
interface InsertRun {
  relation: LocalRelation;
  rows: ColumnText[][];
  /**
   * The rows' keys, for a relation with a key index: a key seen again ends
   * the run, since an upsert can change a row only once.
   */
  keys: Set<string> | undefined;
}

/** Builds and pipelines the row statements of one apply session. */
export class SqlWriter {
  #session: WireSession;
  #context: ConflictContext;
  #batchRows: number;
  #onConflict: ((event: ConflictEvent) => void) | undefined;
  #onFailure: ((failure: WriteFailure) => void) | undefined;
  /** The last statement sent: replies come in order, so it settles last. */
  #last: Promise<void> = Promise.resolve();
  #failure: WriteFailure | undefined;
  #statements = new WeakMap<LocalRelation, Map<string, string>>();
  #inserts: InsertRun | undefined;
  #copy: OpenCopy | undefined;
  #changes: ChangeRun | undefined;
  #meta: (string | null)[] = [null, null, null];
  #fast = false;

  constructor(session: WireSession, context: ConflictContext, options: SqlWriterOptions = {}) {
    this.#session = session;
    this.#context = context;
    this.#batchRows = options.batchInserts === false ? 1 : MAX_BATCH_ROWS;
  }

  /** The first failure since the last drain, if any. */
  get failure(): WriteFailure | undefined {
    return this.#failure;
  }

  /** Sets the remote transaction the next row statements belong to. */
  setTransaction(transaction: RemoteTransaction): void {
    this.#meta = [transaction.commitTime, transaction.xid, transaction.commitLsn];
    this.#fast = transaction.fast;
    this.#onConflict = transaction.onConflict;
    this.#onFailure = transaction.onFailure;
  }

  /**
   * Sends one statement without waiting for it (after any batched inserts);
   * waits only when too many are in flight.
   */
  async run(
    text: string,
    params: (string | null)[],
    operation: string,
    relation?: LocalRelation,
  ): Promise<void> {
    await this.#flushBatches();
    await this.#send(text, params, operation, relation);
  }

  async #send(
    text: string,
    params: (string | null)[],
    operation: string,
    relation?: LocalRelation,
  ): Promise<void> {
    // Memory stays bounded by the socket's buffer, however big the transaction.
    await this.#session.writable();
    const onConflict = this.#onConflict;
    const query = this.#session.query(text, params, {
      // Parameterless statements vary (per table) except BEGIN, sent once per transaction.
      prepare: params.length > 0 || text === "begin",
      sync: this.#onFailure === undefined,
      onNotice: relation === undefined || onConflict === undefined
        ? undefined
        : (notice) => reportNotice(notice, relation, onConflict),
    });
    this.#settle(query, operation, relation);
  }

  /** Hands a statement's conflicts and failure to the transaction's handlers. */
  #settle(query: Promise<QueryResult>, operation: string, relation?: LocalRelation): void {
    const onConflict = this.#onConflict;
    const onFailure = this.#onFailure;
    this.#last = query.then(
      ({ rows }) => {
        if (relation !== undefined && onConflict !== undefined && rows.length > 0) {
          reportRows(rows, relation, onConflict);
        }
      },
      (cause) => {
        const failure = { cause, operation, relation };
        if (onFailure !== undefined) onFailure(failure);
        else this.#failure ??= failure;
      },
    );
  }

  /** Sends the batched INSERTs, UPDATEs and DELETEs, if any. */
  flush(): Promise<void> {
    return this.#flushBatches();
  }

  /** Drops the batched INSERTs not sent and the failure recorded (the transaction is rolled back). */
  discard(): void {
    this.#inserts = undefined;
    this.#copy = undefined;
    this.#changes = undefined;
    this.#failure = undefined;
  }

  /** Waits for every statement sent; returns the first failure, clearing it. */
  async drain(): Promise<WriteFailure | undefined> {
    await this.#flushBatches();
    await this.#last;
    const failure = this.#failure;
    this.#failure = undefined;
    return failure;
  }

  /**
   * INSERT of a new tuple's columns. Consecutive inserts into one relation
   * are batched into one multi-row INSERT (as Spock's multi-insert does),
   * sent when the batch is full or any other statement comes. Under
   * `check_all_uc_indexes` a table with other unique indexes gets one
   * statement per row.
   */
  async insert(relation: LocalRelation, values: ColumnText[]): Promise<void> {
    if (this.#anyUnique(relation)) {
      const text = this.#statement(
        relation,
        "iu",
        () => insertAnyUniqueStatement(relation, this.#context),
      );
      return this.run(
        text,
        [
          ...this.#meta,
          ...relation.columns.map((column) => unchangedAsNull(values[column.remoteIndex])),
        ],
        "insert",
        relation,
      );
    }
    const copy = this.#copy;
    if (copy?.relation === relation) return this.#copyRow(copy, values);
    const batch = this.#inserts;
    const key = relation.keyIndex === undefined ? undefined : JSON.stringify(
      relation.keyIndex.columns.map((c) => unchangedAsNull(values[c.remoteIndex])),
    );
    if (
      copy !== undefined || this.#changes !== undefined ||
      (batch !== undefined && (batch.relation !== relation || batch.keys?.has(key!)))
    ) {
      await this.#flushBatches();
    }
    if (this.#inserts === undefined) {
      this.#inserts = { relation, rows: [], keys: key === undefined ? undefined : new Set() };
    }
    const rows = this.#inserts.rows;
    rows.push(values);
    if (key !== undefined) this.#inserts.keys!.add(key);
    const columns = Math.max(relation.columns.length, 1);
    if (rows.length >= Math.min(this.#batchRows, Math.floor((MAX_PARAMS - 3) / columns))) {
      if (this.#batchRows > 1 && this.#fastFor(relation)) await this.#startCopy();
      else await this.#flushBatches();
    }
  }

  /**
   * A fast run of INSERTs long enough: the batched rows and those that follow
   * into the same relation go as one COPY, until another statement comes.
   */
  async #startCopy(): Promise<void> {
    const { relation, rows } = this.#inserts!;
    this.#inserts = undefined;
    const { copy, columns, guard } = copyStatements(relation);
    if (guard !== undefined) await this.#send(guard, [], "insert", relation);
    const stream = this.#session.copyIn(copy);
    this.#settle(stream.result, "insert", relation);
    this.#copy = { relation, stream, columns, data: "" };
    for (const values of rows) await this.#copyRow(this.#copy, values);
  }

  async #copyRow(copy: OpenCopy, values: ColumnText[]): Promise<void> {
    copy.data += copyTextRow(copy.columns.map((c) => unchangedAsNull(values[c.remoteIndex])));
    if (copy.data.length < COPY_CHUNK_CHARS) return;
    // Memory stays bounded by the socket's buffer, however long the run.
    await this.#session.writable();
    copy.stream.write(copy.data);
    copy.data = "";
  }

  /** Ends the COPY under way, if any: its last rows, then CopyDone. */
  #endCopy(): void {
    const copy = this.#copy;
    if (copy === undefined) return;
    this.#copy = undefined;
    if (copy.data.length > 0) copy.stream.write(copy.data);
    copy.stream.end();
  }

  /** Fast UPDATEs and DELETEs of a keyed table are batched (unless batching is off). */
  #batchable(relation: LocalRelation): boolean {
    return this.#batchRows > 1 && !relation.locateByAllColumns;
  }

  /** Adds a fast UPDATE or DELETE to the run of its relation and shape. */
  async #batchChange(
    kind: ChangeRun["kind"],
    relation: LocalRelation,
    set: MappedColumn[],
    where: MappedColumn[],
    row: (string | null)[],
  ): Promise<void> {
    // The per-row statement's shape (`f` + shape is its cache key; `fb` + shape the batch's).
    const shape = kind === "update"
      ? `u${mask(relation, set)}/${mask(relation, where)}`
      : `d${mask(relation, where)}`;
    const key = JSON.stringify(row.slice(set.length));
    let run = this.#changes;
    if (
      this.#copy !== undefined || this.#inserts !== undefined ||
      (run !== undefined && (run.relation !== relation || run.shape !== shape || run.keys.has(key)))
    ) {
      await this.#flushBatches();
      run = undefined;
    }
    if (run === undefined) {
      run = { kind, relation, shape, set, where, rows: [], keys: new Set() };
      this.#changes = run;
    }
    run.rows.push(row);
    run.keys.add(key);
    if (run.rows.length >= MAX_CHANGE_ROWS) await this.#flushChanges();
  }

  /** Sends the batched UPDATEs or DELETEs: one row as its own statement, more as one batch. */
  async #flushChanges(): Promise<void> {
    const run = this.#changes;
    if (run === undefined) return;
    this.#changes = undefined;
    const { kind, relation, set, where, rows } = run;
    if (rows.length === 1) {
      const text = this.#statement(
        relation,
        `f${run.shape}`,
        () =>
          kind === "update"
            ? updateStatement(relation, this.#context, set, where, true)
            : deleteStatement(relation, this.#context, where, true),
      );
      return this.#send(text, [...this.#meta, ...rows[0]], kind, relation);
    }
    const text = this.#statement(
      relation,
      `fb${run.shape}`,
      () =>
        kind === "update"
          ? fastUpdateBatchStatement(relation, this.#context, set, where)
          : fastDeleteBatchStatement(relation, this.#context, where),
    );
    const params: (string | null)[] = [...this.#meta, String(rows.length)];
    for (let column = 0; column < set.length + where.length; column++) {
      params.push(textArrayLiteral(rows.map((row) => row[column])));
    }
    await this.#send(text, params, kind, relation);
  }

  #fastFor(relation: LocalRelation): boolean {
    return this.#fast && fastApplicable(relation);
  }

  #anyUnique(relation: LocalRelation): boolean {
    return this.#context.settings.checkAllUcIndexes && relation.keyIndex !== undefined &&
      relation.uniqueIndexes.length > 0;
  }

  /** Sends whatever run is batched: the COPY under way, the INSERTs, or the UPDATEs or DELETEs. */
  async #flushBatches(): Promise<void> {
    this.#endCopy();
    await this.#flushChanges();
    const batch = this.#inserts;
    if (batch === undefined) return;
    this.#inserts = undefined;
    const { relation, rows } = batch;
    const fast = this.#fastFor(relation);
    const text = this.#statement(
      relation,
      `${fast ? "f" : ""}i${rows.length}`,
      () => insertStatement(relation, this.#context, rows.length, fast),
    );
    const params: (string | null)[] = [...this.#meta];
    for (const values of rows) {
      for (const column of relation.columns) {
        params.push(unchangedAsNull(values[column.remoteIndex]));
      }
    }
    await this.#send(text, params, "insert", relation);
  }

  /**
   * UPDATE setting every sent column (UNCHANGED_TOAST columns keep the local
   * value), locating the row by `identity` with `key` (the old tuple when the
   * provider sent one, else the new tuple); `old` gives delta columns' old values.
   */
  update(
    relation: LocalRelation,
    identity: MappedColumn[],
    key: ColumnText[],
    values: ColumnText[],
    old: ColumnText[] | undefined,
  ): Promise<void> {
    const set = relation.columns.filter((column) => values[column.remoteIndex] !== UNCHANGED_TOAST);
    if (!set.some((column) => column.written)) return Promise.resolve();
    const where = identity.filter((column) => key[column.remoteIndex] !== UNCHANGED_TOAST);
    const fast = this.#fastFor(relation);
    // An old tuple comes when the key changed (or with REPLICA IDENTITY FULL): not batched.
    if (fast && old === undefined && this.#batchable(relation)) {
      return this.#batchChange("update", relation, set, where, [
        ...set.map((column) => values[column.remoteIndex] as string | null),
        ...where.map((column) => key[column.remoteIndex] as string | null),
      ]);
    }
    const text = this.#statement(
      relation,
      `${fast ? "f" : ""}u${mask(relation, set)}/${mask(relation, where)}`,
      () => updateStatement(relation, this.#context, set, where, fast),
    );
    const params: (string | null)[] = [...this.#meta];
    for (const column of set) params.push(values[column.remoteIndex] as string | null);
    for (const column of where) params.push(key[column.remoteIndex] as string | null);
    for (const column of relation.deltaColumns) {
      if (!set.includes(column)) continue;
      params.push(old === undefined ? null : unchangedAsNull(old[column.remoteIndex]));
    }
    return this.run(text, params, "update", relation);
  }

  /** DELETE locating the row by `identity` in the old tuple. */
  delete(relation: LocalRelation, identity: MappedColumn[], key: ColumnText[]): Promise<void> {
    const where = identity.filter((column) => key[column.remoteIndex] !== UNCHANGED_TOAST);
    const fast = this.#fastFor(relation);
    if (fast && this.#batchable(relation)) {
      return this.#batchChange(
        "delete",
        relation,
        [],
        where,
        where.map((column) => key[column.remoteIndex] as string | null),
      );
    }
    const text = this.#statement(
      relation,
      `${fast ? "f" : ""}d${mask(relation, where)}`,
      () => deleteStatement(relation, this.#context, where, fast),
    );
    const params: (string | null)[] = [...this.#meta];
    for (const column of where) params.push(key[column.remoteIndex] as string | null);
    return this.run(text, params, "delete", relation);
  }

  /** TRUNCATE of the relations, with RESTART IDENTITY when asked; never CASCADE (as Spock). */
  truncate(relations: LocalRelation[], restartIdentity: boolean): Promise<void> {
    const names = relations.map((relation) => relation.qualifiedName).join(", ");
    const text = `truncate table ${names}${restartIdentity ? " restart identity" : ""}`;
    return this.run(text, [], "truncate", relations[0]);
  }

  #statement(relation: LocalRelation, shape: string, build: () => string): string {
    let byShape = this.#statements.get(relation);
    if (byShape === undefined) {
      byShape = new Map();
      this.#statements.set(relation, byShape);
    }
    let text = byShape.get(shape);
    if (text === undefined) {
      text = build();
      byShape.set(shape, text);
    }
    return text;
  }
}

/** Conflicts a row statement returned (rows with `conflict_type`). */
function reportRows(
  rows: Row[],
  relation: LocalRelation,
  onConflict: (event: ConflictEvent) => void,
): void {
  for (const row of rows) {
    if (row.conflict_type === undefined) continue;
    onConflict({
      relation,
      type: row.conflict_type as ConflictType,
      resolution: row.resolution as string,
      indexName: row.index_name as string | null,
      recorded: row.recorded as boolean,
      localXid: row.local_xid as string | null,
      localCommitTime: row.local_ts as string | null,
      localNodeId: row.local_node === null ? null : Number(row.local_node),
    });
  }
}

/** A conflict found inside an INSERT's upsert: a NOTICE with SQLSTATE SP100, the conflict as JSON. */
function reportNotice(
  notice: ServerMessageFields,
  relation: LocalRelation,
  onConflict: (event: ConflictEvent) => void,
): void {
  if (notice.code !== "SP100" || notice.detail === undefined) return;
  const conflict = JSON.parse(notice.detail);
  onConflict({
    relation,
    type: conflict.conflict_type,
    resolution: conflict.resolution,
    indexName: conflict.index_name,
    recorded: true,
    localXid: conflict.local_xid,
    localCommitTime: conflict.local_ts,
    localNodeId: conflict.local_node,
  });
}

function unchangedAsNull(value: ColumnText): string | null {
  return value === UNCHANGED_TOAST ? null : value;
}

function mask(relation: LocalRelation, columns: MappedColumn[]): string {
  const bits = new Array<string>(relation.columns.length).fill("0");
  for (const column of columns) bits[column.remoteIndex] = "1";
  return bits.join("");
}
