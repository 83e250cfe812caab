/**
 * The sequences of a subscription's replication sets, set on the subscriber
 * at the initial sync: each to the provider's value ahead by its cache size
 * (`spock.sequence_state`, as `sync_seq` pushes it), so that ids the provider
 * has handed out, and the next ones it will, are never handed out here.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { APPLY_QUEUED_SEQUENCE_SQL } from "../apply/mod.ts";

const log = getLogger(["spock", "sync"]);

/** The provider's sequences in sets `$1`, each with the value to set: `schema`, `name`, `value`. */
const SET_SEQUENCES_SQL = `
select distinct n.nspname::text as schema, c.relname::text as name,
  (spock._sequence_last_value(c.oid)::numeric + coalesce(st.cache_size, 0))::text as value
from spock.replication_set_seq rs
join spock.replication_set s on s.set_id = rs.set_id
join spock.local_node l on l.node_id = s.set_nodeid
join pg_catalog.pg_class c on c.oid = rs.set_seqoid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join spock.sequence_state st on st.seqoid = c.oid
where s.set_name = any($1::text[])
order by 1, 2`;

/** Whether `schema.name` is a sequence on the subscriber. */
const LOCAL_SEQUENCE_SQL = `select to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))
  is not null as present`;

/**
 * Sets every sequence of `sets` on the subscriber from the provider; one the
 * subscriber lacks is skipped with a warning. Returns how many were set.
 */
export async function synchronizeSequences(
  provider: postgres.Sql,
  local: postgres.Sql,
  sets: string[],
): Promise<number> {
  const sequences = await provider.unsafe(SET_SEQUENCES_SQL, [sets]);
  let set = 0;
  for (const { schema, name, value } of sequences) {
    const [here] = await local.unsafe(LOCAL_SEQUENCE_SQL, [schema, name]);
    if (!here.present) {
      log.warning("Sequence {sequence} of the provider's sets is missing here: not set", {
        sequence: `${schema}.${name}`,
      });
      continue;
    }
    await local.unsafe(APPLY_QUEUED_SEQUENCE_SQL, [
      JSON.stringify({ schema_name: schema, sequence_name: name, last_value: value }),
    ]);
    set++;
  }
  if (set > 0) log.info("{count} sequences set from the provider", { count: set });
  return set;
}
