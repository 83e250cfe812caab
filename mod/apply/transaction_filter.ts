/**
 * Which decoded messages reach the applier: transactions that came to the
 * provider from another node (when the subscription forwards only the
 * provider's own changes and the server cannot filter them, PG 15), the rows
 * of a transaction named by the subscription's skip LSN, rows of tables
 * whose own sync has not caught up, and what the provider did in repair mode
 * (`spock.repair_mode(true)` until `false` or the end of its transaction:
 * rows, TRUNCATEs and queued commands). Pure: no I/O, no clocks.
 *
 *   B O I C   (origin set, skipOriginated)  → nothing (Relations still pass)
 *   B I I C   (finalLsn = skipLsn)          → B C   (the origin still advances)
 *   B I(t) C  (t gated at this finalLsn)     → B C
 *   B I R1 I Q R2 I C  (repair on, off)      → B I I C
 */
import type { Begin, Message, PgoutputMessage, RelationCache } from "../pgoutput/mod.ts";
import type { Lsn } from "../pg/mod.ts";
import { QUEUE_MESSAGE_PREFIX } from "./queued_commands.ts";

/** The prefix of Spock's control messages (sync events, repair mode). */
const SPOCK_MESSAGE_PREFIX = "Spock";
const REPAIR_MODE_ON = 1;
const REPAIR_MODE_OFF = 2;

/** Repair mode turned on or off by a Spock control message, else undefined. */
function repairModeSwitch(message: Message): boolean | undefined {
  if (!message.transactional || message.prefix !== SPOCK_MESSAGE_PREFIX) return undefined;
  const { content } = message;
  if (content.length < 4) return undefined;
  const mtype = new DataView(content.buffer, content.byteOffset, 4).getUint32(0, true);
  return mtype === REPAIR_MODE_ON ? true : mtype === REPAIR_MODE_OFF ? false : undefined;
}

/** What to leave out of the stream. */
export interface TransactionFilterOptions {
  /** Drop whole transactions carrying an Origin message (forward_origins `{}` on PG 15). */
  skipOriginated: boolean;
  /** The remote commit LSN (Begin's finalLsn) of a transaction whose changes are skipped; 0 for none. */
  skipLsn?: Lsn;
  /** The stream's relation descriptions, to name the table of a row message. */
  relations: RelationCache;
  /**
   * Whether changes to `schema.table` in a transaction committed at
   * `finalLsn` are applied; absent: every table is.
   */
  applyTable?: (schema: string, table: string, finalLsn: Lsn) => boolean;
}

/** How the last transaction was treated, for logs and the skip-LSN bookkeeping. */
export type FilterOutcome = "applied" | "originated" | "skipped_lsn";

/**
 * Filters one replication stream, message by message, in order. A Begin is
 * held back until the next message shows whether an Origin follows it.
 */
export class TransactionFilter {
  #options: TransactionFilterOptions;
  #heldBegin: Begin | undefined;
  #begin: Begin | undefined;
  #dropTransaction = false;
  #dropRows = false;
  #repairing = false;
  #lastOutcome: FilterOutcome = "applied";

  constructor(options: TransactionFilterOptions) {
    this.#options = options;
  }

  /** True while a transaction is open on the stream (held, applied or dropped). */
  get inTransaction(): boolean {
    return this.#begin !== undefined;
  }

  /** How the last finished transaction was treated. */
  get lastOutcome(): FilterOutcome {
    return this.#lastOutcome;
  }

  /** Clears the skip LSN once it was used (or, as in Spock, passed by another transaction). */
  clearSkipLsn(): void {
    this.#options = { ...this.#options, skipLsn: 0n };
  }

  /** The messages to apply for `message`, in order (often just `[message]`). */
  filter(message: PgoutputMessage): PgoutputMessage[] {
    if (message.type === "begin") {
      this.#begin = message;
      this.#heldBegin = message;
      this.#dropTransaction = false;
      this.#repairing = false;
      this.#dropRows = this.#options.skipLsn !== undefined && this.#options.skipLsn !== 0n &&
        message.finalLsn === this.#options.skipLsn;
      return [];
    }
    const out: PgoutputMessage[] = [];
    if (this.#heldBegin !== undefined && message.type !== "relation" && message.type !== "type") {
      const begin = this.#heldBegin;
      this.#heldBegin = undefined;
      if (message.type === "origin" && this.#options.skipOriginated) {
        this.#dropTransaction = true;
      } else {
        out.push(begin);
      }
    }
    switch (message.type) {
      case "relation":
      case "type":
        out.push(message);
        return out;
      case "commit":
        this.#lastOutcome = this.#dropTransaction
          ? "originated"
          : this.#dropRows
          ? "skipped_lsn"
          : "applied";
        this.#begin = undefined;
        if (!this.#dropTransaction) out.push(message);
        this.#dropTransaction = false;
        this.#dropRows = false;
        this.#repairing = false;
        return out;
      case "insert":
      case "update":
      case "delete":
        if (
          !this.#dropTransaction && !this.#dropRows && !this.#repairing &&
          this.#tableApplied(message.relationId)
        ) {
          out.push(message);
        }
        return out;
      case "truncate": {
        if (this.#dropTransaction || this.#dropRows || this.#repairing) return out;
        const relationIds = message.relationIds.filter((id) => this.#tableApplied(id));
        if (relationIds.length > 0) out.push({ ...message, relationIds });
        return out;
      }
      case "message": {
        if (this.#dropTransaction) return out;
        const repairing = this.#begin === undefined ? undefined : repairModeSwitch(message);
        if (repairing !== undefined) this.#repairing = repairing;
        else if (!this.#repairing || message.prefix !== QUEUE_MESSAGE_PREFIX) out.push(message);
        return out;
      }
      default:
        if (!this.#dropTransaction) out.push(message);
        return out;
    }
  }

  #tableApplied(relationId: number): boolean {
    const gate = this.#options.applyTable;
    if (gate === undefined || this.#begin === undefined) return true;
    const relation = this.#options.relations.get(relationId);
    if (relation === undefined) return true; // The applier reports the missing description.
    return gate(relation.namespace, relation.relationName, this.#begin.finalLsn);
  }
}
