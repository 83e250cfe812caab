/**
 * Live-mode apply lag, the same for both engines: every 100 ms the subscriber
 * is asked for its last committed transaction (`pg_last_committed_xact()`).
 * Both engines commit applied transactions under a replication origin with the
 * provider's commit time as origin timestamp, which track_commit_timestamp
 * records as the local commit time; lag = subscriber clock − that time. Local
 * transactions (roident 0) say nothing about lag and are dropped. Both servers
 * share one host clock.
 */
import type postgres from "postgres";
import { sleep } from "./_replication_poll.ts";

const SAMPLE_SQL = `select extract(epoch from clock_timestamp() - timestamp) * 1000 as ms,
  roident::int as origin from pg_last_committed_xact() where timestamp is not null`;

/** Lag percentiles in milliseconds. */
export interface LagSummary {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Samples lag on its own client until {@link stop}. */
export class LagSampler {
  #sql: postgres.Sql;
  #intervalMs: number;
  #samples: number[] = [];
  #running = true;
  #loop: Promise<void>;

  /** `sql` is a client of the subscriber's database used by nothing else. */
  constructor(sql: postgres.Sql, intervalMs = 100) {
    this.#sql = sql;
    this.#intervalMs = intervalMs;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const [row] = await this.#sql.unsafe(SAMPLE_SQL);
      if (row !== undefined && row.origin !== 0) this.#samples.push(Number(row.ms));
      await sleep(this.#intervalMs);
    }
  }

  /** Stops sampling and summarizes. */
  async stop(): Promise<LagSummary> {
    this.#running = false;
    await this.#loop;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return {
      samples: sorted.length,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.at(-1) ?? Number.NaN,
    };
  }
}

/** Nearest-rank percentile of sorted values (NaN when empty). */
function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}
