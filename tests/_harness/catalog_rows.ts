/**
 * Catalog rows written directly, for tests of code that reads the catalog
 * without running the SQL API (which would reach a provider through dblink).
 */
import type postgres from "postgres";

/**
 * In an installed catalog: a local node n1 (id 1), a
 * provider node n2 (id 2) and subscription `name` (id 21) from n2 to n1,
 * enabled, on slot `spk_<name>`. Returns the subscription id.
 */
export async function insertSubscriptionRows(sql: postgres.Sql, name: string): Promise<number> {
  await sql.unsafe(
    `insert into spock.node values (1, 'n1', null, null, null), (2, 'n2', null, null, null);
     insert into spock.node_interface values (11, 'n1', 1, 'host=a'), (12, 'n2', 2, 'host=b');
     insert into spock.local_node values (1, 11)`,
  );
  await sql.unsafe(
    `insert into spock.subscription (sub_id, sub_name, sub_origin, sub_target, sub_origin_if,
       sub_target_if, sub_enabled, sub_slot_name)
     values (21, $1, 2, 1, 12, 11, true, $2)`,
    [name, `spk_${name}`],
  );
  return 21;
}
