/**
 * A TCP forwarder in front of a test server that notes when each client
 * connection was opened: tests of reconnect storms count them per second,
 * even while the server behind it is down. It injects the faults of a real
 * network: added round trip (`delayMs`, `setDelay()`), a cut of every open connection
 * (`cut()`), and a stall that keeps the connections open but passes no byte
 * either way (`stall()`, `resume()`). A client whose server is down (or
 * closed without a word) gets what a server that is shutting down sends: a FATAL error (57P03) at
 * startup. (Merely closing the socket would make postgres.js retry the
 * startup at once, a loop no real server causes.)
 */
import { freePorts } from "./ports.ts";

/** A running forwarder from 127.0.0.1:`port` to a target server. */
export class TcpProxy {
  readonly port: number;
  /** `performance.now()` of every accepted connection, in order. */
  readonly openedAt: number[] = [];
  #listener: Deno.Listener;
  #open = new Set<Deno.Conn>();
  #done: Promise<void>;
  #delayMs: number;
  #stall: PromiseWithResolvers<void> | undefined;
  /** Bytes passed from the server to the clients so far. */
  bytesToClients = 0;

  private constructor(
    listener: Deno.Listener,
    target: { host: string; port: number },
    delayMs: number,
  ) {
    this.#listener = listener;
    this.#delayMs = delayMs;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#done = this.#accept(target);
  }

  /** Starts forwarding to `target`; the server's bytes reach the client `delayMs` later. */
  static start(
    target: { host: string; port: number },
    options: { delayMs?: number } = {},
  ): TcpProxy {
    const port = freePorts(1)[0];
    return new TcpProxy(
      Deno.listen({ hostname: "127.0.0.1", port }),
      target,
      options.delayMs ?? 0,
    );
  }

  /** Connections opened in the window [from, to) of `performance.now()` times. */
  openedBetween(from: number, to: number): number {
    return this.openedAt.filter((at) => at >= from && at < to).length;
  }

  /** Closes every open connection at once, both sides (a cut network); new ones are accepted. */
  cut(): void {
    for (const conn of this.#open) closeQuietly(conn);
  }

  /** From now on the server's bytes reach the clients `ms` later (0: at once). */
  setDelay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Passes no byte either way until {@link resume}, leaving every connection open. */
  stall(): void {
    this.#stall ??= Promise.withResolvers<void>();
  }

  /** Passes bytes again after {@link stall}. */
  resume(): void {
    this.#stall?.resolve();
    this.#stall = undefined;
  }

  /** Stops accepting and closes every forwarded connection. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#open) closeQuietly(conn);
    await this.#done;
  }

  async #accept(target: { host: string; port: number }): Promise<void> {
    try {
      for await (const client of this.#listener) {
        this.openedAt.push(performance.now());
        this.#forward(client, target);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #forward(client: Deno.Conn, target: { host: string; port: number }): Promise<void> {
    this.#open.add(client);
    let server: Deno.Conn | undefined;
    let answered = false;
    try {
      server = await Deno.connect({ hostname: target.host, port: target.port }).catch(() =>
        undefined
      );
      if (server === undefined) return await refuseStartup(client);
      this.#open.add(server);
      const fromServer = server.readable.pipeThrough(this.#gate((chunk) => {
        answered = true;
        this.bytesToClients += chunk.length;
      }));
      const replies = fromServer.pipeThrough(delayed(() => this.#delayMs));
      await Promise.race([
        client.readable.pipeThrough(this.#gate()).pipeTo(server.writable),
        replies.pipeTo(client.writable, { preventClose: true }),
      ]);
    } catch {
      // Refused, reset or closed: either side ends the pair.
    } finally {
      // A server going away closed without a word (a reset while it shuts down): say what a
      // real one says, or postgres.js would retry the startup at once, in a loop.
      if (server !== undefined && !answered) {
        await client.write(shuttingDown()).catch(() => {});
      }
      for (const conn of [client, server]) {
        if (conn === undefined) continue;
        closeQuietly(conn);
        this.#open.delete(conn);
      }
    }
  }

  /** Passes chunks on, holding each while the proxy is stalled; `seen` counts them. */
  #gate(seen?: (chunk: Uint8Array) => void): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: async (chunk, controller) => {
        while (this.#stall !== undefined) await this.#stall.promise;
        seen?.(chunk);
        controller.enqueue(chunk);
      },
    });
  }
}

/**
 * Passes every chunk on `delay()` ms after it arrived, in order (chunks do
 * not wait for each other).
 */
function delayed(delay: () => number): TransformStream<Uint8Array, Uint8Array> {
  let previous = Promise.resolve();
  return new TransformStream({
    transform(chunk, controller) {
      const ms = delay();
      if (ms === 0) {
        previous = previous.then(() => passOn(controller, chunk));
        return;
      }
      const due = performance.now() + ms;
      previous = previous.then(async () => {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        passOn(controller, chunk);
      });
    },
    flush: () => previous,
  });
}

/** Enqueues `chunk` unless the pair was closed (a cut) while it was held back: then it is dropped. */
function passOn(controller: TransformStreamDefaultController<Uint8Array>, chunk: Uint8Array): void {
  try {
    controller.enqueue(chunk);
  } catch {
    // The readable side is gone: the connection it belonged to was closed.
  }
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Answers the client's startup with the FATAL error of a server that is shutting down. */
async function refuseStartup(client: Deno.Conn): Promise<void> {
  const encoder = new TextEncoder();
  for (;;) {
    const header = await readExactly(client, 8);
    if (header === undefined) return;
    const view = new DataView(header.buffer);
    const length = view.getInt32(0);
    if (length === 8 && [SSL_REQUEST, GSSENC_REQUEST].includes(view.getInt32(4))) {
      await client.write(encoder.encode("N"));
      continue;
    }
    const rest = length > 8 ? await readExactly(client, length - 8) : new Uint8Array();
    if (rest === undefined) return;
    await client.write(shuttingDown());
    return;
  }
}

/** The ErrorResponse of a server that is shutting down (FATAL 57P03). */
function shuttingDown(): Uint8Array {
  const fields = ["SFATAL", "VFATAL", "C57P03", "Mthe database system is shutting down"];
  const body = new TextEncoder().encode(fields.map((field) => `${field}\0`).join("") + "\0");
  const message = new Uint8Array(5 + body.length);
  message[0] = "E".charCodeAt(0);
  new DataView(message.buffer).setInt32(1, 4 + body.length);
  message.set(body, 5);
  return message;
}

async function readExactly(conn: Deno.Conn, size: number): Promise<Uint8Array | undefined> {
  const buffer = new Uint8Array(size);
  let filled = 0;
  while (filled < size) {
    const read = await conn.read(buffer.subarray(filled));
    if (read === null) return undefined;
    filled += read;
  }
  return buffer;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed by pipeTo.
  }
}
