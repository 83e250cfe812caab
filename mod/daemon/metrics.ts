/**
 * The daemon's Prometheus metrics (prom-client), read fresh at each scrape
 * from every served node's catalog and this daemon's workers: per
 * subscription its state, lag, rows applied and conflicts by type (the
 * catalog's counters, so they survive restarts), exceptions logged, last
 * error time, transactions applied and worker restarts since the daemon
 * started; per provider slot the WAL it retains; the daemon's memory.
 */
import { Counter, Gauge, Registry } from "prom-client";
import { CONFLICT_TYPES } from "../apply/mod.ts";
import type { NodeReading } from "./daemon.ts";
import type { StatusRow } from "./node_status.ts";

const SUBSCRIPTION = ["node", "subscription", "provider"] as const;

/** Renders the metrics of what `read` returns, once per scrape. */
export class DaemonMetrics {
  readonly registry = new Registry();
  #read: () => Promise<NodeReading[]>;
  #startedAt = Date.now() / 1000;
  /** The scrape under way: the next one resets the metrics only after it. */
  #last: Promise<unknown> = Promise.resolve();
  #gauge = (name: string, help: string, labelNames: readonly string[]) =>
    new Gauge({ name, help, labelNames, registers: [this.registry] });
  #counter = (name: string, help: string, labelNames: readonly string[]) =>
    new Counter({ name, help, labelNames, registers: [this.registry] });

  #up = this.#gauge("spock_node_up", "1 when the node's catalog could be read", ["node"]);
  #state = this.#gauge(
    "spock_subscription_state",
    "1 for the subscription's status (sub_show_status: replicating, disabled, down, …)",
    [...SUBSCRIPTION, "status"],
  );
  #replicating = this.#gauge(
    "spock_subscription_replicating",
    "1 when the subscription is replicating",
    SUBSCRIPTION,
  );
  #lagSeconds = this.#gauge(
    "spock_subscription_lag_seconds",
    "spock.lag_tracker replication_lag",
    SUBSCRIPTION,
  );
  #lagBytes = this.#gauge(
    "spock_subscription_lag_bytes",
    "spock.lag_tracker replication_lag_bytes",
    SUBSCRIPTION,
  );
  #lastError = this.#gauge(
    "spock_subscription_last_error_timestamp_seconds",
    "When the subscription's worker last failed",
    SUBSCRIPTION,
  );
  #rows = this.#counter(
    "spock_subscription_rows_applied_total",
    "Rows applied (spock.channel_table_stats)",
    [...SUBSCRIPTION, "operation"],
  );
  #conflicts = this.#counter(
    "spock_subscription_conflicts_total",
    "Conflicts met, by type (spock.channel_table_stats)",
    [...SUBSCRIPTION, "type"],
  );
  #discarded = this.#counter(
    "spock_subscription_discarded_total",
    "Operations exception handling discarded (spock.channel_table_stats)",
    SUBSCRIPTION,
  );
  #exceptions = this.#counter(
    "spock_subscription_exceptions_total",
    "Rows of spock.exception_log from the subscription's provider",
    ["node", "subscription"],
  );
  #transactions = this.#counter(
    "spock_subscription_transactions_applied_total",
    "Remote transactions this daemon's worker applied since it started",
    SUBSCRIPTION,
  );
  #restarts = this.#counter(
    "spock_worker_restarts_total",
    "Times the subscription's worker failed and started again",
    SUBSCRIPTION,
  );
  #retained = this.#gauge(
    "spock_slot_retained_wal_bytes",
    "WAL a provider slot keeps (current WAL position - restart_lsn)",
    ["node", "slot"],
  );
  #slotActive = this.#gauge("spock_slot_active", "1 while a subscriber streams", ["node", "slot"]);
  #rss = this.#gauge("spock_daemon_resident_memory_bytes", "The daemon's RSS", []);
  #started = this.#gauge("spock_daemon_start_time_seconds", "When the daemon started", []);

  constructor(read: () => Promise<NodeReading[]>) {
    this.#read = read;
  }

  /** The metrics in Prometheus text format, and its content type; one scrape at a time. */
  render(): Promise<{ body: string; contentType: string }> {
    const rendered = this.#last.then(() => this.#render());
    this.#last = rendered.catch(() => {});
    return rendered;
  }

  async #render(): Promise<{ body: string; contentType: string }> {
    const readings = await this.#read();
    this.registry.resetMetrics();
    for (const reading of readings) this.#record(reading);
    this.#rss.set(Deno.memoryUsage().rss);
    this.#started.set(this.#startedAt);
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  #record(reading: NodeReading): void {
    const snapshot = reading.snapshot;
    this.#up.set({ node: snapshot?.node ?? reading.node }, snapshot === undefined ? 0 : 1);
    if (snapshot === undefined) return;
    const node = snapshot.node;
    const providers = new Map<string, string>();
    for (const sub of snapshot.status.subscriptions) {
      const labels = {
        node,
        subscription: String(sub.subscription),
        provider: String(sub.provider),
      };
      providers.set(labels.subscription, labels.provider);
      this.#state.set({ ...labels, status: String(sub.status) }, 1);
      this.#replicating.set(labels, sub.status === "replicating" ? 1 : 0);
      if (typeof sub.lag_seconds === "number") this.#lagSeconds.set(labels, sub.lag_seconds);
      if (typeof sub.lag_bytes === "number") this.#lagBytes.set(labels, sub.lag_bytes);
      if (sub.last_error_at instanceof Date) {
        this.#lastError.set(labels, sub.last_error_at.getTime() / 1000);
      }
    }
    for (const table of snapshot.status.tables) {
      const subscription = String(table.subscription);
      const labels = { node, subscription, provider: providers.get(subscription) ?? "" };
      for (const operation of ["inserts", "updates", "deletes"] as const) {
        this.#rows.inc({ ...labels, operation: operation.slice(0, -1) }, count(table[operation]));
      }
      this.#discarded.inc(labels, count(table.discarded));
      const byType = table.conflicts_by_type as StatusRow;
      for (const type of CONFLICT_TYPES) {
        this.#conflicts.inc({ ...labels, type }, count(byType[type]));
      }
    }
    for (const { subscription, exceptions } of snapshot.counts.exceptions) {
      this.#exceptions.inc({ node, subscription }, exceptions);
    }
    for (const worker of snapshot.workers) {
      const labels = { node, subscription: worker.subscription, provider: worker.provider };
      this.#transactions.inc(labels, worker.transactions);
      this.#restarts.inc(labels, worker.failures);
    }
    for (const slot of snapshot.counts.slots) {
      this.#retained.set({ node, slot: slot.slot }, slot.retainedBytes);
      this.#slotActive.set({ node, slot: slot.slot }, slot.active ? 1 : 0);
    }
  }
}

/** A counter value from a catalog column (NULL before anything was counted). */
function count(value: unknown): number {
  return typeof value === "number" && value > 0 ? value : 0;
}
