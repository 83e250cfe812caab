/** Where a server listens: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every interface. */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/** `text` as a listen address; undefined when it is none of the forms above. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]*)):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65_535) return undefined;
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}
