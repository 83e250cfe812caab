/**
 * The catalog's domain error: the server is not ready for spock, or the
 * catalog cannot be installed, upgraded or removed as asked.
 */

/** A catalog operation that cannot proceed; the message says what to change. */
export class CatalogError extends Error {
  readonly code = "ERR_CATALOG";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CatalogError";
  }
}
