/**
 * The test harness: real PostgreSQL servers for every installation under test,
 * started per test and always stopped.
 */
import { Cluster, type ClusterOptions } from "./cluster.ts";
import { installsUnderTest, type PgInstall } from "./pg_install.ts";

export { Cluster, type ClusterOptions, withCluster } from "./cluster.ts";
export { discoverInstalls, installsUnderTest, type PgInstall } from "./pg_install.ts";
export { type PollOptions, pollUntil } from "./poll.ts";

const installs = await installsUnderTest();

/**
 * Registers one `Deno.test` per PostgreSQL version under test, each with a
 * fresh cluster that is stopped and deleted however the test ends. The test
 * name gets a ` [pg17]`-style suffix.
 */
export function pgTest(
  name: string,
  fn: (t: Deno.TestContext, cluster: Cluster) => Promise<void>,
  options: ClusterOptions = {},
): void {
  for (const install of installs) {
    Deno.test({
      name: `${name} [pg${install.major}]`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async (t) => {
        const cluster = await Cluster.start(install, options);
        try {
          await fn(t, cluster);
        } catch (error) {
          const log = await cluster.log();
          if (log) console.error(`--- server log (pg${install.major}) ---\n${log.slice(-4000)}`);
          throw error;
        } finally {
          await cluster.stop();
        }
      },
    });
  }
}

/** The installations under test, for tests that need several clusters. */
export function pgInstalls(): PgInstall[] {
  return installs;
}
export { COMPILE_PERMISSIONS, runSpock, spockCommand } from "./spawn.ts";
