/**
 * What the subscriber's own schema does to applied rows: a secondary unique
 * index (an error, or insert_exists with check_all_uc_indexes), an FK child
 * arriving before its parent (accepted under the replica role), triggers
 * (ENABLE REPLICA fires, ordinary ones do not), generated columns (computed
 * locally) and a local extra column (its default).
 */
import assert from "node:assert/strict";
import { pgTest } from "../_harness/mod.ts";
import {
  addAllTables,
  closeNodes,
  createNodes,
  runDaemon,
  subscribe,
  waitForRow,
  waitForSync,
} from "./_mesh.ts";

pgTest(
  "a secondary unique index conflict: an exception, or insert_exists with check_all_uc_indexes",
  async (_t, cluster) => {
    const ddl = "create table u (id int primary key, email text not null unique, v text)";
    const nodes = await createNodes(cluster, ["up", "us"], ddl);
    const [provider, subscriber] = nodes;
    await addAllTables([provider]);
    const sub = await subscribe(subscriber, provider);
    try {
      await subscriber
        .sql`insert into u values (1, 'a@example.com', 'local'), (3, 'b@example.com', 'local')`;
      let daemon = runDaemon([subscriber], { save_resolutions: true });
      try {
        await waitForSync(subscriber, sub);
        await provider.sql`insert into u values (2, 'a@example.com', 'remote')`;
        await provider.sql`insert into u values (100, 'marker1', 'marker')`;
        await waitForRow(subscriber, "u", "id", 100);
        const [logged] = await subscriber.sql`
        select error_message from spock.exception_log where operation = 'INSERT'`;
        assert.match(logged.error_message, /^23505:/);
      } finally {
        await daemon.stop();
      }
      daemon = runDaemon([subscriber], { save_resolutions: true, check_all_uc_indexes: true });
      try {
        await provider.sql`insert into u values (4, 'b@example.com', 'remote')`;
        await provider.sql`insert into u values (101, 'marker2', 'marker')`;
        await waitForRow(subscriber, "u", "id", 101);
        const rows = await subscriber.sql`select id, v from u where email = 'b@example.com'`;
        assert.deepEqual(rows.map((row) => [row.id, row.v]), [[4, "remote"]]);
        const [resolution] = await subscriber.sql`
        select conflict_type, conflict_resolution, idxname from spock.resolutions`;
        assert.deepEqual(
          [resolution.conflict_type, resolution.conflict_resolution, resolution.idxname],
          ["insert_exists", "apply_remote", "u_email_key"],
        );
      } finally {
        await daemon.stop();
      }
    } finally {
      await closeNodes(nodes);
    }
  },
);

pgTest(
  "FK order, triggers, generated and extra columns follow the subscriber's schema",
  async (_t, cluster) => {
    const common = `
    create table parent (id int primary key);
    create table g (id int primary key, a int not null, b int generated always as (a * 2) stored);`;
    const nodes = await createNodes(cluster, ["sp", "ss"], common);
    const [provider, subscriber] = nodes;
    await provider.sql.unsafe(`
    create table child (id int primary key, parent_id int not null);
    create table extra (id int primary key, v text)`);
    await subscriber.sql.unsafe(`
    create table child (id int primary key, parent_id int not null references parent);
    create table extra (id int primary key, v text, note text not null default 'local');
    create table fired (name text);
    create function note_fired() returns trigger language plpgsql as $$
      begin insert into fired values (tg_argv[0]); return new; end $$;
    create trigger ordinary after insert on extra for each row execute function note_fired('ordinary');
    create trigger replica after insert on extra for each row execute function note_fired('replica');
    alter table extra enable replica trigger replica;`);
    await addAllTables([provider]);
    const sub = await subscribe(subscriber, provider);
    const daemon = runDaemon([subscriber]);
    try {
      await waitForSync(subscriber, sub);
      await provider.sql`insert into child values (1, 42)`; // parent 42 never comes
      await provider.sql`insert into g (id, a) values (1, 21)`;
      await provider.sql`insert into extra values (1, 'remote')`;
      await provider.sql`update extra set v = 'changed' where id = 1`;
      await provider.sql`insert into parent values (100)`;
      await waitForRow(subscriber, "parent", "id", 100);
      const [child] = await subscriber.sql`select parent_id from child where id = 1`;
      assert.equal(child.parent_id, 42);
      const [generated] = await subscriber.sql`select a, b from g where id = 1`;
      assert.deepEqual([generated.a, generated.b], [21, 42]);
      const [extra] = await subscriber.sql`select v, note from extra where id = 1`;
      assert.deepEqual([extra.v, extra.note], ["changed", "local"]);
      const fired = await subscriber.sql`select name from fired`;
      assert.deepEqual(fired.map((row) => row.name), ["replica"]);
    } finally {
      await daemon.stop();
      await closeNodes(nodes);
    }
  },
);
