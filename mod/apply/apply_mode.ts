/**
 * How one remote transaction is applied, as PostgreSQL's `TransApplyAction`
 * names a worker's choices: the mode it begins in, and the step down the
 * ladder after a failure. The applier (`transaction_applier.ts`) acts on
 * these answers; this file only decides.
 *
 *   fast ──conflict or error──▶ careful ──failure──▶ exception ──failure──▶ thrown
 *     └────────replayable failure, not a conflict candidate───────▲
 *
 * A transient failure (a lost connection, a serialization failure) never
 * steps down: it is thrown, and the worker restarts from the origin.
 */
import type { Begin } from "../pgoutput/mod.ts";
import type { Lsn } from "../pg/mod.ts";
import { ApplyError, type ApplyErrorCode } from "./errors.ts";
import { isTransientError } from "./exception_mode.ts";

/**
 * - `skip`: already applied (its commit is at or before the origin's position);
 * - `fast`: optimistic statements, pipelined in the commit window;
 * - `careful`: conflict handling, each statement awaited;
 * - `exception`: each operation in its own savepoint (exception handling).
 */
export type ApplyMode = "skip" | "fast" | "careful" | "exception";

/** What decides a transaction's first mode. */
export interface ModeContext {
  /** End LSN of the last remote transaction applied (the origin's position). */
  appliedEndLsn: Lsn;
  /** Commit LSN of a transaction to apply with conflict handling from its start. */
  carefulAt?: Lsn;
  /** Commit LSN of a transaction to apply in exception mode from its start. */
  exceptionModeAt?: Lsn;
  /** Whether exception handling is configured at all. */
  exceptionsEnabled: boolean;
}

/** The mode remote transaction `begin` starts in. */
export function initialMode(begin: Begin, context: ModeContext): ApplyMode {
  if (begin.finalLsn < context.appliedEndLsn) return "skip";
  if (context.exceptionsEnabled && begin.finalLsn === context.exceptionModeAt) return "exception";
  if (begin.finalLsn === context.carefulAt) return "careful";
  return "fast";
}

/** Failures that exception handling replays (others are thrown at once). */
const REPLAYED_CODES: ReadonlySet<ApplyErrorCode> = new Set([
  "ERR_APPLY_SQL",
  "ERR_APPLY_MISSING_RELATION",
  "ERR_APPLY_MISSING_COLUMNS",
  "ERR_APPLY_NO_IDENTITY",
]);

/**
 * The mode to apply a transaction again in after `error` failed it in
 * `mode`, or undefined when the failure is thrown (the worker restarts).
 * Fast statements that met a server error go careful: conflict handling may
 * resolve it. A replayable failure goes to exception mode when exception
 * handling is configured.
 */
export function nextMode(
  mode: ApplyMode,
  error: unknown,
  exceptionsEnabled: boolean,
): "careful" | "exception" | undefined {
  if (mode === "skip" || mode === "exception") return undefined;
  if (!(error instanceof ApplyError) || isTransientError(error)) return undefined;
  if (mode === "fast" && error.code === "ERR_APPLY_SQL") return "careful";
  return exceptionsEnabled && REPLAYED_CODES.has(error.code) ? "exception" : undefined;
}
