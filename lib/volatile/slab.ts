// Units and slabs: the arena spans a VolatileCache pins.
//
// A unit is one VolatileBuffer: the own span of a value of half a page or more,
// or a slab — one page cut into equal slots of one size class, so values smaller
// than half a page share pages (a 200-byte entry costs a 208-byte slot, not a page).
//
// Purge detection stays per page (the canary protocol of ./buffer.ts): a slab is
// one page, so when pin() says it was dropped, every value on it is invalid. The
// unit's epoch then moves on; a value is valid only while its recorded epoch
// equals its unit's (a dropped page reports 'purged' for every entry on it, never
// a wrong byte).
import type { VolatileBuffer } from './arena';
import { List, type ListNode, listNode } from './list';

/** What a unit knows of the values on it (the cache's entries). */
export interface UnitValue {
  /** Live handles. */
  pins: number;
  /** The value's view, kept while its unit is hot. */
  view: Uint8Array | undefined;
  /** The cache's use clock at its last use. */
  used: number;
}

export interface Unit {
  readonly buffer: VolatileBuffer;
  /** Slot size for a slab; 0 for an own span. */
  readonly slotSize: number;
  /** Pinned in the arena: by handles, or kept pinned a little while after the last use. */
  hot: boolean;
  /** Per slot: the value there. */
  readonly values: Array<UnitValue | undefined>;
  /** Place in the cache's list of hot units. */
  readonly node: ListNode<Unit>;
  /** The cache's use clock when it was (re)listed hot. */
  since: number;
  /** Moves on when the kernel dropped the unit's page(s): values written before are gone. */
  epoch: number;
}

export interface Slab extends Unit {
  /** Slots not in use (indexes). */
  readonly freeSlots: number[];
  used: number;
  /** Place in its class's list of slabs with a free slot. */
  readonly open: ListNode<Slab>;
}

/** A hot unit for an own span (pinned: a new allocation is). */
export function ownUnit(buffer: VolatileBuffer): Unit {
  const u = { buffer, slotSize: 0, hot: true, values: [undefined], epoch: 0, since: 0 } as unknown as Unit;
  (u as { node: ListNode<Unit> }).node = listNode(u);
  return u;
}

/** Sizes of the slots: 16-byte steps to 256, 64-byte steps to 1 KiB, 256-byte steps above. */
export function slotSizeFor(length: number): number {
  if (length <= 256) return Math.max(16, (length + 15) & ~15);
  if (length <= 1024) return (length + 63) & ~63;
  return (length + 255) & ~255;
}

export class SlabPool {
  readonly #page: number;
  /** Per slot size: slabs with at least one free slot. */
  readonly #open = new Map<number, List<Slab>>();
  /** Pages held by slabs. */
  pages = 0;

  constructor(page: number) {
    this.#page = page;
  }

  /** Values shorter than this go in a slab. */
  get maxValue(): number {
    return this.#page / 2;
  }

  /** A slab with a free slot for `length` bytes, if one is open. */
  openFor(length: number): Slab | undefined {
    return this.#open.get(slotSizeFor(length))?.tail?.value;
  }

  /** A new (hot, open) slab for `length` bytes on `buffer`, one page. */
  add(length: number, buffer: VolatileBuffer): Slab {
    const slotSize = slotSizeFor(length);
    let open = this.#open.get(slotSize);
    if (open === undefined) this.#open.set(slotSize, (open = new List<Slab>()));
    const count = Math.floor(this.#page / slotSize);
    const freeSlots: number[] = [];
    for (let i = count - 1; i >= 0; i--) freeSlots.push(i);
    const s = { buffer, slotSize, hot: true, values: new Array(count).fill(undefined), epoch: 0, since: 0, freeSlots, used: 0 };
    const slab = s as unknown as Slab;
    (s as unknown as { node: ListNode<Unit> }).node = listNode<Unit>(slab);
    (s as unknown as { open: ListNode<Slab> }).open = listNode(slab);
    open.push(slab.open);
    this.pages++;
    return slab;
  }

  /** Take a free slot of an open slab (no allocation: set() is on a service's hot path). */
  take(slab: Slab): number {
    const slot = slab.freeSlots.pop() as number;
    slab.used++;
    if (slab.freeSlots.length === 0) (this.#open.get(slab.slotSize) as List<Slab>).remove(slab.open);
    return slot;
  }

  /** Give a slot back; true when the slab is left empty (the caller frees its buffer). */
  give(slab: Slab, slot: number): boolean {
    slab.freeSlots.push(slot);
    slab.values[slot] = undefined;
    slab.used--;
    const open = this.#open.get(slab.slotSize) as List<Slab>;
    if (slab.used === 0) {
      open.remove(slab.open);
      this.pages--;
      return true;
    }
    if (!slab.open.listed) open.push(slab.open);
    return false;
  }
}
