/**
 * `RelationCache`: the latest Relation message per relation OID, which row
 * messages need to be understood. The caller feeds it from the decoded
 * stream; mapping remote relations to local tables is left to `apply/`.
 */

import { ProtocolError } from "./errors.ts";
import type { PgoutputMessageType, Relation } from "./messages.ts";

/**
 * The Relation messages seen on one replication stream, keyed by relation
 * OID. The server sends a Relation message before the first row message for
 * a relation in a session and again whenever its definition changes, so a
 * newer message always replaces the older one.
 *
 * @example
 * ```ts
 * import { RelationCache } from "./relations.ts";
 *
 * const relations = new RelationCache();
 * relations.set({
 *   type: "relation",
 *   relationId: 16384,
 *   namespace: "public",
 *   relationName: "accounts",
 *   replicaIdentity: "d",
 *   columns: [{ flags: 1, isKey: true, name: "id", typeOid: 23, typeMod: -1 }],
 * });
 * console.assert(relations.require(16384, "insert").relationName === "accounts");
 * ```
 */
export class RelationCache {
  #relations = new Map<number, Relation>();

  /** Stores `relation`, replacing any earlier description of the same OID. */
  set(relation: Relation): void {
    this.#relations.set(relation.relationId, relation);
  }

  /** The latest description of `relationId`, if one was seen. */
  get(relationId: number): Relation | undefined {
    return this.#relations.get(relationId);
  }

  /**
   * The latest description of `relationId`, for a row message of type
   * `messageType` that refers to it.
   *
   * @throws {ProtocolError} when no Relation message described it: the server
   *   must send one before the first row message that uses the relation.
   */
  require(relationId: number, messageType: PgoutputMessageType): Relation {
    const relation = this.#relations.get(relationId);
    if (relation === undefined) {
      throw new ProtocolError(`relation ${relationId} was not described by a Relation message`, {
        messageType,
      });
    }
    return relation;
  }

  /** Forgets every relation, e.g. when a new replication session starts. */
  clear(): void {
    this.#relations.clear();
  }

  /** How many relations are described. */
  get size(): number {
    return this.#relations.size;
  }
}
