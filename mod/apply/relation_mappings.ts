/**
 * The applier's relations: what the provider described (Relation messages),
 * what is mapped onto a local table, and what could not be mapped, with why.
 * A broken relation fails every change to it; its mapping is tried once more
 * per transaction, so fixing the subscriber (creating the column) lets the
 * next change apply. Errors come back bare; the applier names the transaction.
 */
import type { Relation } from "../pgoutput/mod.ts";
import type { WireSession } from "../pg/mod.ts";
import { ApplyError } from "./errors.ts";
import { type LocalRelation, mapRelation } from "./relation_map.ts";
import type { RowFilterState } from "./row_filters.ts";

/** A relation that could not be mapped. */
export interface BrokenRelation {
  relation: Relation;
  error: ApplyError;
}

/** Mapped and broken relations of one apply session. */
export class RelationMappings {
  #wire: WireSession;
  #rowFilters: RowFilterState | undefined;
  #mapped = new Map<number, LocalRelation>();
  #broken = new Map<number, BrokenRelation>();
  /** Broken relations whose mapping was tried again in this transaction. */
  #retried = new Set<number>();
  /** The provider's description of each relation, to map it again. */
  #described = new Map<number, Relation>();

  constructor(wire: WireSession, rowFilters: RowFilterState | undefined) {
    this.#wire = wire;
    this.#rowFilters = rowFilters;
  }

  /** The local table a described relation maps onto (undefined if never described or broken). */
  get(relationId: number): LocalRelation | undefined {
    return this.#mapped.get(relationId);
  }

  /** True when some relation could not be mapped. */
  get anyBroken(): boolean {
    return this.#broken.size > 0;
  }

  /** The relation that could not be mapped, with why. */
  broken(relationId: number): BrokenRelation | undefined {
    return this.#broken.get(relationId);
  }

  /** A new transaction: each broken relation may be tried once more. */
  startTransaction(): void {
    this.#retried.clear();
  }

  /**
   * Whether the broken relation's mapping is tried again now (once per
   * transaction; the caller then calls {@link map}).
   */
  takeRetry(relationId: number): boolean {
    if (this.#retried.has(relationId)) return false;
    this.#retried.add(relationId);
    return true;
  }

  /** A Relation message: forgets the old mapping, then maps it (see {@link map}). */
  describe(relation: Relation): Promise<ApplyError | undefined> {
    this.#mapped.delete(relation.relationId);
    this.#described.set(relation.relationId, relation);
    return this.map(relation);
  }

  /**
   * Maps `relation` with the row filter and column list in force, or keeps
   * it as broken and returns why it cannot be mapped. Other errors (the
   * catalog query failed) are thrown.
   */
  async map(relation: Relation): Promise<ApplyError | undefined> {
    const filters = this.#rowFilters;
    try {
      const local = await mapRelation(this.#wire, relation, {
        written: filters?.writtenColumns(relation.namespace, relation.relationName),
      });
      const filter = filters?.filterOf(relation.namespace, relation.relationName);
      if (filter !== undefined) local.rowFilter = filter;
      this.#mapped.set(relation.relationId, local);
      this.#broken.delete(relation.relationId);
      return undefined;
    } catch (error) {
      if (!(error instanceof ApplyError)) throw error;
      this.#broken.set(relation.relationId, { relation, error });
      this.#retried.add(relation.relationId);
      return error;
    }
  }

  /**
   * After a commit changed the row filters or column lists of `tables`:
   * maps their relations again (a new object, so the writer builds their
   * statements anew). Yields each relation mapped again, with its filter.
   */
  async *remap(
    tables: Array<[string, string]>,
  ): AsyncGenerator<{ name: string; filter: string | undefined }> {
    for (const [id, relation] of this.#described) {
      if (!tables.some(([s, t]) => s === relation.namespace && t === relation.relationName)) {
        continue;
      }
      await this.map(relation);
      yield {
        name: `${relation.namespace}.${relation.relationName}`,
        filter: this.#mapped.get(id)?.rowFilter,
      };
    }
  }
}
