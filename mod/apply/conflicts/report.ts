/**
 * Reporting conflicts: the log line (at `conflict_log_level` for recorded
 * conflicts, debug for the expected `*_origin_differs` where the remote side
 * won) and the per-table counters behind `spock.channel_table_stats`. Row
 * values never reach the log; they are in `spock.resolutions`.
 */
import { getLogger, type Logger, type LogLevel } from "@logtape/logtape";
import type { Begin } from "../../pgoutput/mod.ts";
import { formatLsn, formatPgTimestamp } from "../../pg/mod.ts";
import type { LocalRelation } from "../relation_map.ts";
import type { ConflictEvent } from "../sql_writer.ts";
import { CONFLICT_TYPES, type ConflictType } from "./settings.ts";

const log = getLogger(["spock", "apply", "conflicts"]);

/** A PostgreSQL message level (`conflict_log_level`) as a LogTape level. */
function conflictLogLevel(level: string): LogLevel {
  if (level.startsWith("debug")) return "debug";
  if (level === "warning") return "warning";
  if (level === "error") return "error";
  return "info";
}

/** What the log line says about one conflict. */
interface ConflictLogEntry {
  type: ConflictType;
  relation: string;
  indexName: string | null;
  resolution: string;
  recorded: boolean;
  localNodeId: number | null;
  localCommitTime: string | null;
  localXid: string | null;
  remoteNodeId: number;
  remoteCommitTime: string;
  remoteCommitLsn: string;
  remoteXid: string;
}

/** Logs one conflict: recorded ones at `level`, the others at debug. */
function logConflict(entry: ConflictLogEntry, level: LogLevel, logger: Logger = log): void {
  logger[entry.recorded ? level : "debug"](
    "Conflict {conflictType} on {relation} (index {index}), resolution {resolution}: " +
      "local row from node {localNode} committed {localCommitTime} (xid {localXid}); " +
      "remote row from node {remoteNode} committed {remoteCommitTime} (xid {remoteXid}, " +
      "commit LSN {remoteCommitLsn})",
    {
      conflictType: entry.type,
      relation: entry.relation,
      index: entry.indexName ?? "none",
      resolution: entry.resolution,
      localNode: entry.localNodeId ?? "unknown",
      localCommitTime: entry.localCommitTime ?? "unknown",
      localXid: entry.localXid ?? "none",
      remoteNode: entry.remoteNodeId,
      remoteCommitTime: entry.remoteCommitTime,
      remoteXid: entry.remoteXid,
      remoteCommitLsn: entry.remoteCommitLsn,
    },
  );
}

/** Counters of one remote table. */
export interface TableCounters {
  /** Rows applied: inserted, updated, deleted. */
  inserts: number;
  updates: number;
  deletes: number;
  deltaApplied: number;
  /** Operations that exception handling discarded (not applied, so not counted above). */
  discarded: number;
  conflicts: Record<ConflictType, number>;
}

function emptyCounters(): TableCounters {
  return {
    inserts: 0,
    updates: 0,
    deletes: 0,
    deltaApplied: 0,
    discarded: 0,
    conflicts: {
      insert_exists: 0,
      update_origin_differs: 0,
      update_exists: 0,
      update_missing: 0,
      delete_origin_differs: 0,
      delete_missing: 0,
      delete_exists: 0,
    },
  };
}

/**
 * Upserts the counters gathered since the last flush, adding them to
 * `spock._channel_stats`: $1 subscription id, $2 JSON array of rows.
 */
export const CHANNEL_STATS_SQL = `
insert into spock._channel_stats as s (sub_id, nspname, relname, n_tup_ins, n_tup_upd, n_tup_del,
  n_dca, n_discarded, confl_insert_exists, confl_update_origin_differs, confl_update_exists,
  confl_update_missing, confl_delete_origin_differs, confl_delete_missing, confl_delete_exists)
select $1::text::oid, x.nspname, x.relname, x.ins, x.upd, x.del, x.dca, x.dis, x.ie, x.uod, x.ue,
  x.um, x.dod, x.dm, x.de
from jsonb_to_recordset($2::text::jsonb) as x (nspname name, relname name, ins int8, upd int8,
  del int8, dca int8, dis int8, ie int8, uod int8, ue int8, um int8, dod int8, dm int8, de int8)
on conflict (sub_id, nspname, relname) do update set
  n_tup_ins = s.n_tup_ins + excluded.n_tup_ins, n_tup_upd = s.n_tup_upd + excluded.n_tup_upd,
  n_tup_del = s.n_tup_del + excluded.n_tup_del, n_dca = s.n_dca + excluded.n_dca,
  n_discarded = s.n_discarded + excluded.n_discarded,
  confl_insert_exists = s.confl_insert_exists + excluded.confl_insert_exists,
  confl_update_origin_differs = s.confl_update_origin_differs + excluded.confl_update_origin_differs,
  confl_update_exists = s.confl_update_exists + excluded.confl_update_exists,
  confl_update_missing = s.confl_update_missing + excluded.confl_update_missing,
  confl_delete_origin_differs = s.confl_delete_origin_differs + excluded.confl_delete_origin_differs,
  confl_delete_missing = s.confl_delete_missing + excluded.confl_delete_missing,
  confl_delete_exists = s.confl_delete_exists + excluded.confl_delete_exists,
  updated_at = now()`;

/** Apply counters per remote table (`schema`, `table`), gathered between flushes. */
export class ApplyCounters {
  #tables = new Map<string, { nspname: string; relname: string; counters: TableCounters }>();

  /** The counters of one table, created at zero. */
  table(nspname: string, relname: string): TableCounters {
    const key = `${nspname}\u0000${relname}`;
    let entry = this.#tables.get(key);
    if (entry === undefined) {
      entry = { nspname, relname, counters: emptyCounters() };
      this.#tables.set(key, entry);
    }
    return entry.counters;
  }

  /** True when nothing was counted. */
  get empty(): boolean {
    return this.#tables.size === 0;
  }

  /** Adds every counter of `other` to these. */
  add(other: ApplyCounters): void {
    for (const { nspname, relname, counters } of other.#tables.values()) {
      const sum = this.table(nspname, relname);
      sum.inserts += counters.inserts;
      sum.updates += counters.updates;
      sum.deletes += counters.deletes;
      sum.deltaApplied += counters.deltaApplied;
      sum.discarded += counters.discarded;
      for (const type of CONFLICT_TYPES) sum.conflicts[type] += counters.conflicts[type];
    }
  }

  /** The JSON parameter of {@link CHANNEL_STATS_SQL}. */
  toJson(): string {
    const rows = [...this.#tables.values()].map(({ nspname, relname, counters }) => ({
      nspname,
      relname,
      ins: counters.inserts,
      upd: counters.updates,
      del: counters.deletes,
      dca: counters.deltaApplied,
      dis: counters.discarded,
      ie: counters.conflicts.insert_exists,
      uod: counters.conflicts.update_origin_differs,
      ue: counters.conflicts.update_exists,
      um: counters.conflicts.update_missing,
      dod: counters.conflicts.delete_origin_differs,
      dm: counters.conflicts.delete_missing,
      de: counters.conflicts.delete_exists,
    }));
    return JSON.stringify(rows);
  }
}

/** How often the apply counters are written (at the next commit, or between transactions). */
const COUNTERS_INTERVAL_MS = 1000;

/** Options of {@link ApplyStatistics}. */
export interface ApplyStatisticsOptions {
  /** `spock.subscription` id the counters are kept under (none: not kept). */
  subscriptionId: number | undefined;
  remoteNodeId: number;
  /** `conflict_log_level`. */
  logLevel: string;
  /** Least time between two writes of the counters (default a second). */
  intervalMs?: number;
}

/**
 * One apply session's counters and conflict reports. Counters of the open
 * remote transaction count only once it commits: a transaction rolled back
 * and applied again (a retry, an exception-mode replay) counts once, as its
 * `spock.resolutions` rows do.
 */
export class ApplyStatistics {
  #options: ApplyStatisticsOptions;
  #level: LogLevel;
  /** Counters of committed transactions, not written yet. */
  #committed = new ApplyCounters();
  /** Counters of the open transaction. */
  #transaction = new ApplyCounters();
  #flushedAt = Date.now();

  constructor(options: ApplyStatisticsOptions) {
    this.#options = options;
    this.#level = conflictLogLevel(options.logLevel);
  }

  /** The open transaction's counters of a table. */
  count(relation: LocalRelation): TableCounters {
    const [nspname, relname] = relation.remoteNameParts;
    return this.countTable(nspname, relname);
  }

  /** The open transaction's counters of a remote table, by name (one that may not map). */
  countTable(nspname: string, relname: string): TableCounters {
    return this.#transaction.table(nspname, relname);
  }

  /**
   * Counts and logs a conflict of the remote transaction `begin`, into the
   * counters of that transaction (from {@link detach}) when it is no longer
   * the open one.
   */
  noteConflict(event: ConflictEvent, begin: Begin | undefined, counters?: ApplyCounters): void {
    const [nspname, relname] = event.relation.remoteNameParts;
    (counters ?? this.#transaction).table(nspname, relname).conflicts[event.type]++;
    logConflict({
      type: event.type,
      relation: event.relation.remoteName,
      indexName: event.indexName,
      resolution: event.resolution,
      recorded: event.recorded,
      localNodeId: event.localNodeId,
      localCommitTime: event.localCommitTime,
      localXid: event.localXid,
      remoteNodeId: this.#options.remoteNodeId,
      remoteCommitTime: begin === undefined ? "unknown" : formatPgTimestamp(begin.commitTime),
      remoteCommitLsn: begin === undefined ? "unknown" : formatLsn(begin.finalLsn),
      remoteXid: begin === undefined ? "unknown" : String(begin.xid),
    }, this.#level);
  }

  /**
   * The open transaction's counters, handed over at its COMMIT (conflicts
   * reported later still go there); a new open transaction starts at zero.
   */
  detach(): ApplyCounters {
    const counters = this.#transaction;
    this.#transaction = new ApplyCounters();
    return counters;
  }

  /** Drops the open transaction's counters (rolled back). */
  discardTransaction(): void {
    this.#transaction = new ApplyCounters();
  }

  /**
   * At a COMMIT: the parameters of {@link CHANNEL_STATS_SQL} to run in it
   * when a write is due (a second since the last one), covering the
   * counters of transactions already acknowledged; else undefined. Hand
   * `taken` back to {@link settle} once the COMMIT is answered.
   */
  takeForCommit(): { params: string[]; taken: ApplyCounters } | undefined {
    if (!this.#due(false, this.#committed.empty)) return undefined;
    const taken = this.#committed;
    this.#committed = new ApplyCounters();
    return { params: [String(this.#options.subscriptionId), taken.toJson()], taken };
  }

  /**
   * A COMMIT was answered: the transaction's counters count if it committed;
   * if it did not, the counters its commit would have written are kept for
   * the next write.
   */
  settle(counters: ApplyCounters, committed: boolean, taken?: ApplyCounters): void {
    if (committed) this.#committed.add(counters);
    else if (taken !== undefined) this.#committed.add(taken);
  }

  /**
   * Between transactions: the parameters of {@link CHANNEL_STATS_SQL} for
   * the committed counters when a write is due (something counted, and a
   * second since the last write unless `now`), else undefined. The counters
   * are taken: a failed write loses them.
   */
  takeIfDue(now = false): string[] | undefined {
    if (!this.#due(now, this.#committed.empty)) return undefined;
    const params = [String(this.#options.subscriptionId), this.#committed.toJson()];
    this.#committed = new ApplyCounters();
    return params;
  }

  #due(now: boolean, empty: boolean): boolean {
    if (this.#options.subscriptionId === undefined || empty) return false;
    const interval = this.#options.intervalMs ?? COUNTERS_INTERVAL_MS;
    if (!now && Date.now() - this.#flushedAt < interval) return false;
    this.#flushedAt = Date.now();
    return true;
  }
}
