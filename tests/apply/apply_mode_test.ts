import assert from "node:assert/strict";
import { type ApplyMode, initialMode, nextMode } from "../../mod/apply/apply_mode.ts";
import { ApplyError, type ApplyErrorCode } from "../../mod/apply/errors.ts";
import type { Begin } from "../../mod/pgoutput/mod.ts";

function begin(finalLsn: bigint): Begin {
  return { type: "begin", finalLsn, commitTime: 0n, xid: 7 };
}

function failure(code: ApplyErrorCode, sqlState?: string): ApplyError {
  const cause = sqlState === undefined ? undefined : Object.assign(new Error("x"), {
    code: sqlState,
  });
  return new ApplyError("failed", { code, operation: "insert", origin: "o", cause });
}

Deno.test("initialMode() skips what the origin covers and honours the restart markers", () => {
  const context = { appliedEndLsn: 100n, exceptionsEnabled: true };
  assert.equal(initialMode(begin(99n), context), "skip");
  assert.equal(initialMode(begin(100n), context), "fast");
  assert.equal(initialMode(begin(200n), { ...context, carefulAt: 200n }), "careful");
  assert.equal(initialMode(begin(200n), { ...context, exceptionModeAt: 200n }), "exception");
  assert.equal(
    initialMode(begin(200n), { ...context, exceptionsEnabled: false, exceptionModeAt: 200n }),
    "fast",
    "exception mode needs exception handling",
  );
});

Deno.test("nextMode() steps fast → careful → exception, and stops at transient errors", () => {
  const conflict = failure("ERR_APPLY_SQL", "23505");
  const steps: Array<[ApplyMode, unknown, boolean, string | undefined]> = [
    ["fast", conflict, false, "careful"],
    ["careful", conflict, true, "exception"],
    ["careful", conflict, false, undefined],
    ["exception", conflict, true, undefined],
    ["skip", conflict, true, undefined],
    ["fast", failure("ERR_APPLY_MISSING_COLUMNS"), true, "exception"],
    ["fast", failure("ERR_APPLY_MISSING_COLUMNS"), false, undefined],
    ["fast", failure("ERR_APPLY_SQL", "40001"), true, undefined],
    ["fast", failure("ERR_APPLY_SQL", "08006"), true, undefined],
    ["careful", failure("ERR_APPLY_PROTOCOL_ORDER"), true, undefined],
    ["fast", new Error("not an apply error"), true, undefined],
  ];
  for (const [mode, error, exceptionsEnabled, expected] of steps) {
    assert.equal(
      nextMode(mode, error, exceptionsEnabled),
      expected,
      `${mode} after ${(error as ApplyError).code ?? "Error"} (exceptions ${exceptionsEnabled})`,
    );
  }
});
