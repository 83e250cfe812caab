/**
 * Free TCP ports for test servers, below Linux's ephemeral range (32768 and
 * up): a port there can be taken by some client socket between the check
 * and the server's start, which makes the start fail at random.
 */

const LOW = 20_000;
const HIGH = 32_000;

/** `count` distinct ports of 127.0.0.1 that were free a moment ago, below 32768. */
export function freePorts(count: number): number[] {
  const held: Deno.Listener[] = [];
  try {
    for (let tries = 0; held.length < count; tries++) {
      if (tries > 1_000) throw new Error(`Cannot find ${count} free ports in ${LOW}–${HIGH}`);
      const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
      try {
        held.push(Deno.listen({ hostname: "127.0.0.1", port }));
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      }
    }
    return held.map((listener) => (listener.addr as Deno.NetAddr).port);
  } finally {
    for (const listener of held) listener.close();
  }
}
