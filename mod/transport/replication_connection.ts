/**
 * A `replication=database` connection (through postgres.js) and the commands
 * of the streaming replication protocol: IDENTIFY_SYSTEM, slot creation and
 * removal, and START_REPLICATION, which hands over to a {@link ReplicationStream}.
 */
import type { Duplex } from "node:stream";
import postgres from "postgres";
import {
  formatLsn,
  type Lsn,
  parseLsn,
  type PgConnectOptions,
  quoteIdent,
  quoteLiteral,
} from "../pg/mod.ts";
import { SlotInvalidatedError, TransportError } from "./errors.ts";
import { ReplicationStream, type ReplicationStreamOptions } from "./replication_stream.ts";

/** The result of IDENTIFY_SYSTEM. */
export interface SystemIdentity {
  systemId: string;
  timeline: number;
  xlogPos: Lsn;
  dbName: string | null;
}

/** Options of CREATE_REPLICATION_SLOT … LOGICAL pgoutput. */
export interface CreateSlotOptions {
  temporary?: boolean;
  /** `export` (default): keep a snapshot for other sessions; `use`: for this transaction. */
  snapshot?: "export" | "use" | "nothing";
  twoPhase?: boolean;
}

/** A created slot. */
export interface CreatedSlot {
  slotName: string;
  consistentPoint: Lsn;
  snapshotName: string | null;
  outputPlugin: string;
}

const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

/** Session settings under which text values are exact and unambiguous (the walreceiver's). */
const TEXT_VALUE_SETTINGS = {
  DateStyle: "ISO",
  IntervalStyle: "postgres",
  extra_float_digits: "3",
};

/** Checks a slot name the way the server does, with a clearer message. */
export function assertSlotName(name: string): void {
  if (!SLOT_NAME.test(name)) {
    throw new RangeError(
      `Invalid replication slot name "${name}": use 1 to 63 lower-case letters, digits and underscores`,
    );
  }
}

/** A dedicated replication connection to one server. Close it with {@link close}. */
export class ReplicationConnection {
  readonly serverVersionNum: number;
  #sql: postgres.Sql;
  #streaming = false;

  private constructor(sql: postgres.Sql, serverVersionNum: number) {
    this.#sql = sql;
    this.serverVersionNum = serverVersionNum;
  }

  /**
   * Opens a logical replication connection (`replication=database`). The
   * walsender formats pgoutput's text values with its session's settings, so
   * they are fixed at startup as PostgreSQL's walreceiver fixes them (above
   * any database or role default): a provider database with `datestyle =
   * 'SQL, DMY'` would otherwise send 2025-05-06 as 06/05/2025.
   */
  static async open(options: PgConnectOptions): Promise<ReplicationConnection> {
    // postgres.js accepts host and port lists at run time; its types only show one.
    const sql = postgres({
      ...(options as unknown as postgres.Options<Record<string, never>>),
      connection: { ...options.connection, ...TEXT_VALUE_SETTINGS, replication: "database" },
      max: 1,
      fetch_types: false,
      prepare: false,
      idle_timeout: undefined,
      max_lifetime: null,
      onnotice: () => {},
    });
    try {
      const rows = await sql.unsafe("SHOW server_version_num");
      return new ReplicationConnection(sql, Number(rows[0].server_version_num));
    } catch (error) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw error;
    }
  }

  /** Runs a replication command or plain SQL in the simple query protocol. */
  query(text: string): Promise<postgres.Row[]> {
    if (this.#streaming) throw new TransportError("Cannot run a command while streaming");
    return this.#sql.unsafe(text) as unknown as Promise<postgres.Row[]>;
  }

  /** IDENTIFY_SYSTEM: the server's system id, timeline, current WAL position and database. */
  async identifySystem(): Promise<SystemIdentity> {
    const [row] = await this.query("IDENTIFY_SYSTEM");
    return {
      systemId: String(row.systemid),
      timeline: Number(row.timeline),
      xlogPos: parseLsn(String(row.xlogpos)),
      dbName: row.dbname ?? null,
    };
  }

  /** CREATE_REPLICATION_SLOT for the pgoutput plugin. */
  async createSlot(name: string, options: CreateSlotOptions = {}): Promise<CreatedSlot> {
    assertSlotName(name);
    const snapshot = options.snapshot ?? "export";
    const settings = [`SNAPSHOT ${quoteLiteral(snapshot)}`];
    if (options.twoPhase) settings.push("TWO_PHASE true");
    const [row] = await this.query(
      `CREATE_REPLICATION_SLOT ${quoteIdent(name)}${options.temporary ? " TEMPORARY" : ""} ` +
        `LOGICAL pgoutput (${settings.join(", ")})`,
    );
    return {
      slotName: String(row.slot_name),
      consistentPoint: parseLsn(String(row.consistent_point)),
      snapshotName: row.snapshot_name ?? null,
      outputPlugin: String(row.output_plugin),
    };
  }

  /** DROP_REPLICATION_SLOT; with `wait`, waits for a slot in use to be released. */
  async dropSlot(name: string, options: { wait?: boolean } = {}): Promise<void> {
    assertSlotName(name);
    await this.query(`DROP_REPLICATION_SLOT ${quoteIdent(name)}${options.wait ? " WAIT" : ""}`);
  }

  /**
   * START_REPLICATION SLOT … LOGICAL: from here on the connection carries the
   * stream; run no other command on it.
   */
  async startReplication(
    slot: string,
    options: ReplicationStreamOptions & { startLsn?: Lsn; pluginOptions: Array<[string, string]> },
  ): Promise<ReplicationStream> {
    assertSlotName(slot);
    const rendered = options.pluginOptions.map(([key, value]) =>
      `${quoteIdent(key)} ${quoteLiteral(value)}`
    );
    const command = `START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ` +
      `${formatLsn(options.startLsn ?? 0n)} (${rendered.join(", ")})`;
    this.#streaming = true;
    try {
      // postgres.js answers CopyBothResponse with a Duplex; its types say Writable.
      const duplex = await this.#sql.unsafe(command).writable() as unknown as Duplex;
      return new ReplicationStream(duplex, options);
    } catch (error) {
      this.#streaming = false;
      throw await this.#invalidation(slot, error) ?? error;
    }
  }

  /**
   * After START_REPLICATION failed with 55000: a {@link SlotInvalidatedError}
   * when the slot is invalidated (`wal_status` lost, or a reason given), else undefined.
   */
  async #invalidation(slot: string, error: unknown): Promise<SlotInvalidatedError | undefined> {
    if ((error as { code?: unknown })?.code !== "55000") return undefined;
    // to_jsonb: invalidation_reason exists on 17+ only.
    const [row] = await this.query(
      `select to_jsonb(s) ->> 'wal_status' as wal_status,
         to_jsonb(s) ->> 'invalidation_reason' as reason
       from pg_catalog.pg_replication_slots s where s.slot_name = ${quoteLiteral(slot)}`,
    ).catch(() => []);
    if (row === undefined || (row.wal_status !== "lost" && row.reason == null)) return undefined;
    return new SlotInvalidatedError(slot, row.reason ?? "wal_removed", { cause: error });
  }

  /** Closes the connection (after a stream's `stop()`, if one was started). */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 2 });
  }
}
