/**
 * `deno task demo`: the local multi-node cluster walkthrough. Not built yet:
 * it needs the catalog (issue #3) and the replication engine (issue #4).
 */
console.log(
  "The demo is not built yet: it arrives with the replication engine (issue #4).\n" +
    "Meanwhile, try `deno task spock stream --help`.",
);
