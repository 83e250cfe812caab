/**
 * A new node's replication sets made like its source's: the same sets with
 * the same actions, and the same tables (columns, row filter) and sequences
 * in them. Nothing in Spock copies set membership; ZODAN mirrors it too, so
 * that what the new node writes replicates as what its source writes does.
 */
import type { ClusterNode } from "./cluster_nodes.ts";

/** What the mirror added or changed. */
export interface MirrorResult {
  sets: number;
  tables: number;
  sequences: number;
}

/** Makes `target`'s sets match `source`'s; existing members are kept. */
export async function mirrorReplicationSets(
  source: ClusterNode,
  target: ClusterNode,
): Promise<MirrorResult> {
  const result: MirrorResult = { sets: 0, tables: 0, sequences: 0 };
  const sets = await source.sql`select set_name::text as name, replicate_insert as ins,
      replicate_update as upd, replicate_delete as del, replicate_truncate as trunc
    from spock.replication_set where set_nodeid = ${source.id}::oid order by set_name`;
  for (const set of sets) {
    const [present] = await target.sql`select replicate_insert as ins, replicate_update as upd,
        replicate_delete as del, replicate_truncate as trunc
      from spock.replication_set where set_nodeid = ${target.id}::oid and set_name = ${set.name}`;
    if (present === undefined) {
      await target.sql`select spock.repset_create(${set.name}, ${set.ins}, ${set.upd},
        ${set.del}, ${set.trunc})`;
      result.sets++;
    } else if (
      present.ins !== set.ins || present.upd !== set.upd || present.del !== set.del ||
      present.trunc !== set.trunc
    ) {
      await target.sql`select spock.repset_alter(${set.name}, ${set.ins}, ${set.upd},
        ${set.del}, ${set.trunc})`;
      result.sets++;
    }
  }
  const tables = await source.sql`select s.set_name::text as set, n.nspname::text as nsp,
      c.relname::text as rel, t.set_att_list as columns, t.set_row_filter as filter
    from spock.replication_set_table t
    join spock.replication_set s on s.set_id = t.set_id
    join pg_catalog.pg_class c on c.oid = t.set_reloid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where s.set_nodeid = ${source.id}::oid order by 1, 2, 3`;
  for (const table of tables) {
    if (await isMember(target, "table", table)) continue;
    await target.sql`select spock.repset_add_table(${table.set},
      format('%I.%I', ${table.nsp}::text, ${table.rel}::text)::regclass, false,
      ${table.columns}::text[], ${table.filter}::text, false)`;
    result.tables++;
  }
  const sequences = await source.sql`select s.set_name::text as set, n.nspname::text as nsp,
      c.relname::text as rel
    from spock.replication_set_seq q
    join spock.replication_set s on s.set_id = q.set_id
    join pg_catalog.pg_class c on c.oid = q.set_seqoid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where s.set_nodeid = ${source.id}::oid order by 1, 2, 3`;
  for (const sequence of sequences) {
    if (await isMember(target, "sequence", sequence)) continue;
    await target.sql`select spock.repset_add_seq(${sequence.set},
      format('%I.%I', ${sequence.nsp}::text, ${sequence.rel}::text)::regclass, false)`;
    result.sequences++;
  }
  return result;
}

async function isMember(
  target: ClusterNode,
  kind: "table" | "sequence",
  member: Record<string, string>,
): Promise<boolean> {
  const relation = target
    .sql`to_regclass(format('%I.%I', ${member.nsp}::text, ${member.rel}::text))`;
  const [row] = kind === "table"
    ? await target.sql`select 1 from spock.replication_set_table t
        join spock.replication_set s on s.set_id = t.set_id
        where s.set_nodeid = ${target.id}::oid and s.set_name = ${member.set}
          and t.set_reloid = ${relation}`
    : await target.sql`select 1 from spock.replication_set_seq q
        join spock.replication_set s on s.set_id = q.set_id
        where s.set_nodeid = ${target.id}::oid and s.set_name = ${member.set}
          and q.set_seqoid = ${relation}`;
  return row !== undefined;
}
