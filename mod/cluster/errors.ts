/** A cluster operation that cannot go on; the message says why and what to do. */
export class ClusterError extends Error {
  readonly code = "ERR_CLUSTER";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClusterError";
  }
}
