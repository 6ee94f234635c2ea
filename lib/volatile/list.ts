// An intrusive doubly linked list in insertion order: O(1) append and removal
// with no hashing and no allocation per operation. The volatile layer keeps its
// recency orders in these (a Set's delete + add costs several times more on the
// hot path of a cache hit).

export interface ListNode<T> {
  readonly value: T;
  prev: ListNode<T> | undefined;
  next: ListNode<T> | undefined;
  listed: boolean;
}

export function listNode<T>(value: T): ListNode<T> {
  return { value, prev: undefined, next: undefined, listed: false };
}

export class List<T> {
  head: ListNode<T> | undefined;
  tail: ListNode<T> | undefined;
  size = 0;

  /** Append (or move to the end). */
  push(n: ListNode<T>): void {
    if (n.listed) this.remove(n);
    n.prev = this.tail;
    n.next = undefined;
    if (this.tail === undefined) this.head = n;
    else this.tail.next = n;
    this.tail = n;
    n.listed = true;
    this.size++;
  }

  /** Remove if listed. */
  remove(n: ListNode<T>): void {
    if (!n.listed) return;
    if (n.prev === undefined) this.head = n.next;
    else n.prev.next = n.next;
    if (n.next === undefined) this.tail = n.prev;
    else n.next.prev = n.prev;
    n.prev = n.next = undefined;
    n.listed = false;
    this.size--;
  }

  /** Insert (or move) `n` right after `ref` (a listed node). */
  insertAfter(ref: ListNode<T>, n: ListNode<T>): void {
    if (ref === this.tail) {
      this.push(n);
      return;
    }
    if (n.listed) this.remove(n);
    const next = ref.next as ListNode<T>;
    n.prev = ref;
    n.next = next;
    ref.next = n;
    next.prev = n;
    n.listed = true;
    this.size++;
  }

  clear(): void {
    for (let n = this.head; n !== undefined; ) {
      const next = n.next;
      n.prev = n.next = undefined;
      n.listed = false;
      n = next;
    }
    this.head = this.tail = undefined;
    this.size = 0;
  }

  /** The values, first to last (a snapshot: safe to modify the list while using it). */
  values(): T[] {
    const out: T[] = [];
    for (let n = this.head; n !== undefined; n = n.next) out.push(n.value);
    return out;
  }
}
