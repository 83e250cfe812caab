/**
 * Read-only mode on a provider and subscriber pair: in `local` a normal
 * session's DML, TRUNCATE and DDL fail with Spock's error while inbound
 * replication goes on, and neither SET nor connection options nor the
 * server's value read by the session lift a database or server setting;
 * superusers are exempt; in `all` inbound replication pauses (the slot keeps
 * the WAL) and resumes; terminate_active_transactions() ends a writing
 * transaction; repair_mode() keeps rows, a TRUNCATE and queued DDL of its
 * transaction out of replication.
 */
import assert from "node:assert/strict";
import { pgTest, pollUntil } from "../_harness/mod.ts";
import { checkedPair, closeNodes, runDaemon, waitForRow, waitForSync } from "./_mesh.ts";

const REFUSED = /^spock: invalid statement for a read-only cluster$/;

pgTest(
  "spock.readonly local refuses normal sessions' writes, all pauses apply",
  async (t, cluster) => {
    const { nodes, provider, subscriber, sub } = await checkedPair(cluster, ["p", "s"]);
    const admin = cluster.connect();
    await admin`create role app login password 'app'`;
    await subscriber.sql`grant all on t to app`;
    await subscriber.sql`grant create, usage on schema public to app`;
    const daemon = runDaemon(nodes);
    const app = (options: Record<string, string> = {}) =>
      cluster.connect({
        database: "s",
        user: "app",
        password: "app",
        max: 1,
        connection: options,
      });
    const refused = async (sql: ReturnType<typeof app>, statement: string) => {
      const outcome = await sql.unsafe(statement).then(() => "done", (e) => (e as Error).message);
      assert.match(outcome, REFUSED, statement);
    };
    try {
      await waitForSync(subscriber, sub);
      await subscriber.sql`insert into t values (1, 1)`;

      await t.step(
        "local, by ALTER DATABASE: DML, TRUNCATE and DDL refused; SET and PGOPTIONS do not lift it",
        async () => {
          await admin`alter database s set spock.readonly = 'local'`;
          const session = app();
          const optioned = app({ "spock.readonly": "off" });
          try {
            for (
              const statement of [
                "insert into t values (2, 2)",
                "update t set v = 3",
                "delete from t",
                "truncate t",
                "create table other (k int)",
              ]
            ) await refused(session, statement);
            await session`set spock.readonly = off`;
            await refused(session, "insert into t values (2, 2)");
            await refused(optioned, "insert into t values (2, 2)");
            const [{ mode }] = await subscriber.sql`select spock.readonly_mode() as mode`;
            assert.equal(mode, "local");
            // Inbound replication goes on.
            await provider.sql`insert into t values (10, 10)`;
            await waitForRow(subscriber, "t", "k", 10);
            // A superuser is exempt.
            await subscriber.sql`insert into t values (11, 11)`;
          } finally {
            await session.end();
            await optioned.end();
            await admin`alter database s reset spock.readonly`;
          }
        },
      );

      await t.step("local, by ALTER SYSTEM: a session's SET off does not lift it", async () => {
        await admin`alter system set spock.readonly = 'local'`;
        await admin`select pg_reload_conf()`;
        const session = app();
        try {
          await pollUntil(async () => {
            const [{ mode }] =
              await session`select current_setting('spock.readonly', true) as mode`;
            return mode === "local" || undefined;
          }, { what: "the reloaded server setting" });
          await session`set spock.readonly = off`;
          await refused(session, "insert into t values (3, 3)");
        } finally {
          await session.end();
          await admin`alter system set spock.readonly = off`;
          await admin`select pg_reload_conf()`;
        }
        const after = app();
        try {
          await pollUntil(async () => {
            const [{ mode }] = await after`select current_setting('spock.readonly', true) as mode`;
            return mode === "off" || undefined;
          }, { what: "the server setting to be reset" });
          await after`insert into t values (3, 3)`;
        } finally {
          await after.end();
        }
      });

      await t.step(
        "all: inbound replication pauses, the slot keeps the WAL, and resumes",
        async () => {
          const [{ slot }] = await subscriber.sql`select sub_slot_name::text as slot
        from spock.subscription where sub_name = ${sub}`;
          await admin`alter database s set spock.readonly = 'all'`;
          // Stopped by the daemon (not between two attempts), and off the slot.
          await pollUntil(async () => {
            const [worker] = await subscriber.sql`select w.state from spock._apply_worker w
          join spock.subscription s on s.sub_id = w.sub_id where s.sub_name = ${sub}`;
            const [row] = await provider.sql`select active from pg_replication_slots
          where slot_name = ${slot}`;
            return (worker?.state === "stopped" && row.active === false) || undefined;
          }, { what: "the subscriber's worker to stop" });
          await provider.sql`insert into t values (20, 20)`;
          const [{ kept }] = await provider
            .sql`select confirmed_flush_lsn < pg_current_wal_lsn() as kept
        from pg_replication_slots where slot_name = ${slot}`;
          assert.equal(kept, true, "the slot keeps the unapplied WAL");
          const rows = await subscriber.sql`select k from t where k = 20`;
          assert.equal(rows.length, 0, "nothing is applied while read-only for all");
          await admin`alter database s reset spock.readonly`;
          await waitForRow(subscriber, "t", "k", 20);
        },
      );

      await t.step(
        "repair_mode(): the repaired part of a transaction stays on the provider",
        async () => {
          await provider.sql`grant all on t to app`;
          await provider.sql`grant usage on schema spock to app`;
          const repairer = cluster.connect({ database: "p", user: "app", password: "app", max: 1 });
          try {
            await repairer.begin(async (tx) => {
              await tx`insert into t values (40, 40)`;
              await tx`select spock.repair_mode(true)`;
              await tx`insert into t values (41, 41)`;
              await tx`update t set v = 1 where k = 40`;
              await tx`select spock.repair_mode(false)`;
              await tx`insert into t values (42, 42)`;
            });
            await repairer.begin(async (tx) => {
              await tx`select spock.repair_mode(true)`;
              await tx`delete from t where k = 10`;
              await tx`truncate t`;
            });
            await provider.sql.begin(async (tx) => {
              await tx`select spock.repair_mode(true)`;
              await tx`select spock.replicate_ddl('create table repaired (k int primary key)')`;
            });
            await repairer`insert into t values (43, 43)`;
          } finally {
            await repairer.end();
          }
          await waitForRow(subscriber, "t", "k", 43);
          const rows = await subscriber.sql`select k, v from t where k in (10, 40, 41, 42, 43)
          order by k`.values();
          assert.deepEqual([...rows], [[10, 10], [40, 40], [42, 42], [43, 43]]);
          const [here] = await provider.sql`select to_regclass('repaired') is not null as made`;
          const [there] = await subscriber.sql`select to_regclass('repaired') is not null as made`;
          assert.deepEqual(
            [here.made, there.made],
            [true, false],
            "the DDL ran on the provider only",
          );
        },
      );

      await t.step("terminate_active_transactions() ends an open writing transaction", async () => {
        const session = app();
        try {
          const inserted = Promise.withResolvers<void>();
          const open = session.begin(async (tx) => {
            await tx`insert into t values (30, 30)`;
            inserted.resolve();
            await tx`select pg_sleep(60)`;
          });
          await Promise.race([inserted.promise, open]);
          const [{ ended }] = await subscriber
            .sql`select spock.terminate_active_transactions() as ended`;
          assert.equal(ended, true);
          await assert.rejects(open);
          const rows = await subscriber.sql`select k from t where k = 30`;
          assert.equal(rows.length, 0);
        } finally {
          await session.end({ timeout: 1 }).catch(() => {});
        }
      });
    } finally {
      await daemon.stop();
      await admin.end();
      await closeNodes(nodes);
    }
  },
);
