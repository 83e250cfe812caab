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

/**
 * START_REPLICATION refused because the provider invalidated the slot (most
 * often: it removed WAL the slot still needed, as `max_slot_wal_keep_size`
 * allows). The changes it held are gone; only a new slot and a new copy help.
 */
export class SlotInvalidatedError extends TransportError {
  readonly slot: string;
  /** The server's reason (`invalidation_reason` on 17+), or "wal_removed" when it has none. */
  readonly reason: string;

  constructor(slot: string, reason: string, options?: ErrorOptions) {
    super(
      `Replication slot "${slot}" was invalidated by the provider (${reason}): ` +
        (reason === "wal_removed"
          ? "it fell further behind than max_slot_wal_keep_size allows and the WAL it needed was removed"
          : "the server can no longer decode changes from it") +
        ", so the changes it held are lost",
      options,
    );
    this.name = "SlotInvalidatedError";
    this.slot = slot;
    this.reason = reason;
  }
}
