/**
 * Which of this machine's PostgreSQL installations a test run uses:
 * `SPOCK_TEST_PG` picks majors; else 15 and 17 for every test, and every
 * supported major found (15–18) for the tests marked to run on each.
 */
import { discoverInstalls, type PgInstall } from "../../local_pg/mod.ts";

/** The PostgreSQL majors spock supports. */
export const SUPPORTED_MAJORS: readonly number[] = [15, 16, 17, 18];

/**
 * The installations selected for this test run: the majors listed in
 * `SPOCK_TEST_PG` (e.g. `15,17`); else, with `scope` "default", 15 and 17
 * when present, and with "every", each supported major present (else, for
 * both, whatever was found).
 */
export async function installsUnderTest(
  scope: "default" | "every" = "default",
): Promise<PgInstall[]> {
  const all = await discoverInstalls();
  const wanted = Deno.env.get("SPOCK_TEST_PG");
  if (wanted) {
    const majors = wanted.split(",").map((v) => Number(v.trim()));
    const missing = majors.filter((m) => !all.some((i) => i.major === m));
    if (missing.length > 0) {
      throw new Error(
        `SPOCK_TEST_PG asks for PostgreSQL ${missing.join(", ")}, which is not installed ` +
          `(found: ${all.map((i) => `${i.major} in ${i.binDir}`).join("; ") || "none"})`,
      );
    }
    return all.filter((i) => majors.includes(i.major));
  }
  const majors = scope === "every" ? SUPPORTED_MAJORS : [15, 17];
  const preferred = all.filter((i) => majors.includes(i.major));
  if (preferred.length > 0) return preferred;
  if (all.length === 0) {
    throw new Error(
      "No PostgreSQL server found: set PG_BIN, run `deno install`, or install postgresql-15",
    );
  }
  return all;
}
