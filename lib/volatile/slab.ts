// Slabs: values smaller than half a page share pages, so a 200-byte entry costs
// about 200 bytes instead of a whole page.
//
// Each slab is one single-page VolatileBuffer of the arena cut into equal slots
// of one size class. A slab is pinned only while the cache copies bytes in or
// out (synchronously), then unpinned again, so it becomes volatile on the
// arena's schedule like any other span. Slab memory is never handed to user
// code: a hit copies the value out. So no view of a slab outlives the copy, and
// no Node I/O can be reading a slab when the arena makes it volatile.
//
// Purge detection is per page (the canary protocol of ./buffer.ts): a slab is
// one page, and when pin() says the page was dropped, every value on it is
// invalid. The slab's epoch then moves on; a value is valid only while its
// recorded epoch equals the slab's (a dropped page reports 'purged' for every
// entry on it, never a wrong byte).
import type { VolatileArena, VolatileBuffer } from './arena';
import { List, type ListNode, listNode } from './list';

/** Sizes of the slots: 16-byte steps to 256, 64-byte steps to 1 KiB, 256-byte steps above. */
function classSize(length: number): number {
  if (length <= 256) return Math.max(16, (length + 15) & ~15);
  if (length <= 1024) return (length + 63) & ~63;
  return (length + 255) & ~255;
}

export interface Slab {
  readonly buffer: VolatileBuffer;
  readonly slotSize: number;
  /** Slots not in use (indexes). */
  readonly freeSlots: number[];
  used: number;
  /** Nested pins (a read or write in progress). */
  pins: number;
  /** Moves on when the kernel dropped the page: values written before are gone. */
  epoch: number;
  /** Place in its class's list of slabs with a free slot. */
  readonly node: ListNode<Slab>;
}

/** Where a small value lives. */
export interface SlabSlot {
  slab: Slab;
  slot: number;
  /** The slab's epoch when the value was written. */
  epoch: number;
}

const bufferCopy = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;

export class SlabPool {
  readonly #page: number;
  /** Per slot size: slabs with at least one free slot. */
  readonly #open = new Map<number, List<Slab>>();
  /** Pages held by slabs. */
  pages = 0;

  constructor(page: number) {
    this.#page = page;
  }

  /** Largest value kept in a slab (bigger ones get their own span). */
  get maxValue(): number {
    return this.#page / 2;
  }

  /** Bytes a value of `length` occupies in a slab. */
  footprint(length: number): number {
    return classSize(length);
  }

  /** A free slot for `length` bytes: an open slab's, or a new slab's (`allocPage` may throw ERR_ARENA_FULL). */
  take(length: number, allocPage: () => VolatileBuffer): SlabSlot {
    const slotSize = classSize(length);
    let open = this.#open.get(slotSize);
    if (open === undefined) this.#open.set(slotSize, (open = new List<Slab>()));
    let slab = open.tail?.value;
    if (slab === undefined) {
      const buffer = allocPage();
      buffer.unpin(); // a slab is pinned only while it is read or written
      const count = Math.floor(this.#page / slotSize);
      const freeSlots: number[] = [];
      for (let i = count - 1; i >= 0; i--) freeSlots.push(i);
      slab = { buffer, slotSize, freeSlots, used: 0, pins: 0, epoch: 0, node: listNode<Slab>(undefined as unknown as Slab) };
      (slab.node as { value: Slab }).value = slab;
      open.push(slab.node);
      this.pages++;
    }
    const slot = slab.freeSlots.pop() as number;
    slab.used++;
    if (slab.freeSlots.length === 0) open.remove(slab.node);
    return { slab, slot, epoch: slab.epoch };
  }

  /** Give a slot back; a slab left empty returns its page to the arena. */
  give(s: SlabSlot): void {
    const slab = s.slab;
    slab.freeSlots.push(s.slot);
    slab.used--;
    const open = this.#open.get(slab.slotSize) as List<Slab>;
    if (slab.used === 0) {
      open.remove(slab.node);
      slab.buffer.free();
      this.pages--;
    } else if (!slab.node.listed) {
      open.push(slab.node);
    }
  }

  /**
   * Pin the slab (nested pins count): its bytes, or undefined when the arena was
   * closed. A page the kernel dropped moves the slab's epoch on. Call #unpin after.
   */
  #pin(slab: Slab): Uint8Array | undefined {
    const buffer = slab.buffer;
    if (slab.pins++ === 0) {
      if (buffer.state === 'freed') {
        slab.pins--;
        return undefined; // the arena was closed
      }
      if (buffer.pin() === 'purged') slab.epoch++;
    }
    return buffer.bytes;
  }

  #unpin(slab: Slab): void {
    if (--slab.pins === 0 && slab.buffer.state === 'pinned') slab.buffer.unpin();
  }

  /**
   * Let `write(target)` fill the slot (a subarray of exactly `length` bytes; it must
   * not call back into the cache) and record the slab's current epoch. False if the
   * arena was closed. write's errors propagate (the slab is unpinned).
   */
  write(s: SlabSlot, length: number, write: (target: Uint8Array) => void): boolean {
    const slab = s.slab;
    const bytes = this.#pin(slab);
    if (bytes === undefined) return false;
    try {
      const at = s.slot * slab.slotSize;
      write(bytes.subarray(at, at + length));
      s.epoch = slab.epoch;
    } finally {
      this.#unpin(slab);
    }
    return true;
  }

  /** A copy of the value, or undefined when its page was dropped (or the arena was closed). */
  read(s: SlabSlot, length: number): Buffer | undefined {
    const slab = s.slab;
    if (s.epoch !== slab.epoch) return undefined;
    const bytes = this.#pin(slab);
    if (bytes === undefined) return undefined;
    let out: Buffer | undefined;
    if (s.epoch === slab.epoch) {
      out = Buffer.allocUnsafe(length);
      const at = s.slot * slab.slotSize;
      bufferCopy.call(bytes, out, 0, at, at + length);
    }
    this.#unpin(slab);
    return out;
  }

  /** Whether the value is still there, without pinning the slab (a volatile page stays volatile). */
  intact(s: SlabSlot): boolean {
    return s.epoch === s.slab.epoch && s.slab.buffer.probe() === 'intact';
  }
}
