/**
 * The row filters a subscription applies, in step with the provider's
 * replication sets at each point of the stream. A change to a table's
 * filters on the provider (repset_add_table with a row_filter, a removal, a
 * dropped set) emits a transactional logical message in the same
 * transaction, so it reaches the subscriber in commit order:
 *
 *   provider:  T1 insert (5)   T2 repset_add_table(row_filter 'id > 10')   T3 insert (5), (20)
 *   stream:    B I C           B M(spock_row_filter) C                     B I I C
 *
 * The message carries the table's memberships in every set (filter and
 * column list): a filter may use a column outside the column list, which the
 * provider sends for the filter and the subscriber does not write.
 *   applied:   (5), old filter state saved with T2's commit, (20) only
 *
 * The state is saved with the local commit of the transaction that carried
 * it, beside the origin's position, so a restart resumes with the filters
 * that held at that position (the provider's catalog may be newer).
 */
import type postgres from "postgres";
import type { Message } from "../pgoutput/mod.ts";
import { ApplyError } from "./errors.ts";

/** The prefix of the logical messages that announce a table's row filters. */
export const ROW_FILTER_MESSAGE_PREFIX = "spock_row_filter";

/** A table's membership in one replication set, as its filter needs it. */
export interface SetMembership {
  /** The set's row filter of the table, or null. */
  row_filter: string | null;
  /** The set's column list for the table, or null for all columns. */
  columns: string[] | null;
}

/**
 * The provider's memberships of the tables that have a row filter in some
 * set: schema → table → replication set → membership.
 */
export type RowFilterDocument = Record<string, Record<string, Record<string, SetMembership>>>;

/** A table's memberships, as one announcement carries them. */
interface Announcement {
  schema: string;
  table: string;
  sets: Record<string, SetMembership>;
}

const decoder = new TextDecoder();

function isMembership(value: unknown): value is SetMembership {
  const membership = value as SetMembership;
  return typeof value === "object" && value !== null &&
    (membership.row_filter === null || typeof membership.row_filter === "string") &&
    (membership.columns === null ||
      (Array.isArray(membership.columns) &&
        membership.columns.every((column) => typeof column === "string")));
}

function parseAnnouncement(message: Message): Announcement {
  try {
    const parsed = JSON.parse(decoder.decode(message.content));
    const sets = parsed?.sets;
    if (
      typeof parsed?.schema === "string" && typeof parsed?.table === "string" &&
      typeof sets === "object" && sets !== null && Object.values(sets).every(isMembership)
    ) {
      return { schema: parsed.schema, table: parsed.table, sets };
    }
  } catch {
    // Reported below.
  }
  throw new ApplyError(
    `Cannot read a "${ROW_FILTER_MESSAGE_PREFIX}" message: expected {"schema", "table", "sets"} as JSON`,
    { code: "ERR_APPLY_PROTOCOL_ORDER", operation: "message" },
  );
}

/**
 * Row filters by table for one subscription: the filters of its subscribed
 * sets, ANDed (Spock's semantics). Announcements of the open remote
 * transaction count once it commits.
 */
export class RowFilterState {
  #document: RowFilterDocument;
  #sets: ReadonlySet<string>;
  #pending: Announcement[] = [];

  constructor(document: RowFilterDocument, subscribedSets: readonly string[]) {
    this.#document = structuredClone(document);
    this.#sets = new Set(subscribedSets);
  }

  /**
   * The filter a row of `schema.table` must pass: each subscribed set's
   * filter in parentheses, joined by `and`; undefined when none filters it.
   */
  filterOf(schema: string, table: string): string | undefined {
    const filters = this.#subscribed(schema, table)
      .filter(({ membership }) => membership.row_filter !== null)
      .map(({ membership }) => `(${membership.row_filter})`);
    return filters.length === 0 ? undefined : filters.join(" and ");
  }

  /**
   * The columns of `schema.table` to write, by Spock's rule for several sets
   * (the union of their column lists; a set without one does not widen it),
   * or undefined for every column the provider sends. The provider also
   * sends the columns a filter uses: those are for the filter only.
   */
  writtenColumns(schema: string, table: string): Set<string> | undefined {
    const lists = this.#subscribed(schema, table)
      .map(({ membership }) => membership.columns)
      .filter((columns) => columns !== null);
    return lists.length === 0 ? undefined : new Set(lists.flat());
  }

  #subscribed(schema: string, table: string): Array<{ set: string; membership: SetMembership }> {
    const bySet = this.#document[schema]?.[table] ?? {};
    return Object.keys(bySet).sort().filter((set) => this.#sets.has(set))
      .map((set) => ({ set, membership: bySet[set] }));
  }

  /**
   * Notes a logical message of the open remote transaction; true when it
   * announced row filters (they count from its commit).
   */
  note(message: Message): boolean {
    if (!message.transactional || message.prefix !== ROW_FILTER_MESSAGE_PREFIX) return false;
    this.#pending.push(parseAnnouncement(message));
    return true;
  }

  /** Whether the open transaction announced filters. */
  get pending(): boolean {
    return this.#pending.length > 0;
  }

  /** The document as it will be once the open transaction commits: what to save with it. */
  committedDocument(): RowFilterDocument {
    const document = structuredClone(this.#document);
    for (const { schema, table, sets } of this.#pending) {
      document[schema] ??= {};
      const filtered = Object.values(sets).some((membership) => membership.row_filter !== null);
      if (filtered) document[schema][table] = structuredClone(sets);
      else delete document[schema][table];
      if (Object.keys(document[schema]).length === 0) delete document[schema];
    }
    return document;
  }

  /** The open transaction committed: its announcements apply. Returns the tables they name. */
  commit(): Array<[string, string]> {
    const tables = this.#pending.map(({ schema, table }): [string, string] => [schema, table]);
    this.#document = this.committedDocument();
    this.#pending = [];
    return tables;
  }

  /** The open transaction is gone (rolled back, or begun anew): its announcements too. */
  discard(): void {
    this.#pending = [];
  }
}

/**
 * Saves a subscription's row filters ($1 subscription id, $2 the document
 * as JSON); run in the local transaction that applied their announcement.
 */
export const SAVE_ROW_FILTERS_SQL = `
insert into spock._sub_filter_state (sub_id, filters) values ($1::text::oid, $2::text::jsonb)
on conflict (sub_id) do update set filters = excluded.filters`;

type Sql = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

/** The row filters saved for a subscription, or undefined when none were ever saved. */
export async function loadRowFilters(
  sql: Sql,
  subscriptionId: number,
): Promise<RowFilterDocument | undefined> {
  const [row] = await sql.unsafe(
    "select filters from spock._sub_filter_state where sub_id = $1::text::oid",
    [String(subscriptionId)],
  );
  return row?.filters;
}

/** Saves a subscription's row filters as of the stream position it starts from. */
export async function saveRowFilters(
  sql: Sql,
  subscriptionId: number,
  document: RowFilterDocument,
): Promise<void> {
  await sql.unsafe(SAVE_ROW_FILTERS_SQL, [String(subscriptionId), JSON.stringify(document)]);
}
