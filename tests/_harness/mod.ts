/**
 * The test harness: real PostgreSQL servers (from local_pg/) for every
 * installation under test, started per test and always stopped.
 */
import { Cluster, type ClusterOptions, type PgInstall } from "../../local_pg/mod.ts";
import { installsUnderTest } from "./installs_under_test.ts";
import { guardPostgresJsFaults } from "../../mod/daemon/mod.ts";
import { keepEngineLog, takeEngineLog } from "./engine_log.ts";

export {
  Cluster,
  type ClusterOptions,
  discoverInstalls,
  freePorts,
  type PgInstall,
  type PollOptions,
  pollUntil,
  TcpProxy,
  withCluster,
} from "../../local_pg/mod.ts";
export { installsUnderTest } from "./installs_under_test.ts";
export { insertSubscriptionRows } from "./catalog_rows.ts";

// Test code runs in a process guarded as the executable guards every command (main.ts).
guardPostgresJsFaults();
await keepEngineLog();

const installs = await installsUnderTest();
const everyInstall = await installsUnderTest("every");

/** Options of {@link pgTest}: the cluster's, and which versions the test needs. */
export interface PgTestOptions extends ClusterOptions {
  /**
   * True for an installation the test cannot run on here (a tool it needs is
   * missing): the test is then reported as ignored, never as passed.
   */
  ignore?: (install: PgInstall) => boolean;
  /**
   * Run on every supported version found (15–18), not only on 15 and 17:
   * for the representative tests that check the version-dependent paths.
   */
  everyVersion?: boolean;
}

/**
 * Registers one `Deno.test` per PostgreSQL version under test (15 and 17,
 * or every supported one with `everyVersion`), each with a fresh cluster
 * that is stopped and deleted however the test ends. The test name gets a
 * ` [pg17]`-style suffix.
 */
export function pgTest(
  name: string,
  fn: (t: Deno.TestContext, cluster: Cluster) => Promise<void>,
  options: PgTestOptions = {},
): void {
  for (const install of options.everyVersion ? everyInstall : installs) {
    Deno.test({
      name: `${name} [pg${install.major}]`,
      ignore: options.ignore?.(install) ?? false,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async (t) => {
        takeEngineLog();
        const cluster = await Cluster.start(install, options);
        let stepFailed = false;
        // A failed step does not throw: its result is watched to print the logs.
        const watched = new Proxy(t, {
          get(target, property) {
            if (property !== "step") return Reflect.get(target, property);
            return async (...args: Parameters<Deno.TestContext["step"]>) => {
              const passed = await (target.step as (...a: typeof args) => Promise<boolean>)(
                ...args,
              );
              if (!passed && !stepFailed) {
                stepFailed = true;
                await printLogs(cluster);
              }
              return passed;
            };
          },
        });
        try {
          await fn(watched, cluster);
        } catch (error) {
          if (!stepFailed) await printLogs(cluster);
          throw error;
        } finally {
          await cluster.stop();
        }
      },
    });
  }
}

/** Prints the end of the server's log and the engine's last log lines, for a failing test. */
async function printLogs(cluster: Cluster): Promise<void> {
  const log = await cluster.log();
  if (log) console.error(`--- server log (pg${cluster.install.major}) ---\n${log.slice(-4000)}`);
  const engine = takeEngineLog();
  if (engine.length > 0) {
    console.error(`--- engine log (in-process daemons) ---\n${engine.join("\n")}`);
  }
}

/** The installations under test, for tests that need several clusters. */
export function pgInstalls(): PgInstall[] {
  return installs;
}
export { COMPILE_PERMISSIONS, runSpock, spockCommand } from "./spawn.ts";
