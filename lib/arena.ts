// VolatileArena: purgeable memory on MADV_FREE.
//
// One large private anonymous region (MAP_NORESERVE) is cut into page-granular
// spans by a first-fit free list that splits and coalesces. A span handed out is
// a VolatileBuffer: pinned (ordinary memory) or unpinned (MADV_FREE'd: the
// kernel may drop its pages under memory pressure, and they then read back zero).
//
// Purge detection follows the race-free canary protocol (docs/ARENA.md,
// Chromium's discardable memory):
//   unpin: for every page, save its first 64-bit word and store a non-zero
//          canary there; only after all canaries are written, MADV_FREE the span.
//   pin:   for every page, one atomic compare-and-swap canary -> saved word.
//          Success proves the page survived and (being a write) makes it
//          non-discardable again; failure means the page was dropped.
// Checking every canary first and restoring afterwards would race with reclaim
// (a page dropped between the check and the restore comes back as zeros with
// only the restored word): never do that.
//
// Views: each pin (and alloc) creates a fresh view of the span; unpin and free
// detach it, so every Uint8Array the caller kept has length 0 and can show
// neither canaries nor a later owner's bytes. The arena uses only the public
// API (a Pagewise instance), so it runs unchanged on the native backend and on
// the simulator.
import * as fs from 'node:fs';
import type { Pagewise } from './api';
import { type CodedError, invalidArgType, pagewiseError } from './errors';
import { pagewise as defaultPagewise } from './index';
import type { Mapping } from './mapping';
import { type Range, validateBoolean, validateInteger, validateObject, validateRange } from './validate';

export interface VolatileArenaOptions {
  /** Bytes to reserve (rounded up to whole pages). Virtual only: MAP_NORESERVE. Default 256 MiB. */
  size?: number;
  /**
   * How long a freed span stays MADV_FREE'd (cheap to reuse) before it is
   * MADV_DONTNEED'd so RSS really goes down, in milliseconds (jemalloc's decay).
   * 0 = DONTNEED at once on free; -1 = never (MADV_FREE only). Default 10 000.
   */
  decayMs?: number;
  /**
   * How long a freed span stays ordinary dirty memory before it is MADV_FREE'd, in
   * milliseconds (jemalloc's dirty_decay_ms before its muzzy stage). A span reused
   * within that window costs no syscall at all; MADV_FREE of a MiB costs ~12 µs
   * plus ~10 µs to re-dirty its pages (bench/). 0 = MADV_FREE at once on free
   * (the default). The decayMs clock starts at free() either way.
   */
  freeDelayMs?: number;
  /** Zero-fill: new allocations and pins that report 'purged' read as all zeros. Default false (content unspecified). */
  zero?: boolean;
  /** The Pagewise instance (backend) to use. Default: the package's. */
  pagewise?: Pagewise;
}

export type BufferState = 'pinned' | 'unpinned' | 'freed';

/** What pin() found: every page survived ('intact') or at least one was dropped ('purged'). */
export type PinResult = 'intact' | 'purged';

/** Counters kept incrementally: reading them costs nothing. Byte counts are whole pages. */
export interface ArenaStats {
  /** Bytes reserved. */
  size: number;
  /** Bytes in pinned buffers. */
  pinnedBytes: number;
  /** Bytes in unpinned (volatile) buffers. */
  unpinnedBytes: number;
  /** Bytes not allocated. */
  freeBytes: number;
  /** Freed bytes not MADV_FREE'd yet (freeDelayMs > 0): ordinary dirty memory. */
  pendingFreeBytes: number;
  /** Live buffers (pinned or unpinned). */
  buffers: number;
  /** alloc() calls that succeeded. */
  allocations: number;
  /** unpin() calls. */
  unpins: number;
  /** pin() calls. */
  pins: number;
  /** pin() calls that reported 'intact'. */
  intactPins: number;
  /** pin() calls that reported 'purged'. */
  purgedPins: number;
  /** Bytes advised MADV_PAGEOUT by purge(). */
  purgedBytes: number;
  /** Bytes of free extents MADV_DONTNEED'd (at once with decayMs 0, after the decay period, or by decayNow()); a freed span coalesced with untouched neighbours is advised whole. */
  decayedBytes: number;
}

/** A nonzero canary; CANARY_ALT is used for a page whose saved word equals CANARY (the pin CAS must change the bytes). */
// 32-bit words: Atomics on an Int32Array stay in small integers (a BigInt64Array
// allocates a BigInt per read), and a zero-filled (purged) page fails the CAS all the same.
const CANARY = 0x5057_564f; // "PWVO"
const CANARY_ALT = ~CANARY;
/** For tests: the two canary words. */
export const CANARY_WORDS: readonly [number, number] = [CANARY, CANARY_ALT];
const DEFAULT_SIZE = 256 * 1024 * 1024;
const DEFAULT_DECAY_MS = 10_000;

/** A free extent, in pages. dirtyAt: when it was last MADV_FREE'd with content (0 = known zero: untouched or DONTNEED'd). */
interface Extent {
  start: number;
  pages: number;
  dirtyAt: number;
}

const CREATE = Symbol('pagewise.createVolatileBuffer');

export class VolatileArena implements Disposable {
  readonly #pw: Pagewise;
  readonly #mapping: Mapping;
  readonly #page: number;
  readonly #pages: number;
  readonly #decayMs: number;
  readonly #freeDelayMs: number;
  /** Freed ranges waiting for MADV_FREE (freeDelayMs > 0), in pages; each lies inside a free extent. */
  #pending: Array<{ start: number; pages: number; at: number }> = [];
  #freeTimer: NodeJS.Timeout | undefined;
  readonly #zero: boolean;
  readonly #maxBytes: number;
  /** Sorted by start, never adjacent (always coalesced). */
  readonly #free: Extent[];
  readonly #live = new Set<VolatileBuffer>();
  readonly #stats: ArenaStats;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = 0;
  #closed = false;

  constructor(options?: VolatileArenaOptions) {
    const o = validateObject<VolatileArenaOptions>('options', options);
    this.#pw = o.pagewise ?? defaultPagewise;
    if (typeof this.#pw !== 'object' || this.#pw === null || typeof this.#pw.map !== 'function') {
      throw invalidArgType('options.pagewise', 'a Pagewise instance', o.pagewise);
    }
    this.#page = this.#pw.pageSize;
    const size = o.size === undefined ? DEFAULT_SIZE : validateInteger('options.size', o.size, 1);
    this.#decayMs = o.decayMs === undefined ? DEFAULT_DECAY_MS : validateInteger('options.decayMs', o.decayMs, -1, 2 ** 31 - 1);
    this.#freeDelayMs =
      o.freeDelayMs === undefined ? 0 : validateInteger('options.freeDelayMs', o.freeDelayMs, 0, 2 ** 31 - 1);
    this.#zero = o.zero === undefined ? false : validateBoolean('options.zero', o.zero);
    this.#pages = Math.ceil(size / this.#page);
    const bytes = this.#pages * this.#page;
    this.#mapping = this.#pw.map(bytes, { noreserve: true });
    // Partial MADV_FREE of a transparent huge page splits it: keep the arena on small pages.
    try {
      if (this.#pw.supports('nohugepage')) this.#mapping.advise('nohugepage');
    } catch {
      // Only a hint.
    }
    this.#maxBytes = Math.min(bytes, this.#pw.backend.maxViewLength - (this.#pw.backend.maxViewLength % this.#page));
    this.#free = [{ start: 0, pages: this.#pages, dirtyAt: 0 }];
    this.#stats = {
      size: bytes,
      pinnedBytes: 0,
      unpinnedBytes: 0,
      freeBytes: bytes,
      pendingFreeBytes: 0,
      buffers: 0,
      allocations: 0,
      unpins: 0,
      pins: 0,
      intactPins: 0,
      purgedPins: 0,
      purgedBytes: 0,
      decayedBytes: 0,
    };
  }

  /** Bytes reserved (whole pages). */
  get size(): number {
    return this.#pages * this.#page;
  }

  get pageSize(): number {
    return this.#page;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The backend kind of the Pagewise instance in use. */
  get backend(): 'native' | 'simulator' {
    return this.#pw.kind;
  }

  /** A snapshot of the counters (a copy of a small object kept up to date incrementally). */
  get stats(): ArenaStats {
    return { ...this.#stats };
  }

  /**
   * A pinned buffer of `bytes` bytes (its span is rounded up to whole pages).
   * Content is unspecified (a previous owner's bytes) unless the arena was made with `zero: true`.
   * Throws ERR_ARENA_FULL when no free span is large enough.
   */
  alloc(bytes: number): VolatileBuffer {
    this.#open('allocate');
    validateInteger('bytes', bytes, 1, this.#maxBytes);
    const pages = Math.ceil(bytes / this.#page);
    const free = this.#free;
    let i = 0;
    while (i < free.length && free[i].pages < pages) i++;
    if (i === free.length) {
      let largest = 0;
      for (const e of free) largest = Math.max(largest, e.pages);
      throw pagewiseError(
        'ERR_ARENA_FULL',
        `Cannot allocate ${bytes} bytes (${pages} pages): the arena has ${this.#stats.freeBytes} bytes free, ` +
          `the largest free span is ${largest * this.#page} bytes`,
      );
    }
    const e = free[i];
    const start = e.start;
    const dirty = e.dirtyAt !== 0;
    if (e.pages === pages) free.splice(i, 1);
    else {
      e.start += pages;
      e.pages -= pages;
    }
    if (this.#pending.length !== 0) this.#unpend(start, start + pages);
    const capacity = pages * this.#page;
    const buffer = new VolatileBuffer(CREATE, this.#core, start * this.#page, bytes, capacity);
    this.#live.add(buffer);
    const s = this.#stats;
    s.freeBytes -= capacity;
    s.pinnedBytes += capacity;
    s.buffers++;
    s.allocations++;
    if (this.#zero && dirty) buffer.bytes.fill(0);
    return buffer;
  }

  /**
   * Deterministic purge (tests, demos): MADV_PAGEOUT over every unpinned buffer and
   * every freed span still waiting for its decay — or only over their parts inside
   * `range` (byte offsets in the arena). On the kernel this drops the clean lazy-free
   * pages at once (pages PAGEOUT could not take yet are MADV_DONTNEED'd: same
   * outcome); on the simulator it reclaims them. Pinned buffers are never touched.
   * Returns the bytes advised.
   */
  purge(range?: Range): number {
    this.#open('purge');
    const [offset, length] = validateRange(range, this.size);
    const lo = offset;
    const hi = Math.ceil((offset + length) / this.#page) * this.#page;
    let bytes = 0;
    const pageout = (start: number, end: number) => {
      const s = Math.max(start, lo - (lo % this.#page));
      const e = Math.min(end, hi);
      if (e <= s) return;
      this.#mapping.advise('pageout', { offset: s, length: e - s });
      bytes += Math.ceil((e - s) / this.#page) * this.#page;
      // PAGEOUT cannot take a page still sitting in another CPU's LRU batch (MADV_FREE
      // ran on one CPU, the thread moved since): the page is only marked lazy-free
      // when that batch drains. Drop what is still resident with DONTNEED — for
      // unpinned memory the same outcome as reclaim (the page reads back zero).
      const { pages, resident, offset: first } = this.#mapping.residency({ offset: s, length: e - s });
      if (resident === 0) return;
      for (let i = 0; i < pages.length; ) {
        if ((pages[i] & 1) === 0) {
          i++;
          continue;
        }
        let j = i;
        while (j < pages.length && (pages[j] & 1) !== 0) j++;
        const from = Math.max(s, first + i * this.#page);
        this.#mapping.advise('dontneed', { offset: from, length: Math.min(e, first + j * this.#page) - from });
        i = j;
      }
    };
    for (const b of this.#live) if (b.state === 'unpinned') pageout(b.offset, b.offset + b.capacity);
    for (const e of this.#free) if (e.dirtyAt !== 0) pageout(e.start * this.#page, (e.start + e.pages) * this.#page);
    this.#stats.purgedBytes += bytes;
    return bytes;
  }

  /** MADV_DONTNEED every freed span now (what the decay timer does later), so RSS goes down. Returns the bytes advised. */
  decayNow(): number {
    this.#open('decay');
    return this.#decay(Infinity);
  }

  /**
   * The kernel's own count of lazily freed bytes of this whole process
   * (LazyFree in /proc/self/smaps_rollup; the kernel updates it lazily).
   * undefined on the simulator or where the file does not exist.
   */
  kernelLazyFreeBytes(): number | undefined {
    if (this.#pw.kind !== 'native') return undefined;
    return readLazyFree();
  }

  /** Free every buffer (their views are detached), stop the decay timer, and unmap. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#freeTimer !== undefined) clearTimeout(this.#freeTimer);
    this.#freeTimer = undefined;
    this.#pending = [];
    for (const b of this.#live) b[kClosed]();
    this.#live.clear();
    this.#mapping.close();
    this.#free.length = 0;
    const s = this.#stats;
    s.pinnedBytes = s.unpinnedBytes = s.buffers = s.pendingFreeBytes = 0;
    s.freeBytes = s.size;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(operation: string): void {
    if (this.#closed) throw pagewiseError('ERR_ARENA_CLOSED', `Cannot ${operation}: the arena is closed`);
  }

  /** What buffers call back into. */
  readonly #core: ArenaCore = {
    mapping: () => this.#mapping,
    page: () => this.#page,
    zero: () => this.#zero,
    stats: () => this.#stats,
    release: (b, wasPinned) => this.#release(b, wasPinned),
  };

  /** Return a buffer's span to the free list (MADV_FREE or DONTNEED it first). */
  #release(b: VolatileBuffer, wasPinned: boolean): void {
    this.#live.delete(b);
    const s = this.#stats;
    if (wasPinned) s.pinnedBytes -= b.capacity;
    else s.unpinnedBytes -= b.capacity;
    s.buffers--;
    s.freeBytes += b.capacity;
    let dirtyAt = 0;
    if (this.#decayMs === 0) {
      this.#mapping.advise('dontneed', { offset: b.offset, length: b.capacity });
      s.decayedBytes += b.capacity;
    } else {
      dirtyAt = performance.now();
      // An unpinned buffer is MADV_FREE'd already.
      if (wasPinned && this.#freeDelayMs > 0) {
        this.#pending.push({ start: b.offset / this.#page, pages: b.capacity / this.#page, at: dirtyAt });
        s.pendingFreeBytes += b.capacity;
        this.#scheduleFree(dirtyAt + this.#freeDelayMs);
      } else if (wasPinned) {
        this.#mapping.advise('free', { offset: b.offset, length: b.capacity });
      }
    }
    this.#insertFree(b.offset / this.#page, b.capacity / this.#page, dirtyAt);
    if (dirtyAt !== 0 && this.#decayMs > 0) this.#schedule(dirtyAt + this.#decayMs);
  }

  /** Insert an extent, coalescing with its neighbours. */
  #insertFree(start: number, pages: number, dirtyAt: number): void {
    const free = this.#free;
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (free[mid].start < start) lo = mid + 1;
      else hi = mid;
    }
    const prev = lo > 0 ? free[lo - 1] : undefined;
    const next = lo < free.length ? free[lo] : undefined;
    // A merged extent is dirty if any part is, and decays with its most recent part.
    if (prev && prev.start + prev.pages === start) {
      prev.pages += pages;
      prev.dirtyAt = Math.max(prev.dirtyAt, dirtyAt);
      if (next && start + pages === next.start) {
        prev.pages += next.pages;
        prev.dirtyAt = Math.max(prev.dirtyAt, next.dirtyAt);
        free.splice(lo, 1);
      }
    } else if (next && start + pages === next.start) {
      next.start = start;
      next.pages += pages;
      next.dirtyAt = Math.max(next.dirtyAt, dirtyAt);
    } else {
      free.splice(lo, 0, { start, pages, dirtyAt });
    }
  }

  #schedule(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#decay(performance.now() - this.#decayMs);
      let next = Infinity;
      for (const e of this.#free) if (e.dirtyAt !== 0) next = Math.min(next, e.dirtyAt + this.#decayMs);
      if (next !== Infinity) this.#schedule(next);
    }, Math.max(0, Math.ceil(at - performance.now())) + 1);
    this.#timer.unref();
  }

  /** DONTNEED every dirty free extent freed at or before `cutoff`. */
  #decay(cutoff: number): number {
    let bytes = 0;
    for (const e of this.#free) {
      if (e.dirtyAt === 0 || e.dirtyAt > cutoff) continue;
      const length = e.pages * this.#page;
      this.#mapping.advise('dontneed', { offset: e.start * this.#page, length });
      if (this.#pending.length !== 0) this.#unpend(e.start, e.start + e.pages);
      e.dirtyAt = 0;
      bytes += length;
    }
    this.#stats.decayedBytes += bytes;
    return bytes;
  }

  /** Forget the parts of pending ranges inside [first, end) (pages): reused or DONTNEED'd. */
  #unpend(first: number, end: number): void {
    const kept: Array<{ start: number; pages: number; at: number }> = [];
    let dropped = 0;
    for (const r of this.#pending) {
      const rEnd = r.start + r.pages;
      if (rEnd <= first || r.start >= end) {
        kept.push(r);
        continue;
      }
      if (r.start < first) kept.push({ start: r.start, pages: first - r.start, at: r.at });
      if (rEnd > end) kept.push({ start: end, pages: rEnd - end, at: r.at });
      dropped += Math.min(rEnd, end) - Math.max(r.start, first);
    }
    this.#pending = kept;
    this.#stats.pendingFreeBytes -= dropped * this.#page;
  }

  #scheduleFree(at: number): void {
    if (this.#freeTimer !== undefined) return; // it reschedules itself for the rest
    this.#freeTimer = setTimeout(() => {
      this.#freeTimer = undefined;
      if (this.#closed) return;
      const now = performance.now();
      const due = this.#pending.filter((r) => r.at + this.#freeDelayMs <= now);
      this.#pending = this.#pending.filter((r) => r.at + this.#freeDelayMs > now);
      for (const r of due) {
        this.#mapping.advise('free', { offset: r.start * this.#page, length: r.pages * this.#page });
        this.#stats.pendingFreeBytes -= r.pages * this.#page;
      }
      let next = Infinity;
      for (const r of this.#pending) next = Math.min(next, r.at);
      if (next !== Infinity) this.#scheduleFree(next + this.#freeDelayMs);
    }, Math.max(0, Math.ceil(at - performance.now())) + 1);
    this.#freeTimer.unref();
  }

  /** Test hook: the free list as [startByte, bytes] pairs (sorted, coalesced). */
  freeSpans(): Array<[number, number]> {
    return this.#free.map((e) => [e.start * this.#page, e.pages * this.#page]);
  }
}

interface ArenaCore {
  mapping(): Mapping;
  page(): number;
  zero(): boolean;
  stats(): ArenaStats;
  release(b: VolatileBuffer, wasPinned: boolean): void;
}

const kClosed = Symbol('pagewise.arenaClosed');

/**
 * A page-granular span of a VolatileArena. Pinned: ordinary memory, `bytes` is
 * valid. Unpinned: the kernel may drop it; `bytes` throws and every view handed
 * out before has length 0. pin() says whether the content survived.
 */
export class VolatileBuffer implements Disposable {
  readonly #core: ArenaCore;
  /** Byte offset of the span in the arena. */
  readonly offset: number;
  /** Bytes asked for. */
  readonly length: number;
  /** Bytes of the span (whole pages). */
  readonly capacity: number;
  #state: BufferState = 'pinned';
  /** The per-pin view over the whole span; undefined when not pinned. */
  #view: Uint8Array | undefined;
  #bytes: Uint8Array | undefined;
  /** Per page: [saved first word, canary written]. */
  #side: Int32Array | undefined;

  constructor(token: typeof CREATE, core: ArenaCore, offset: number, length: number, capacity: number) {
    if (token !== CREATE) throw new TypeError('Illegal constructor: use arena.alloc()');
    this.#core = core;
    this.offset = offset;
    this.length = length;
    this.capacity = capacity;
    this.#attach();
  }

  /** 'pinned', 'unpinned' or 'freed'. */
  get state(): BufferState {
    return this.#state;
  }

  get pinned(): boolean {
    return this.#state === 'pinned';
  }

  /**
   * The content (length bytes). Valid only while pinned: unpin() and free()
   * detach it (length 0). Throws ERR_BUFFER_UNPINNED or ERR_BUFFER_FREED otherwise.
   */
  get bytes(): Uint8Array {
    if (this.#view === undefined) throw this.#notPinned('access the bytes of');
    // Defensive: on the simulator, views over overlapping memory share fate (a documented
    // divergence), so a pinned buffer whose view was detached from elsewhere gets a new one.
    if (this.#view.byteLength === 0) this.#attach();
    return this.#bytes as Uint8Array;
  }

  /**
   * Make the buffer volatile: the kernel may drop its pages under memory pressure.
   * Writes a canary into each page (saving the word it replaces), detaches every
   * view, and only then MADV_FREEs the span.
   */
  unpin(): void {
    if (this.#view === undefined) throw this.#notPinned('unpin');
    const view = this.#view.byteLength === 0 ? this.#attach() : this.#view;
    const page = this.#core.page();
    const pages = this.capacity / page;
    const step = page / 4;
    const words = new Int32Array(view.buffer, view.byteOffset, this.capacity / 4);
    const side = (this.#side ??= new Int32Array(2 * pages));
    for (let p = 0, w = 0; p < pages; p++, w += step) {
      const saved = words[w];
      const canary = saved === CANARY ? CANARY_ALT : CANARY;
      side[2 * p] = saved;
      side[2 * p + 1] = canary;
      words[w] = canary;
    }
    this.#detach();
    this.#state = 'unpinned';
    const s = this.#core.stats();
    s.pinnedBytes -= this.capacity;
    s.unpinnedBytes += this.capacity;
    s.unpins++;
    // After every canary is in place: a write after MADV_FREE would cancel the free.
    this.#core.mapping().advise('free', { offset: this.offset, length: this.capacity });
  }

  /**
   * Pin again and say whether the content survived: 'intact' (byte-exact) or
   * 'purged' (at least one page was dropped; content unspecified, or zeros if the
   * arena was made with `zero: true`). Either way the buffer is pinned and usable.
   * One atomic compare-and-swap per page (canary -> saved word).
   */
  pin(): PinResult {
    if (this.#state !== 'unpinned') {
      if (this.#state === 'freed') throw this.#notPinned('pin');
      throw pagewiseError('ERR_BUFFER_PINNED', 'Cannot pin: the buffer is already pinned');
    }
    const view = this.#attach();
    const page = this.#core.page();
    const pages = this.capacity / page;
    const step = page / 4;
    const words = new Int32Array(view.buffer, view.byteOffset, this.capacity / 4);
    const side = this.#side as Int32Array;
    let purged = false;
    // Every page gets its CAS even after a failure: each one re-dirties its page
    // (a failed CAS on a dropped page faults in a fresh zero page), so no page of
    // a pinned buffer stays lazily freed.
    for (let p = 0, w = 0; p < pages; p++, w += step) {
      const canary = side[2 * p + 1];
      if (Atomics.compareExchange(words, w, canary, side[2 * p]) !== canary) purged = true;
    }
    this.#state = 'pinned';
    const s = this.#core.stats();
    s.unpinnedBytes -= this.capacity;
    s.pinnedBytes += this.capacity;
    s.pins++;
    if (purged) {
      s.purgedPins++;
      if (this.#core.zero()) view.fill(0);
      return 'purged';
    }
    s.intactPins++;
    return 'intact';
  }

  /** Return the span to the arena. Every view is detached. Idempotent. */
  free(): void {
    if (this.#state === 'freed') return;
    const wasPinned = this.#state === 'pinned';
    this.#detach();
    this.#state = 'freed';
    this.#side = undefined;
    this.#core.release(this, wasPinned);
  }

  [Symbol.dispose](): void {
    this.free();
  }

  /** The arena was closed: the mapping is gone (and detached every view). */
  [kClosed](): void {
    this.#view = this.#bytes = this.#side = undefined;
    this.#state = 'freed';
  }

  #attach(): Uint8Array {
    const view = this.#core.mapping().view(this.offset, this.capacity);
    this.#view = view;
    this.#bytes = view.length === this.length ? view : view.subarray(0, this.length);
    return view;
  }

  #detach(): void {
    if (this.#view === undefined) return;
    if (this.#view.byteLength !== 0) this.#core.mapping().detachView(this.#view);
    this.#view = this.#bytes = undefined;
  }

  #notPinned(operation: string): CodedError {
    return this.#state === 'freed'
      ? pagewiseError('ERR_BUFFER_FREED', `Cannot ${operation} the buffer: it was freed`)
      : pagewiseError('ERR_BUFFER_UNPINNED', `Cannot ${operation} the buffer: it is unpinned (pin() it first)`);
  }
}

/** LazyFree of /proc/self/smaps_rollup in bytes, or undefined. */
export function readLazyFree(): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps_rollup', 'latin1');
  } catch {
    return undefined;
  }
  const m = /^LazyFree:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}
