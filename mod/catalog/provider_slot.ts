/**
 * Dropping a subscription's slot on its provider from a client, as Spock's
 * sub_drop does through libpq: a walsender still streaming the slot for that
 * subscription (its application_name) is terminated first. The SQL function
 * does the same through dblink (`spock._drop_remote_slot`).
 */
import type { CatalogSql } from "./connection.ts";
import { CatalogError } from "./errors.ts";

/** Output plugins of spock's slots (ours is pgoutput; Spock's own are the others). */
const SPOCK_PLUGINS = ["pgoutput", "spock_output", "spock"];
const INACTIVE_WAIT_MS = 5_000;
const POLL_MS = 100;

/**
 * Drops `slotName` on the provider behind `sql`. Resolves `"absent"` when it
 * does not exist.
 *
 * @throws {CatalogError} when the slot is not a logical pgoutput slot, or is
 * still in use by another process after the wait.
 */
export async function dropProviderSlot(
  sql: CatalogSql,
  options: { slotName: string; subscriptionName: string },
): Promise<"dropped" | "absent"> {
  const { slotName, subscriptionName } = options;
  const [slot] = await sql`SELECT plugin::text, active_pid FROM pg_catalog.pg_replication_slots
    WHERE slot_name = ${slotName}`;
  if (slot === undefined) return "absent";
  if (!SPOCK_PLUGINS.includes(slot.plugin)) {
    throw new CatalogError(`Slot "${slotName}" on the provider is not a spock slot`);
  }
  if (slot.active_pid !== null) {
    await sql`SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a
      WHERE a.pid = ${slot.active_pid} AND a.application_name = ${subscriptionName}`;
    const deadline = performance.now() + INACTIVE_WAIT_MS;
    for (;;) {
      const [active] = await sql`SELECT active_pid FROM pg_catalog.pg_replication_slots
        WHERE slot_name = ${slotName} AND active`;
      if (active === undefined) break;
      if (performance.now() > deadline) {
        throw new CatalogError(
          `Slot "${slotName}" on the provider is in use by process ${active.active_pid}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
  const [dropped] = await sql`SELECT pg_catalog.pg_drop_replication_slot(slot_name)
    FROM pg_catalog.pg_replication_slots WHERE slot_name = ${slotName}`;
  return dropped === undefined ? "absent" : "dropped";
}
