// The simulator's memory: a set of disjoint, page-aligned extents, each its own
// ArrayBuffer. JavaScript can only detach a whole ArrayBuffer, so views that
// must be detached independently (the volatile arena pins each buffer through a
// view of its own span and detaches it on unpin) must sit on different buffers.
//
// - `owner[p]` is the extent holding page p, or undefined: the page reads as zeros
//   and no memory holds it (untouched anonymous memory, or bytes zeroed before
//   any view covered them).
// - An extent's buffer may be larger than the pages it owns: when a view takes
//   pages away from an extent nobody views, only the pages taken are copied; the
//   rest stays where it is. Bytes of pages an extent does not own are never shown.
// - `viewed` is set once a view was handed out on the extent's current buffer.
//
// view(offset, length) over pages [a, b):
//   - every page owned by one extent E, and E is viewed (or owns exactly [a, b)):
//     a Uint8Array on E's buffer. Views on one extent share fate: detaching one
//     detaches all of them (they may overlap, and overlapping memory must stay
//     coherent).
//   - otherwise a new extent over exactly [a, b), its bytes copied from the
//     owners (zeros where none). Each viewed extent that lost pages is re-homed
//     (moved to a new ArrayBuffer without copying), which detaches its views:
//     they would otherwise show stale copies of the moved pages.
// detach(view): re-home the extent behind view.buffer (structuredClone with
// transfer: no copy); every view on it gets length 0; the bytes stay.
// resize() detaches every view and copies what a view was handed out on (writes
// still in flight through an old view land in the memory it holds, not in the
// mapping's); close() zeroes them (they stay attached).

import { SIMULATED_PAGE_SIZE } from '../constants';

const PAGE = SIMULATED_PAGE_SIZE;
const WORDS = PAGE / 4;

/** FNV-1a over 32-bit words [from, from + WORDS). Any change of a single word changes the hash. */
function hashWords(words: Int32Array, from: number): number {
  let h = 0x811c9dc5 | 0;
  const end = from + WORDS;
  for (let i = from; i < end; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return h >>> 0;
}

/** Hash of a page of zeros. */
export const ZERO_HASH = hashWords(new Int32Array(WORDS), 0);

// Node's threadpool (crypto.randomFill, fs.read/write, ...) keeps writing through the raw
// memory of a view it was given, and holds only that view (so its detached buffer object)
// alive. Memory moved off a buffer therefore stays alive as long as the old buffer object
// does, whatever the store does with the new one.
const movedFrom = new WeakMap<ArrayBuffer, ArrayBuffer>();

/** Move the memory of `buffer` to a new ArrayBuffer without copying; every view of `buffer` gets length 0. */
function transfer(buffer: ArrayBufferLike): ArrayBuffer {
  if (buffer instanceof SharedArrayBuffer) return new ArrayBuffer(0); // lent: its views keep it (see lend())
  try {
    const next = structuredClone(buffer, { transfer: [buffer] });
    movedFrom.set(buffer, next);
    return next;
  } catch {
    return new ArrayBuffer(0); // already detached: the user transferred it to a worker
  }
}

/**
 * The extent's memory on a new buffer (zeros if the user transferred the old one away).
 * Shared memory (lent views, see lend()) cannot be detached: it is copied, and the lent
 * views keep the old memory, which no one else owns from then on.
 */
function moved(e: Extent): ArrayBuffer {
  if (e.buffer instanceof SharedArrayBuffer) return copied(e);
  return e.buffer.byteLength === e.size ? transfer(e.buffer) : new ArrayBuffer(e.size);
}

/** The extent's bytes on a new buffer; the old one is detached and its memory left to its views. */
function copied(e: Extent): ArrayBuffer {
  const next = new ArrayBuffer(e.size);
  if (e.buffer.byteLength === e.size) new Uint8Array(next).set(e.bytes);
  transfer(e.buffer);
  return next;
}

class Extent {
  /** An ArrayBuffer, or a SharedArrayBuffer once a view was lent on it (lend()). */
  buffer: ArrayBufferLike;
  bytes: Uint8Array;
  words: Int32Array;
  /** A view was handed out on the current buffer. */
  viewed = false;
  /** Pages this extent owns (owner[p] === this). */
  owned: number;

  constructor(
    /** Page of the mapping at byte 0 of the buffer. */
    readonly start: number,
    buffer: ArrayBufferLike,
    owned: number,
  ) {
    this.buffer = buffer;
    this.bytes = new Uint8Array(buffer);
    this.words = new Int32Array(buffer);
    this.owned = owned;
    this.size = buffer.byteLength;
  }

  /** Bytes of the buffer (kept: a buffer transferred away by the user reports 0). */
  size: number;

  /** Pages the buffer spans. */
  get span(): number {
    return this.size / PAGE;
  }

  rehome(next: ArrayBufferLike): void {
    this.buffer = next;
    this.size = next.byteLength;
    this.bytes = new Uint8Array(next);
    this.words = new Int32Array(next);
    this.viewed = false;
  }
}

export class ExtentStore {
  private owner: (Extent | undefined)[];
  private readonly byBuffer = new Map<ArrayBufferLike, Extent>();
  /** Zero-length views handed out (they can still be detached once). */
  private empties = new WeakSet<ArrayBuffer>();

  constructor(public pages: number) {
    this.owner = new Array<Extent | undefined>(pages).fill(undefined);
  }

  /** Number of extents (for tests). */
  get extents(): number {
    return this.byBuffer.size;
  }

  /**
   * The extent holding page p. A view's ArrayBuffer sent to a worker with a
   * transfer list takes its bytes with it (the kernel's external buffers are copied
   * instead); the simulator then gives the extent fresh zeroed memory.
   */
  private at(p: number): Extent | undefined {
    const e = this.owner[p];
    if (e !== undefined && e.buffer.byteLength !== e.size) {
      this.byBuffer.delete(e.buffer);
      e.rehome(new ArrayBuffer(e.size));
      this.byBuffer.set(e.buffer, e);
    }
    return e;
  }

  // ---- page contents --------------------------------------------------------

  hash(p: number): number {
    const e = this.at(p);
    return e ? hashWords(e.words, (p - e.start) * WORDS) : ZERO_HASH;
  }

  isZero(p: number): boolean {
    const e = this.at(p);
    if (!e) return true;
    const { words } = e;
    const from = (p - e.start) * WORDS;
    const end = from + WORDS;
    for (let i = from; i < end; i++) if (words[i] !== 0) return false;
    return true;
  }

  /** The live bytes of page p, or undefined when it reads as zeros and no memory holds it. */
  page(p: number): Uint8Array | undefined {
    const e = this.at(p);
    if (!e) return undefined;
    const at = (p - e.start) * PAGE;
    return e.bytes.subarray(at, at + PAGE);
  }

  /** The live bytes of page p, giving it memory first if it has none. */
  pageForWrite(p: number): Uint8Array {
    if (!this.at(p)) this.materialise(p, p + 1);
    return this.page(p) as Uint8Array;
  }

  /** Make page p read as zeros. */
  zero(p: number): void {
    const e = this.at(p);
    if (!e) return;
    const at = (p - e.start) * PAGE;
    e.bytes.fill(0, at, at + PAGE);
  }

  /** Copy a page (PAGE bytes) into page p; undefined means zeros. */
  set(p: number, src: Uint8Array | undefined): void {
    if (src === undefined) this.zero(p);
    else this.pageForWrite(p).set(src.subarray(0, PAGE));
  }

  /**
   * Give the pages of [first, end) that have no memory an extent each run (unviewed,
   * zero-filled), so that their contents can be stored.
   */
  materialise(first: number, end: number): void {
    let p = first;
    while (p < end) {
      if (this.at(p)) {
        p++;
        continue;
      }
      let q = p;
      while (q < end && !this.at(q)) q++;
      const e = new Extent(p, new ArrayBuffer((q - p) * PAGE), q - p);
      this.byBuffer.set(e.buffer, e);
      for (let i = p; i < q; i++) this.owner[i] = e;
      p = q;
    }
  }

  // ---- views ---------------------------------------------------------------

  /** `exact`: on an extent over exactly the pages of the view (lend()). */
  view(offset: number, length: number, exact = false): Uint8Array {
    if (length === 0) {
      const empty = new ArrayBuffer(0);
      this.empties.add(empty);
      return new Uint8Array(empty);
    }
    const a = Math.floor(offset / PAGE);
    const b = Math.ceil((offset + length) / PAGE);
    const e = this.at(a);
    const fits = exact ? e !== undefined && e.start === a && e.size === (b - a) * PAGE : e && (e.viewed || e.owned === b - a);
    if (e && fits) {
      let all = true;
      for (let p = a + 1; p < b && all; p++) all = this.at(p) === e;
      if (all) {
        e.viewed = true;
        return new Uint8Array(e.buffer, offset - e.start * PAGE, length);
      }
    }
    // A new extent over exactly [a, b).
    const next = new Extent(a, new ArrayBuffer((b - a) * PAGE), b - a);
    const losers = new Set<Extent>();
    for (let p = a; p < b; p++) {
      const old = this.at(p);
      if (old) {
        const at = (p - old.start) * PAGE;
        next.bytes.set(old.bytes.subarray(at, at + PAGE), (p - a) * PAGE);
        old.owned--;
        losers.add(old);
      }
      this.owner[p] = next;
    }
    for (const old of losers) {
      this.byBuffer.delete(old.buffer);
      if (old.owned === 0) {
        if (old.viewed) transfer(old.buffer); // detach its views; the memory goes away
      } else if (old.viewed) {
        old.rehome(moved(old));
        this.byBuffer.set(old.buffer, old);
      } else {
        this.byBuffer.set(old.buffer, old);
      }
    }
    this.byBuffer.set(next.buffer, next);
    next.viewed = true;
    return new Uint8Array(next.buffer, offset - a * PAGE, length);
  }

  /**
   * A view the store does not keep reachable (the volatile arena's: it must learn when
   * Node is done with a view from the collection of its buffer). The extent's memory
   * becomes a SharedArrayBuffer and the view gets a buffer object of its own over the
   * same memory (structuredClone of shared memory shares it), which can be collected
   * while the store keeps the memory. Lent views cannot be detached: when the store
   * must move the extent (a view across extents, resize), it copies and the lent views
   * keep the old memory, which no one else owns from then on (what the kernel does).
   */
  lend(offset: number, length: number): Uint8Array {
    // An extent over exactly these pages: a lent extent then belongs to one owner's span,
    // and is never cut while a view lent on it lives (the arena reuses pages only after).
    const probe = this.view(offset, length, true);
    const e = this.byBuffer.get(probe.buffer) as Extent;
    if (!(e.buffer instanceof SharedArrayBuffer)) {
      const shared = new SharedArrayBuffer(e.size);
      new Uint8Array(shared).set(e.bytes);
      this.byBuffer.delete(e.buffer);
      transfer(e.buffer); // views on the old memory (the probe) are detached
      e.rehome(shared);
      this.byBuffer.set(shared, e);
    }
    e.viewed = true;
    return new Uint8Array(structuredClone(e.buffer), offset - e.start * PAGE, length);
  }

  /** Detach the view `view` (and every view on the same extent). False if it is not a live view. */
  detachView(view: Uint8Array): boolean {
    const buffer = view.buffer as ArrayBuffer;
    const e = this.byBuffer.get(buffer);
    if (e) {
      if (!e.viewed) return false;
      this.byBuffer.delete(buffer);
      e.rehome(moved(e));
      this.byBuffer.set(e.buffer, e);
      return true;
    }
    if (this.empties.has(buffer)) {
      this.empties.delete(buffer);
      return true;
    }
    return false;
  }

  /** Detach the views of every extent that holds a page at or past `page` (lib/simulator/copy.ts). */
  detachViewsFrom(page: number): number {
    let n = 0;
    for (const e of [...this.byBuffer.values()]) {
      if (!e.viewed || e.start + e.span <= page) continue;
      this.byBuffer.delete(e.buffer);
      e.rehome(moved(e));
      this.byBuffer.set(e.buffer, e);
      n++;
    }
    return n;
  }

  /** Keep the contents of the first min(old, newPages) pages; detach every view. */
  resize(newPages: number): void {
    for (let p = newPages; p < this.pages; p++) {
      const e = this.at(p);
      if (e) e.owned--;
    }
    const extents = [...this.byBuffer.values()];
    this.byBuffer.clear();
    for (const e of extents) {
      if (e.owned === 0) {
        transfer(e.buffer);
        continue;
      }
      // A viewed extent's old memory may still be written by Node's threadpool through
      // a view it holds (kept alive by `movedFrom`): the kernel puts zero pages there
      // where mremap moved or cut the range, so the mapping keeps a copy, not that memory.
      e.rehome(e.viewed ? copied(e) : moved(e));
      this.byBuffer.set(e.buffer, e);
    }
    this.owner.length = newPages;
    for (let p = this.pages; p < newPages; p++) this.owner[p] = undefined;
    this.pages = newPages;
    this.empties = new WeakSet();
  }

  /**
   * Drop the memory. Views stay attached and read zeros from now on, as the
   * native backend's do: Node's threadpool (zlib, crypto, fs) may still use them,
   * and a transferred buffer would be freed under it.
   */
  close(): void {
    // Only buffers a view was handed out on can still be reached (O(their size), not O(1) like a transfer).
    // A buffer the user transferred away (to a worker) has length 0: nothing of ours to zero.
    for (const [buffer, e] of this.byBuffer) if (e.viewed && buffer.byteLength !== 0) new Uint8Array(buffer).fill(0);
    this.byBuffer.clear();
    this.owner = [];
    this.pages = 0;
    this.empties = new WeakSet();
  }
}
