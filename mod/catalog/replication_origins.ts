/**
 * Every statement spock runs on replication origins, in one place: the
 * origin named after a subscription's slot is the record of what it applied
 * (set with each local COMMIT), and `<slot>_c<n>` are its data copies'.
 * Statements are plain SQL with `$n` parameters, so the apply session's
 * protocol client and postgres.js run the same text. The origin functions
 * a non-superuser role needs are listed in `preflight.ts`'s grants.
 */

/** The copy origins of subscription slot `slot`: `<slot>_c0`, `<slot>_c1`, … */
export function copyOriginName(slot: string, index: number): string {
  return `${slot}_c${index}`;
}

/** SQL for replication origins; `$1` is always the origin's name. */
export const ORIGIN_SQL = Object.freeze({
  /** Creates origin $1 unless it exists; `created` is true when it did. */
  createIfMissing: "select spock._ensure_origin($1) as created",
  /** Sets origin $1's position to remote LSN $2 (text). */
  advance: "select pg_catalog.pg_replication_origin_advance($1, $2::text::pg_lsn)",
  /** Binds origin $1 to the session: its commits carry it and move it. */
  sessionSetup: "select pg_catalog.pg_replication_origin_session_setup($1)",
  /** Unbinds the session's origin. */
  sessionReset: "select pg_catalog.pg_replication_origin_session_reset()",
  /** Unbinds the session's origin if one is bound. */
  sessionResetIfSetUp: "select pg_catalog.pg_replication_origin_session_reset() " +
    "where pg_catalog.pg_replication_origin_session_is_setup()",
  /** Drops origin $1 if it exists. */
  dropIfExists: "select pg_catalog.pg_replication_origin_drop(roname) " +
    "from pg_catalog.pg_replication_origin where roname = $1",
  /** Drops origin $1 unless a subscription still names it as its slot. */
  dropIfUnsubscribed: "select pg_catalog.pg_replication_origin_drop(roname) " +
    "from pg_catalog.pg_replication_origin where roname = $1 and not exists " +
    "(select 1 from spock.subscription where sub_slot_name = $1)",
  /** Drops the origins of this database's subscriptions and of their data copies. */
  dropSubscribed: "select pg_catalog.pg_replication_origin_drop(o.roname) " +
    "from pg_catalog.pg_replication_origin o where exists (select 1 from spock.subscription s " +
    "where o.roname = s.sub_slot_name or o.roname ~ ('^' || s.sub_slot_name || '_c[0-9]+$'))",
  /** Whether origin $1 exists: `present`. */
  exists: "select exists (select 1 from pg_catalog.pg_replication_origin where roname = $1) " +
    "as present",
  /** Origin $1's applied and flushed remote LSNs (text; no row when it is missing). */
  positions: "select pg_catalog.pg_replication_origin_progress(roname, false)::text as applied, " +
    "pg_catalog.pg_replication_origin_progress(roname, true)::text as flushed " +
    "from pg_catalog.pg_replication_origin where roname = $1",
  /** Origin $1's applied remote LSN (`lsn`, text) and its id (`origin_id`). */
  bound: "select pg_catalog.pg_replication_origin_progress($1, false)::text as lsn, " +
    "(select roident::int8 from pg_catalog.pg_replication_origin where roname = $1) as origin_id",
  /**
   * Commits the open transaction as of remote position 0/0 at the epoch: a
   * data copy's rows lose last-update-wins against every streamed change.
   */
  xactSetupCopy: "select pg_catalog.pg_replication_origin_xact_setup('0/0', " +
    "'1970-01-01 00:00:00+00')",
});

/**
 * The PREPARE of the apply session's commit statement `name`: it sets the
 * origin's position ($2, the remote end LSN, committed at $3) for the COMMIT
 * after it and moves the pipeline's commit mark (setting `markSetting`) from
 * $1 to $2; when the mark is not at $1 (an earlier transaction of the
 * pipeline did not commit) it fails before the origin is touched. It
 * returns the transaction's local xid (`xid`, null when it wrote nothing),
 * so that an outcome the client never saw can be asked for later.
 */
export function prepareCommitStatementSql(name: string, markSetting: string): string {
  return `prepare ${name}(text, text, timestamptz) as ` +
    `select pg_catalog.pg_replication_origin_xact_setup((case when ` +
    `pg_catalog.current_setting('${markSetting}', true) = $1 then $2 else ` +
    `'spock: an earlier transaction of this pipeline did not commit' end)::pg_lsn, $3), ` +
    `pg_catalog.set_config('${markSetting}', $2, false), ` +
    `pg_catalog.pg_current_xact_id_if_assigned()::text as xid`;
}

/** The functions on origins a non-superuser role must be granted. */
export const ORIGIN_FUNCTIONS: readonly string[] = Object.freeze([
  "pg_replication_origin_create(text)",
  "pg_replication_origin_drop(text)",
  "pg_replication_origin_advance(text, pg_lsn)",
  "pg_replication_origin_progress(text, boolean)",
  "pg_replication_origin_session_setup(text)",
  "pg_replication_origin_session_reset()",
  "pg_replication_origin_session_is_setup()",
  "pg_replication_origin_xact_setup(pg_lsn, timestamptz)",
]);
