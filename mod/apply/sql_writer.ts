/**
 * The SQL writer: per (relation, action, shape) one statement text, built once
 * with quoted identifiers and run as a prepared statement with text bind
 * parameters cast to the local column types. Statements are pipelined: issued
 * without waiting, at most `maxInFlight` unanswered, collected by `drain()`.
 * What to write and when to commit is `transaction_applier.ts`'s decision.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { type ColumnText, UNCHANGED_TOAST } from "../pgoutput/mod.ts";
import { quoteIdent } from "../pg/mod.ts";
import type { LocalRelation, MappedColumn } from "./relation_map.ts";

const log = getLogger(["spock", "apply"]);

/** A statement that failed, with what it was doing. */
export interface WriteFailure {
  cause: unknown;
  operation: string;
  relation: LocalRelation | undefined;
}

/** Options for {@link SqlWriter}. */
export interface SqlWriterOptions {
  /** Statements sent but unanswered before the writer waits; default 100. */
  maxInFlight?: number;
}

// postgres.js pipelines up to `max_pipeline` (100) queries; past that, or once
// its socket reports backpressure, it sends one queued query per reply. Single-row
// statements then ran at ~12k rows/s; 100-row INSERTs bring 50k rows to ~90k rows/s.
const DEFAULT_MAX_IN_FLIGHT = 100;
/** Rows per multi-row INSERT. */
const MAX_BATCH_ROWS = 100;
/** Bind parameters per statement allowed by the protocol. */
const MAX_PARAMS = 65_535;

/**
 * Values travel as text (`$1::text::int4`): the parameter's declared type is
 * text, so postgres.js passes the string through untouched (its own
 * serializers for timestamptz, json or bytea would reinterpret it), and the
 * server runs the local type's input function, as PG's worker does.
 */
function param(index: number, column: MappedColumn): string {
  return `$${index}::text::${column.localType}`;
}

/** Builds and pipelines the row statements of one apply session. */
export class SqlWriter {
  #sql: postgres.ReservedSql;
  #maxInFlight: number;
  #pending: Promise<void>[] = [];
  #failure: WriteFailure | undefined;
  #statements = new WeakMap<LocalRelation, Map<string, string>>();
  #inserts: { relation: LocalRelation; rows: ColumnText[][] } | undefined;

  constructor(sql: postgres.ReservedSql, options: SqlWriterOptions = {}) {
    this.#sql = sql;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  }

  /** The first failure since the last drain, if any. */
  get failure(): WriteFailure | undefined {
    return this.#failure;
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
    await this.#flushInserts();
    await this.#send(text, params, operation, relation);
  }

  async #send(
    text: string,
    params: (string | null)[],
    operation: string,
    relation?: LocalRelation,
  ): Promise<void> {
    while (this.#pending.length >= this.#maxInFlight) await this.#pending.shift();
    const query = this.#sql.unsafe(text, params, { prepare: params.length > 0 });
    this.#pending.push(query.then(
      (result) => {
        if (result.count === 0 && (operation === "update" || operation === "delete")) {
          // TODO(#4): report update_missing / delete_missing through conflicts/.
          log.debug("No local row for remote {operation} on {relation}", {
            operation,
            relation: relation?.remoteName,
          });
        }
      },
      (cause) => {
        this.#failure ??= { cause, operation, relation };
      },
    ));
  }

  /** Waits for every statement sent; returns the first failure, clearing it. */
  async drain(): Promise<WriteFailure | undefined> {
    await this.#flushInserts();
    const pending = this.#pending;
    this.#pending = [];
    await Promise.all(pending);
    const failure = this.#failure;
    this.#failure = undefined;
    return failure;
  }

  /**
   * INSERT of a new tuple's columns. Consecutive inserts into one relation
   * are batched into one multi-row INSERT (as Spock's multi-insert does),
   * sent when the batch is full or any other statement comes.
   */
  async insert(relation: LocalRelation, values: ColumnText[]): Promise<void> {
    const batch = this.#inserts;
    if (batch !== undefined && batch.relation !== relation) await this.#flushInserts();
    if (this.#inserts === undefined) this.#inserts = { relation, rows: [] };
    const rows = this.#inserts.rows;
    rows.push(values);
    const columns = Math.max(relation.columns.length, 1);
    if (rows.length >= Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMS / columns))) {
      await this.#flushInserts();
    }
  }

  async #flushInserts(): Promise<void> {
    const batch = this.#inserts;
    if (batch === undefined) return;
    this.#inserts = undefined;
    const { relation, rows } = batch;
    const text = this.#statement(relation, `i${rows.length}`, () => {
      const names = relation.columns.map((column) => quoteIdent(column.name)).join(", ");
      const tuples = rows.map((_, row) => {
        const base = row * relation.columns.length;
        return `(${relation.columns.map((column, i) => param(base + i + 1, column)).join(", ")})`;
      });
      const values = `values ${tuples.join(", ")}`;
      if (relation.rowFilter === undefined) {
        return `insert into ${relation.qualifiedName} (${names}) ${values}`;
      }
      return `insert into ${relation.qualifiedName} (${names}) select * from (${values}) ` +
        `as v (${names}) where ${relation.rowFilter}`;
    });
    const params: (string | null)[] = [];
    for (const values of rows) {
      for (const column of relation.columns) {
        params.push(unchangedAsNull(values[column.remoteIndex]));
      }
    }
    await this.#send(text, params, "insert", relation);
  }

  /**
   * UPDATE setting every sent column (UNCHANGED_TOAST columns keep the local
   * value), locating the row by `identity` with the old tuple when the
   * provider sent one, else the new tuple.
   */
  update(
    relation: LocalRelation,
    identity: MappedColumn[],
    key: ColumnText[],
    values: ColumnText[],
  ): Promise<void> {
    const set = relation.columns.filter((column) => values[column.remoteIndex] !== UNCHANGED_TOAST);
    if (set.length === 0) return Promise.resolve();
    const where = identity.filter((column) => key[column.remoteIndex] !== UNCHANGED_TOAST);
    const shape = `u${mask(relation, set)}/${mask(relation, where)}`;
    const text = this.#statement(relation, shape, () => {
      const assignments = set.map((column, i) =>
        `${quoteIdent(column.name)} = ${param(i + 1, column)}`
      );
      return `update ${relation.qualifiedName} set ${assignments.join(", ")} where ${
        locate(relation, where, set.length)
      }${passesFilter(relation, set, 0)}`;
    });
    const params = set.map((column) => values[column.remoteIndex] as string | null);
    for (const column of where) params.push(key[column.remoteIndex] as string | null);
    return this.run(text, params, "update", relation);
  }

  /** DELETE locating the row by `identity` in the old tuple. */
  delete(relation: LocalRelation, identity: MappedColumn[], key: ColumnText[]): Promise<void> {
    const where = identity.filter((column) => key[column.remoteIndex] !== UNCHANGED_TOAST);
    const text = this.#statement(relation, `d${mask(relation, where)}`, () => {
      return `delete from ${relation.qualifiedName} where ${locate(relation, where, 0)}${
        passesFilter(relation, where, 0)
      }`;
    });
    const params = where.map((column) => key[column.remoteIndex] as string | null);
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

/**
 * The row filter as a condition on the row the provider sent: `sent` columns
 * are the statement's parameters from `offset + 1` on, every other column is
 * NULL (so a filter on a column the provider did not send is not true, as in
 * Spock, which sees only the key of a deleted row). Empty without a filter.
 */
function passesFilter(relation: LocalRelation, sent: MappedColumn[], offset: number): string {
  if (relation.rowFilter === undefined) return "";
  const row = relation.columns.map((column) => {
    const index = sent.indexOf(column);
    const value = index < 0 ? `null::${column.localType}` : param(offset + index + 1, column);
    return `${value} as ${quoteIdent(column.name)}`;
  });
  return ` and exists (select from (select ${row.join(", ")}) as v where ${relation.rowFilter})`;
}

function unchangedAsNull(value: ColumnText): string | null {
  return value === UNCHANGED_TOAST ? null : value;
}

function mask(relation: LocalRelation, columns: MappedColumn[]): string {
  const bits = new Array<string>(relation.columns.length).fill("0");
  for (const column of columns) bits[column.remoteIndex] = "1";
  return bits.join("");
}

function conditions(relation: LocalRelation, where: MappedColumn[], offset: number): string {
  const operator = relation.identityFull ? "is not distinct from" : "=";
  return where.map((column, i) =>
    `${quoteIdent(column.name)} ${operator} ${param(offset + i + 1, column)}`
  )
    .join(" and ");
}

/**
 * The WHERE clause locating one row. Under REPLICA IDENTITY FULL several
 * local rows may match; like PG's worker, change only the first one found.
 */
function locate(relation: LocalRelation, where: MappedColumn[], offset: number): string {
  const match = conditions(relation, where, offset);
  if (!relation.identityFull) return match;
  return `(tableoid, ctid) = (select tableoid, ctid from ${relation.qualifiedName} where ${match} limit 1)`;
}
