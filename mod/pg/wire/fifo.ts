/**
 * A first-in first-out queue whose `shift` is O(1) at any length (an
 * array's `shift` copies the rest once it is long): a full commit window
 * keeps thousands of statements waiting for their replies.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.#items[this.#head];
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** True when some waiting item satisfies `test`. */
  some(test: (item: T) => boolean): boolean {
    for (let i = this.#head; i < this.#items.length; i++) {
      if (test(this.#items[i] as T)) return true;
    }
    return false;
  }

  /** Removes and returns every item, oldest first. */
  takeAll(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }
}
