/**
 * What a worker does after a failure, and the record it leaves: whether the
 * error stops the worker until an operator acts, what it says, and the
 * subscription's last error in `spock._sub_error` (sub_show_status and
 * `spock status` show it). Retrying and backing off are the worker's.
 */
import { getLogger } from "@logtape/logtape";
import type postgres from "postgres";
import { ApplyError } from "../apply/mod.ts";
import { formatLsn } from "../pg/mod.ts";
import { DataCopyError, StructureSyncError } from "../sync/mod.ts";
import { SlotInvalidatedError } from "../transport/mod.ts";
import { settleWithin } from "./backoff.ts";

const log = getLogger(["spock", "daemon"]);

/** A failure that restarting cannot cure: the worker stops until an operator acts. */
export function stopsWorker(error: unknown): boolean {
  return error instanceof ApplyError &&
    (error.code === "ERR_APPLY_NO_ORIGIN" || error.code === "ERR_APPLY_SUB_DISABLED");
}

/**
 * A failure that retrying alone will not cure (bad data, a structure the
 * provider's does not match, a lost slot): logged as an error, not a warning.
 */
export function operatorMustAct(error: unknown): boolean {
  return error instanceof ApplyError || error instanceof StructureSyncError ||
    error instanceof SlotInvalidatedError ||
    (error instanceof DataCopyError && error.operatorMustAct);
}

/**
 * The message of a worker's failure, with its SQLSTATE when the server gave
 * one, and the way out when there is one to name.
 */
export function failureMessage(error: unknown): string {
  if (error instanceof ApplyError) return error.message;
  if (error instanceof SlotInvalidatedError) {
    return `${error.message}. Copy the data again under a new slot: ` +
      "SELECT spock.sub_resync(subscription_name) (or spock sub resync)";
  }
  if (error instanceof Error) {
    const code = sqlStateOf(error);
    return code ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

/** The SQLSTATE behind `error`, when a server raised it. */
export function sqlStateOf(error: unknown): string | undefined {
  if (error instanceof ApplyError) return error.sqlState;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** One failure of a subscription's worker. */
export interface WorkerFailure {
  subscriptionId: number;
  error: unknown;
  /** Consecutive failures so far, this one included. */
  attempt: number;
  /** When the worker tries again, or undefined when it does not. */
  retryInMs: number | undefined;
}

const UPSERT_SQL = `
insert into spock._sub_error as e (sub_id, error_message, sqlstate, remote_lsn, errored_at,
  attempt, retry_at)
select $1::int8::oid, $2, $3, $4::pg_lsn, now(), $5::int,
  now() + ($6::float8 * interval '1 millisecond')
where exists (select 1 from spock.subscription s where s.sub_id = $1::int8::oid)
on conflict (sub_id) do update set error_message = excluded.error_message,
  sqlstate = excluded.sqlstate, remote_lsn = excluded.remote_lsn,
  errored_at = excluded.errored_at, attempt = excluded.attempt, retry_at = excluded.retry_at`;

/**
 * Records the failure as the subscription's last error, best effort: the
 * local server may be the thing that failed, so this waits at most 2 s and
 * logs (rather than throws) when it cannot write.
 */
export async function recordWorkerFailure(
  sql: postgres.Sql,
  failure: WorkerFailure,
): Promise<void> {
  const lsn = failure.error instanceof ApplyError ? failure.error.remoteCommitLsn : undefined;
  const write = sql.unsafe(UPSERT_SQL, [
    failure.subscriptionId,
    failureMessage(failure.error),
    sqlStateOf(failure.error) ?? null,
    lsn === undefined ? null : formatLsn(lsn),
    failure.attempt,
    failure.retryInMs ?? null,
  ]).catch((error) => {
    log.debug("Cannot record the failure of subscription {id}: {error}", {
      id: failure.subscriptionId,
      error: error instanceof Error ? error.message : String(error),
    });
  });
  await settleWithin(write, 2_000);
}
