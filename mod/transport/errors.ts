/**
 * The transport's domain error: a replication connection that failed, was
 * refused, or sent something the streaming protocol does not allow.
 */

/** A failure of the replication connection or its protocol. */
export class TransportError extends Error {
  readonly code = "ERR_REPLICATION_TRANSPORT";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransportError";
  }
}
