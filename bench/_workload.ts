/**
 * The bench's workload: a pgbench_accounts-like table, a second table with
 * more column types, their publication, and about 1.06 million row changes in
 * an OLTP-like mix. Running it while streaming is `_capture.ts`'s job.
 */

/**
 * The publication, carrying the workload's version: a capture made by an
 * older workload has another name in its header and is captured again.
 */
export const PUBLICATION = "bench_pub_w1";

/** Rounds of the workload loop; see {@link WORKLOAD_SQL} for what one round does. */
const ROUNDS = 700;

/** Tables and publication, created before the slot so their DDL is not streamed. */
export const SCHEMA_SQL = `
  CREATE TABLE bench_accounts (
    aid int PRIMARY KEY,
    bid int NOT NULL,
    abalance int NOT NULL,
    filler char(84)
  );
  CREATE TABLE bench_events (
    id bigint PRIMARY KEY,
    account int NOT NULL,
    note text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    created_at timestamptz NOT NULL,
    active bool NOT NULL,
    payload jsonb
  );
  CREATE PUBLICATION ${PUBLICATION} FOR TABLE bench_accounts, bench_events;
`;

/**
 * One DO block that commits as it goes. Each of the ${ROUNDS} rounds runs:
 *
 * - one 1,000-row transaction inserting accounts (pgbench's blank filler);
 * - every 2nd round, one 500-row transaction inserting events (every 10th
 *   with a jsonb payload, the rest NULL);
 * - every 5th round, one 1,000-row transaction updating balances;
 * - every 10th round, one 500-row transaction deleting accounts;
 * - 16 single-row transactions: account update, event update, event insert
 *   and account delete, 4 of each.
 *
 * In all: about 878,000 inserts, 145,000 updates and 38,000 deletes in
 * 12,460 transactions.
 */
export const WORKLOAD_SQL = `
  DO $$
  DECLARE
    first int;
    events int;
  BEGIN
    FOR r IN 0..${ROUNDS - 1} LOOP
      first := r * 1000;
      events := (r / 2) * 500;
      INSERT INTO bench_accounts
        SELECT aid, (aid - 1) / 100000 + 1, 0, ''
        FROM generate_series(first + 1, first + 1000) AS aid;
      COMMIT;
      IF r % 2 = 0 THEN
        INSERT INTO bench_events
          SELECT e, (e * 7919) % (first + 1000) + 1, 'event ' || e || ' ' || md5(e::text),
                 round((random() * 10000)::numeric, 2), now() - e * interval '1 second',
                 e % 3 <> 0,
                 CASE WHEN e % 10 = 0
                   THEN jsonb_build_object('id', e, 'tags', jsonb_build_array('a', 'b'))
                 END
          FROM generate_series(events + 1, events + 500) AS e;
        COMMIT;
      END IF;
      IF r % 5 = 4 THEN
        UPDATE bench_accounts SET abalance = abalance + 100 - aid % 200
          WHERE aid BETWEEN first - 999 AND first;
        COMMIT;
      END IF;
      IF r % 10 = 7 THEN
        DELETE FROM bench_accounts WHERE aid BETWEEN first - 5999 AND first - 5500;
        COMMIT;
      END IF;
      FOR i IN 1..4 LOOP
        UPDATE bench_accounts SET abalance = abalance - i WHERE aid = first + i * 37;
        COMMIT;
        UPDATE bench_events SET active = NOT active, amount = amount + 1
          WHERE id = events + i * 11;
        COMMIT;
        INSERT INTO bench_events
          VALUES (10000000 + r * 4 + i, first + i, 'single ' || r, i * 2.5, now(), true, NULL);
        COMMIT;
        DELETE FROM bench_accounts WHERE aid = first + 500 + i;
        COMMIT;
      END LOOP;
    END LOOP;
  END
  $$;
`;

/**
 * The last transaction: one more event row, whose xid tells the capture
 * that everything before it has been streamed. Returns the 32-bit xid as
 * text (the server's `txid_current()` carries the epoch in its high bits).
 */
export const SENTINEL_SQL = `
  INSERT INTO bench_events VALUES (-1, 1, 'sentinel', 0, now(), false, NULL)
  RETURNING (txid_current() % 4294967296)::text AS xid
`;
