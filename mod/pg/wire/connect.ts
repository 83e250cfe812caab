/**
 * Opening the socket of a wire session the way libpq does: each host and
 * port of the DSN in turn, a unix socket when the DSN names a directory,
 * `TCP_NODELAY` and keepalives on TCP, and TLS negotiated by SSLRequest with
 * the `sslmode` semantics `connection_options.ts` resolved.
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { PgConnectOptions, TlsSettings } from "../connection_options.ts";
import { PgConnectionError } from "./errors.ts";

/** Where a session's socket went: the cancel request goes to the same place. */
export type Endpoint = { path: string } | { host: string; port: number };

/** An open socket, TLS or not, to one of the DSN's endpoints. */
export interface OpenSocket {
  socket: Duplex;
  endpoint: Endpoint;
}

/** TCP keepalive idle time, as postgres.js's default. */
const KEEPALIVE_MS = 60_000;
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/** The endpoints of the DSN, in the order libpq tries them. */
export function endpoints(options: PgConnectOptions): Endpoint[] {
  if (options.path !== undefined) return [{ path: options.path }];
  const hosts = options.host ?? ["localhost"];
  return hosts.map((host, i) => ({ host, port: options.port?.[i] ?? options.port?.[0] ?? 5432 }));
}

/** Connects a plain socket to `endpoint`, within `timeoutMs` when given. */
export function connectEndpoint(endpoint: Endpoint, timeoutMs?: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = "path" in endpoint
      ? net.connect({ path: endpoint.path })
      : net.connect({ host: endpoint.host, port: endpoint.port });
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      socket.destroy();
      reject(new PgConnectionError(`Cannot connect to ${describeEndpoint(endpoint)}: timed out`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      if (!("path" in endpoint)) {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, KEEPALIVE_MS);
      }
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(
        new PgConnectionError(`Cannot connect to ${describeEndpoint(endpoint)}: ${error.message}`, {
          cause: error,
        }),
      );
    });
  });
}

/** `host:port` or the socket path, for messages. */
export function describeEndpoint(endpoint: Endpoint): string {
  return "path" in endpoint ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
}

/** Sends SSLRequest and reads the server's one-byte answer ('S' or 'N'). */
function requestSsl(socket: net.Socket): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      cleanup();
      if (data.length !== 1) {
        reject(new PgConnectionError("Cannot negotiate TLS: unexpected answer to SSLRequest"));
      } else resolve(data[0] === 0x53);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new PgConnectionError(`Cannot negotiate TLS: ${error.message}`, { cause: error }));
    };
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("error", onError);
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.write(SSL_REQUEST);
  });
}

function startTls(socket: net.Socket, settings: TlsSettings | undefined): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      rejectUnauthorized: settings?.rejectUnauthorized ?? false,
      ...(settings?.ca === undefined ? {} : { ca: settings.ca }),
      ...(settings?.cert === undefined ? {} : { cert: settings.cert }),
      ...(settings?.key === undefined ? {} : { key: settings.key }),
      ...(settings?.servername === undefined ? {} : { servername: settings.servername }),
      ...(settings?.checkServerIdentity === undefined
        ? {}
        : { checkServerIdentity: settings.checkServerIdentity }),
    });
    secure.once("secureConnect", () => {
      secure.removeAllListeners("error");
      resolve(secure);
    });
    secure.once("error", (error) => {
      socket.destroy();
      reject(new PgConnectionError(`Cannot establish TLS: ${error.message}`, { cause: error }));
    });
  });
}

/**
 * A socket to `endpoint`, with TLS as `options.ssl` asks: none (false),
 * opportunistic ("prefer": TLS without checks when the server offers it) or
 * required (checked as the settings say; a server without TLS is refused).
 */
export async function openSocket(
  endpoint: Endpoint,
  options: PgConnectOptions,
  timeoutMs?: number,
): Promise<OpenSocket> {
  const socket = await connectEndpoint(endpoint, timeoutMs);
  if (options.ssl === false || "path" in endpoint) return { socket, endpoint };
  try {
    const offered = await requestSsl(socket);
    if (!offered) {
      if (options.ssl === "prefer") return { socket, endpoint };
      throw new PgConnectionError(
        `Cannot connect to ${
          describeEndpoint(endpoint)
        }: the server does not accept TLS, which sslmode requires`,
      );
    }
    const settings = options.ssl === "prefer" ? undefined : options.ssl;
    return { socket: await startTls(socket, settings), endpoint };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
