// VolatileArena: purgeable memory on MADV_FREE.
// (Over 600 lines: the allocator, the batches, the held and quarantined spans, decay and
// the timer act on one set of free/dirty/held lists under one invariant — a span's pages are
// counted in exactly one state — so they stay in one class; the buffer and its canary
// protocol are in ./buffer.ts, options in ./options.ts, counters in ./stats.ts.)
//
// One large private anonymous region (MAP_NORESERVE) is cut into page-granular
// spans by a first-fit free list that splits and coalesces. A span handed out is
// a VolatileBuffer in one of four states:
//   pinned   ordinary memory; `bytes` is valid.
//   unpinned the owner said it may be dropped, but only userspace knows (a
//            "soft" unpin: Chromium's discardable memory keeps lock/unlock in
//            userspace too). Pinning it again costs no syscall and no CAS.
//   volatile canaries written and the span MADV_FREE'd: the kernel may drop its
//            pages under pressure (they then read back zero).
//   freed    back in the arena.
// Unpinned spans become volatile in batches: when they have been unpinned for
// `unpinDelayMs`, when the unpinned bytes exceed `unpinMaxBytes`, on flush() /
// purge(), and on a memory-pressure signal. So the kernel only hears about
// memory that has actually gone cold.
//
// Purge detection follows the race-free canary protocol (docs/ARENA.md):
//   make volatile: for every page, save its first 32-bit word and store a
//          non-zero canary there; only after all canaries of the batch are
//          written, MADV_FREE the spans (a write after MADV_FREE cancels it).
//   pin:   for every page, one atomic compare-and-swap canary -> saved word.
//          Success proves the page survived and (being a write) makes it
//          non-discardable again; failure means the page was dropped.
// Checking every canary first and restoring afterwards would race with reclaim:
// never do that.
//
// Views, one rule (docs/ARENA.md): the arena writes canaries into, advises, or
// hands to another owner a span only once every ArrayBuffer exposed over it was
// garbage-collected. Node's async work (a socket write to a slow reader, zlib,
// fs, crypto, a Writable's buffered chunk) keeps the buffer object it was given
// reachable until it is done, so collection is the one sound signal; detaching is
// not (zlib aborts the process), and the arena never detaches. A buffer holds its
// view strongly only while pinned, and weakly across unpin (a hot re-pin reuses
// it); a FinalizationRegistry tells the arena when a span is unexposed. Meanwhile an
// unpinned span due to become volatile stays ordinary memory ("held", counted in
// stats.heldBytes) and a freed one waits in quarantine (alloc() grows the arena by
// a region rather than fail); both are picked up when their views are collected.
// The arena uses only the public API (a Pagewise instance), so it runs unchanged
// on the native backend and on the simulator. The buffer and its canary protocol
// live in ./buffer.ts, the options and defaults in ./options.ts.
import type { Advice } from '../advice';
import type { Pagewise } from '../api';
import { defaultPagewise } from '../default-pagewise';
import { invalidArgType, pagewiseError } from '../errors';
import { LEND_VIEW, type Mapping } from '../mapping';
import { effectiveMemoryLimit } from '../cgroup';
import { readLazyFree } from '../proc';
import { plural } from '../plural';
import { type Range, validateBoolean, validateInteger, validateObject, validateOneOf, validateRange } from '../validate';
import {
  type ArenaCore,
  type BufferState,
  CREATE,
  type Exposure,
  kCanaries,
  kClosed,
  kExposure,
  kHeldNode,
  kSoftNode,
  kUnexposed,
  kUnpinnedAt,
  VolatileBuffer,
} from './buffer';
import { lastCollectionMs, requestCollection } from './collect';
import { List } from './list';
import {
  ARENA_OPTION_KEYS,
  DEFAULT_DECAY_MS,
  DEFAULT_FREE_DELAY_MS,
  DEFAULT_SIZE,
  DEFAULT_UNPIN_DELAY_MS,
  DEFAULT_UNPIN_SHARE,
  type VolatileArenaOptions,
} from './options';
import { listenToPressure, PRESSURE_LEVELS, type PressureLevel } from './pressure-source';

export type { BufferState, PinResult } from './buffer';
export { VolatileBuffer } from './buffer';
export type { VolatileArenaOptions } from './options';
export type { ArenaStats } from './stats';
import type { ArenaStats } from './stats';
export type { PressureEvent, PressureLevel, PressureSource } from './pressure-source';

/** Grown regions: at most this many times the constructor's size, and at most MAX_RESERVED_BYTES in all. */
const MAX_GROWN_REGIONS = 64;
const MAX_RESERVED_BYTES = 2 ** 36; // 64 GiB of address space (MAP_NORESERVE: virtual only)
/** At most one requested collection per this many ms (a full GC of a large heap takes tens of ms). */
const COLLECT_INTERVAL_MS = 1000;
/** Held memory under the bound: a collection at most this often (and 50 × its cost), backed off up to MAX_COLLECT_BACKOFF times. */
const HELD_COLLECT_MS = 1000;
const MAX_COLLECT_BACKOFF = 32;
/** Held spans released this soon after critical pressure are dropped (DONTNEED) at once, as the pressure asked. */
const CRITICAL_WINDOW_MS = 5000;
/** Pages per residency() call in purge(): bounds the vector allocated per call. */
const RESIDENCY_CHUNK_PAGES = 1 << 16;

/** A free extent, in pages (for allocation; coalesced). */
interface Extent {
  start: number;
  pages: number;
}

/** A freed range that still holds a previous owner's pages: pending (not yet MADV_FREE'd) or lazy (MADV_FREE'd). */
interface DirtyRange {
  start: number;
  pages: number;
  /** When it was freed (performance.now()). */
  at: number;
  /** MADV_FREE'd already. */
  lazy: boolean;
}
export class VolatileArena implements Disposable {
  readonly #pw: Pagewise;
  /**
   * The reservations. [0] is made by the constructor; more are mapped only when an
   * allocation would fit but for spans in quarantine (#grow), and unmapped again once
   * wholly free. Region r holds the arena's pages [r * #stride, r * #stride + #pages):
   * the one-page gap keeps extents of two regions from ever coalescing.
   */
  readonly #regions: Array<Mapping | undefined>;
  readonly #name: string;
  readonly #page: number;
  /** Pages per region. */
  readonly #pages: number;
  /** #pages + 1: region r starts at page r * #stride. */
  readonly #stride: number;
  /** Bytes all regions together may reserve (grown regions included). */
  readonly #maxReserved: number;
  /** A grown region may have become wholly free: the timer unmaps such regions. */
  #shrinkDue = false;
  readonly #weakSelf: WeakRef<VolatileArena> = new WeakRef(this);
  readonly #decayMs: number;
  readonly #freeDelayMs: number;
  readonly #unpinDelayMs: number;
  readonly #unpinMaxBytes: number;
  readonly #zero: boolean;
  readonly #strict: boolean;
  readonly #quarantine: boolean;
  readonly #maxBytes: number;
  /** Sorted by start, never adjacent (always coalesced). */
  readonly #free: Extent[];
  /** Freed ranges with old content (inside free extents), oldest first. */
  #dirty: DirtyRange[] = [];
  readonly #live = new Set<VolatileBuffer>();
  /** Unpinned, not yet volatile buffers, least recently unpinned first. */
  readonly #soft = new List<VolatileBuffer>();
  /** Unpinned buffers due to become volatile, waiting for their views to be collected. */
  readonly #held = new List<VolatileBuffer>();
  /** The collection #scheduleCollection() asked for, and when it is due. */
  #collectTimer: NodeJS.Timeout | undefined;
  #collectTimerAt = Infinity;
  /** Grows while requested collections free nothing (a view kept on purpose), so they get rarer. */
  #collectBackoff = 1;
  /** Spans whose last view was collected since the last requested collection. */
  #unexposedSinceCollection = 0;
  /** When the last critical pressure was handled: spans released soon after are dropped at once. */
  #criticalAt = -Infinity;
  /** Spans kept mapped after close() while views over them may be alive. */
  #exposedAfterClose = 0;
  /** Freed spans in quarantine. */
  #quarantinedSpans = 0;
  /** Per region, the arena's own view of all of it (native; never exposed: see privateView). */
  readonly #regionViews: Array<Uint8Array | undefined> = [];
  /** When a collection was last requested. */
  #collectedAt = -Infinity;
  readonly #stats: ArenaStats;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /**
   * A coarse clock for unpinned buffers, advanced by the timer every unpinDelayMs / 2
   * while any are waiting (reading performance.now() on every unpin would cost more
   * than the rest of a hot hit). A buffer is due three ticks after its unpin: it has
   * then been unpinned between unpinDelayMs and 1.5 × unpinDelayMs.
   */
  #epoch = 0;
  #epochArmed = false;
  #closed = false;
  readonly #stopListening: (() => void) | undefined;

  constructor(options?: VolatileArenaOptions) {
    const o = validateObject<VolatileArenaOptions>('options', options, ARENA_OPTION_KEYS);
    this.#pw = o.pagewise ?? defaultPagewise;
    if (typeof this.#pw !== 'object' || this.#pw === null || typeof this.#pw.map !== 'function') {
      throw invalidArgType('options.pagewise', 'a Pagewise instance', o.pagewise);
    }
    this.#page = this.#pw.pageSize;
    const size = o.size === undefined ? DEFAULT_SIZE : validateInteger('options.size', o.size, 1);
    const ms = (name: string, value: unknown, dflt: number, min: number) =>
      value === undefined ? dflt : validateInteger(`options.${name}`, value, min, 2 ** 31 - 1);
    this.#decayMs = ms('decayMs', o.decayMs, DEFAULT_DECAY_MS, -1);
    this.#freeDelayMs = ms('freeDelayMs', o.freeDelayMs, DEFAULT_FREE_DELAY_MS, 0);
    this.#unpinDelayMs = ms('unpinDelayMs', o.unpinDelayMs, DEFAULT_UNPIN_DELAY_MS, -1);
    this.#unpinMaxBytes =
      o.unpinMaxBytes === undefined
        ? Math.floor(effectiveMemoryLimit() * DEFAULT_UNPIN_SHARE)
        : validateInteger('options.unpinMaxBytes', o.unpinMaxBytes, 0);
    this.#zero = o.zero === undefined ? false : validateBoolean('options.zero', o.zero);
    this.#strict = o.strict === undefined ? false : validateBoolean('options.strict', o.strict);
    this.#quarantine = o.quarantine === undefined ? true : validateBoolean('options.quarantine', o.quarantine);
    this.#pages = Math.ceil(size / this.#page);
    this.#stride = this.#pages + 1;
    const bytes = this.#pages * this.#page;
    this.#maxReserved = Math.max(bytes, Math.min(MAX_GROWN_REGIONS * bytes, MAX_RESERVED_BYTES));
    const maxView = this.#pw.maxViewLength;
    this.#maxBytes = Math.min(bytes, maxView - (maxView % this.#page));
    this.#name = o.name ?? 'pagewise-arena';
    this.#regions = [this.#mapRegion()];
    this.#free = [{ start: 0, pages: this.#pages }];
    this.#stats = {
      size: bytes,
      regions: 1,
      pinnedBytes: 0,
      unpinnedBytes: 0,
      softUnpinnedBytes: 0,
      heldBytes: 0,
      heldBuffers: 0,
      volatileBytes: 0,
      freeBytes: bytes,
      pendingFreeBytes: 0,
      quarantinedBytes: 0,
      grownRegions: 0,
      buffers: 0,
      allocations: 0,
      unpins: 0,
      pins: 0,
      softPins: 0,
      intactPins: 0,
      purgedPins: 0,
      volatileBatches: 0,
      madeVolatile: 0,
      purgedBytes: 0,
      decayedBytes: 0,
      pressureEvents: 0,
      collectionsRequested: 0,
    };
    try {
      this.#stopListening = listenToPressure('options.pressure', o.pressure, (level) => {
        if (!this.#closed) this.handlePressure(level);
      });
    } catch (err) {
      this.#regions[0]?.close();
      throw err;
    }
  }

  #mapRegion(): Mapping {
    const m = this.#pw.map(this.#pages * this.#page, { noreserve: true, name: this.#name });
    // Partial MADV_FREE of a transparent huge page splits it: keep the arena on small pages.
    try {
      if (this.#pw.supports('nohugepage')) m.advise('nohugepage');
    } catch {
      // Only a hint.
    }
    return m;
  }

  /** Region index of a byte offset in the arena. */
  #regionOf(offset: number): number {
    return this.#regions.length === 1 ? 0 : Math.floor(offset / (this.#stride * this.#page));
  }

  /** Advise [offset, offset + length) (inside one region; arena byte offsets). */
  #advise(advice: Advice, offset: number, length: number): void {
    const r = this.#regionOf(offset);
    (this.#regions[r] as Mapping).advise(advice, { offset: offset - r * this.#stride * this.#page, length });
  }

  /** Bytes reserved (whole pages): the constructor's `size`, plus regions grown while spans were in quarantine. */
  get size(): number {
    return this.#stats.size;
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
    if (i === free.length && this.#grow(pages)) {
      i = 0;
      while (free[i].pages < pages) i++;
    }
    if (i === free.length) {
      let largest = 0;
      for (const e of free) largest = Math.max(largest, e.pages);
      const q = this.#stats.quarantinedBytes;
      throw pagewiseError(
        'ERR_ARENA_FULL',
        `Cannot allocate ${plural(bytes, 'byte')} (${plural(pages, 'page')}): the arena has ${this.#stats.freeBytes} bytes free, ` +
          `the largest free span is ${largest * this.#page} bytes` +
          (q > 0
            ? ` (${q} bytes wait for their old views to be garbage-collected, and the arena may not grow further:` +
              ' drop references to freed buffers\' bytes and let the event loop run so they are collected)'
            : ''),
      );
    }
    const e = free[i];
    const start = e.start;
    if (e.pages === pages) free.splice(i, 1);
    else {
      e.start += pages;
      e.pages -= pages;
    }
    const dirty = this.#dirty.length !== 0 && this.#cutDirty(start, start + pages);
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
   * Nothing free fits `pages`, but it would if the quarantined spans were free:
   * map one more region (a fresh reservation, so no address a previous owner's view
   * may still reach is handed out) rather than fail. Returns whether it grew (the
   * new region's extent is then the only one that fits).
   */
  #grow(pages: number): boolean {
    const s = this.#stats;
    if (s.quarantinedBytes === 0 || s.quarantinedBytes + s.freeBytes < pages * this.#page) return false;
    const bytes = this.#pages * this.#page;
    if (s.size + bytes > this.#maxReserved) return false;
    // Old content of freed spans cannot be reused soon (most of it is quarantined): give
    // it back now, so a long synchronous loop does not pile up lazily freed memory.
    this.#decay(Infinity);
    let r = this.#regions.indexOf(undefined);
    if (r < 0) r = this.#regions.length;
    const m = this.#mapRegion();
    this.#regions[r] = m;
    const start = r * this.#stride;
    this.#insertFree(start, this.#pages); // never coalesces: the gap page
    s.size += bytes;
    s.freeBytes += bytes;
    s.regions++;
    s.grownRegions++;
    return true;
  }

  /** Unmap grown regions that are wholly free (none of their spans is used or quarantined). */
  #shrink(): void {
    this.#shrinkDue = false;
    const free = this.#free;
    for (let r = 1; r < this.#regions.length; r++) {
      const m = this.#regions[r];
      if (m === undefined) continue;
      const start = r * this.#stride;
      const k = free.findIndex((e) => e.start === start && e.pages === this.#pages);
      if (k < 0) continue;
      free.splice(k, 1);
      this.#cutDirty(start, start + this.#pages);
      m.close();
      this.#regions[r] = undefined;
      this.#regionViews[r] = undefined;
      const bytes = this.#pages * this.#page;
      this.#stats.size -= bytes;
      this.#stats.freeBytes -= bytes;
      this.#stats.regions--;
    }
    while (this.#regions.length > 1 && this.#regions[this.#regions.length - 1] === undefined) this.#regions.pop();
  }

  /**
   * Make every unpinned buffer volatile now (canaries, then MADV_FREE in one batch),
   * and MADV_FREE every freed span still waiting for freeDelayMs. Returns the bytes
   * of unpinned buffers made volatile.
   */
  flush(): number {
    this.#open('flush');
    return this.#flushAll();
  }

  /**
   * Deterministic purge (tests, demos): make every unpinned buffer volatile, then
   * MADV_PAGEOUT every volatile buffer and every freed span still holding old
   * content — or only their parts inside `range` (byte offsets in the arena). On
   * the kernel this drops the lazy-free pages at once (pages PAGEOUT could not take
   * yet are MADV_DONTNEED'd: same outcome); on the simulator it reclaims them.
   * Pinned buffers are never touched, and untouched parts of the reservation are
   * not visited. Returns the bytes advised.
   */
  purge(range?: Range): number {
    this.#open('purge');
    const [offset, length] = validateRange(range, (this.#regions.length * this.#stride - 1) * this.#page);
    const lo = offset - (offset % this.#page);
    const hi = Math.ceil((offset + length) / this.#page) * this.#page;
    this.#flushAll();
    let bytes = 0;
    const pageout = (start: number, end: number) => {
      const s = Math.max(start, lo);
      const e = Math.min(end, hi);
      if (e <= s) return;
      this.#advise('pageout', s, e - s);
      bytes += e - s;
      // PAGEOUT cannot take a page still sitting in another CPU's LRU batch (MADV_FREE
      // ran on one CPU, the thread moved since): the page is only marked lazy-free
      // when that batch drains. Drop what is still resident with DONTNEED — for
      // unpinned memory the same outcome as reclaim (the page reads back zero).
      for (let c = s; c < e; c += RESIDENCY_CHUNK_PAGES * this.#page) {
        const ce = Math.min(e, c + RESIDENCY_CHUNK_PAGES * this.#page);
        this.#dropResident(c, ce);
      }
    };
    for (const b of this.#live) if (b.state === 'volatile') pageout(b.offset, b.offset + b.capacity);
    for (const d of this.#dirty) pageout(d.start * this.#page, (d.start + d.pages) * this.#page);
    this.#stats.purgedBytes += bytes;
    return bytes;
  }

  /**
   * Ask the engine to collect views nothing references any more (where the runtime lets a
   * library do so: see docs/ARENA.md) and wait, a bounded number of event-loop turns, until
   * the arena has acted on them: held buffers become volatile and quarantined spans free.
   * Resolves to the bytes still held back (heldBytes + quarantinedBytes) — by something that
   * still references a view, or because no collection could be requested. For tests and
   * demos; a service need not call it (the engine's own collections do the same, later).
   */
  async collectViews(): Promise<number> {
    const s = this.#stats;
    const turn = () => new Promise((r) => setTimeout(r, 0));
    for (let i = 0; i < 8 && !this.#closed; i++) {
      // A view made or read in the caller's task survives a collection in that task.
      await turn();
      if (requestCollection()) s.collectionsRequested++;
      await turn();
      await turn();
      if (s.heldBytes + s.quarantinedBytes === 0) break;
    }
    return s.heldBytes + s.quarantinedBytes;
  }

  /** MADV_DONTNEED every freed span now (what the decay timer does later), so RSS goes down. Returns the bytes advised. */
  decayNow(): number {
    this.#open('decay');
    return this.#decay(Infinity);
  }

  /**
   * React to memory pressure (what the `pressure` option calls). 'moderate': make
   * every unpinned buffer volatile now and MADV_FREE every freed span. 'critical':
   * the same, then MADV_DONTNEED every volatile buffer (its next pin reports
   * 'purged') and every freed span, so the memory is really gone at once.
   * Pinned buffers are never touched.
   */
  handlePressure(level: PressureLevel): void {
    validateOneOf('level', level, PRESSURE_LEVELS);
    this.#open('handle memory pressure');
    this.#stats.pressureEvents++;
    if (level === 'critical') this.#criticalAt = performance.now();
    this.#flushAll();
    this.#collectSoon();
    if (level !== 'critical') return;
    for (const b of this.#live) {
      if (b.state === 'volatile') this.#advise('dontneed', b.offset, b.capacity);
    }
    this.#decay(Infinity);
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

  /**
   * Free every buffer, stop the timers and listeners, and unmap. Idempotent. No view is
   * detached: while any view over the arena may still be reachable (your code, or Node's
   * async work), the memory stays mapped as it is, owned by no one, and it is unmapped
   * once the last of them is collected.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening?.();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#collectTimer !== undefined) clearTimeout(this.#collectTimer);
    this.#collectTimer = undefined;
    this.#dirty = [];
    this.#soft.clear();
    this.#held.clear();
    let exposed = this.#quarantinedSpans;
    for (const b of this.#live) {
      if (b[kExposure].views > 0) exposed++;
      b[kClosed]();
    }
    this.#live.clear();
    this.#exposedAfterClose = exposed;
    if (exposed === 0) this.#closeRegions();
    this.#free.length = 0;
    const s = this.#stats;
    s.pinnedBytes = s.unpinnedBytes = s.softUnpinnedBytes = s.volatileBytes = s.heldBytes = 0;
    s.buffers = s.pendingFreeBytes = s.quarantinedBytes = 0;
    s.freeBytes = s.size;
  }

  /**
   * Held and quarantined spans wait for their views to be collected: under pressure, ask
   * the engine for a collection (rate-limited). A view made or read in the current task
   * survives any collection in it (WeakRef semantics), so one more runs in the next turn
   * of the event loop; the FinalizationRegistry then releases what was collected.
   */
  #collectSoon(): void {
    const s = this.#stats;
    if (s.heldBytes + s.quarantinedBytes === 0 || performance.now() - this.#collectedAt < COLLECT_INTERVAL_MS) return;
    this.#collectedAt = performance.now();
    if (requestCollection()) s.collectionsRequested++;
    setTimeout(() => {
      if (this.#closed || s.heldBytes + s.quarantinedBytes === 0) return;
      if (requestCollection()) s.collectionsRequested++;
    }, 0).unref();
  }

  /**
   * Held and quarantined spans wait for the engine to collect their views, and a process
   * that allocates little JavaScript may not run a major collection for minutes: ask for
   * one on the next turn of the event loop, at most every HELD_COLLECT_MS or 50 times the
   * last collection's duration (under 2 % of the time), backing off while collections free
   * nothing (a view kept on purpose); every COLLECT_INTERVAL_MS once held and quarantined
   * bytes pass unpinMaxBytes, the bound on memory the kernel cannot take.
   */
  #scheduleCollection(): void {
    const s = this.#stats;
    const waiting = s.heldBytes + s.quarantinedBytes;
    if (waiting === 0 || this.#closed) return;
    const every =
      waiting > this.#unpinMaxBytes
        ? COLLECT_INTERVAL_MS
        : Math.max(HELD_COLLECT_MS, 50 * lastCollectionMs()) * this.#collectBackoff;
    const at = this.#collectedAt + every;
    if (this.#collectTimer !== undefined) {
      if (this.#collectTimerAt <= at) return;
      clearTimeout(this.#collectTimer);
    }
    this.#collectTimerAt = at;
    this.#collectTimer = setTimeout(() => {
      this.#collectTimer = undefined;
      if (this.#closed || s.heldBytes + s.quarantinedBytes === 0) return;
      // The finalizers of the previous collection have run by now: did it let anything go?
      if (this.#collectedAt !== -Infinity && this.#unexposedSinceCollection === 0) {
        this.#collectBackoff = Math.min(this.#collectBackoff * 2, MAX_COLLECT_BACKOFF);
      } else this.#collectBackoff = 1;
      this.#unexposedSinceCollection = 0;
      this.#collectedAt = performance.now();
      if (requestCollection()) s.collectionsRequested++;
      this.#scheduleCollection();
    }, Math.max(0, at - performance.now()));
    this.#collectTimer.unref();
  }

  #closeRegions(): void {
    this.#regionViews.length = 0;
    for (const m of this.#regions) m?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(operation: string): void {
    if (this.#closed) throw pagewiseError('ERR_ARENA_CLOSED', `Cannot ${operation}: the arena is closed`);
  }

  /** What buffers call back into. */
  readonly #core: ArenaCore = {
    view: (offset, length) => {
      const r = this.#regionOf(offset);
      return (this.#regions[r] as Mapping)[LEND_VIEW](offset - r * this.#stride * this.#page, length);
    },
    privateView: (offset, length) => {
      const r = this.#regionOf(offset);
      const local = offset - r * this.#stride * this.#page;
      // Native: one view over the whole region serves every private access (no external
      // ArrayBuffer per buffer). The simulator's views share an extent's memory, so there a
      // region-wide view would copy the whole region into one extent: a view per span instead.
      if (this.#pw.kind === 'native' && this.#pages * this.#page <= this.#pw.maxViewLength) {
        let whole = this.#regionViews[r];
        if (whole === undefined || whole.byteLength === 0) {
          whole = (this.#regions[r] as Mapping).view(0, this.#pages * this.#page);
          this.#regionViews[r] = whole;
        }
        return whole.subarray(local, local + length);
      }
      return (this.#regions[r] as Mapping).view(local, length);
    },
    page: () => this.#page,
    zero: () => this.#zero,
    strict: () => this.#strict,
    stats: () => this.#stats,
    exposure: (b) => ({
      arena: this.#weakSelf,
      buffer: b,
      start: b.offset / this.#page,
      pages: b.capacity / this.#page,
      views: 0,
      freed: false,
    }),
    softUnpin: (b) => this.#softUnpin(b),
    softPin: (b) => {
      this.#soft.remove(b[kSoftNode]);
      this.#unhold(b);
    },
    release: (b, state, exposure) => this.#release(b, state, exposure),
  };

  /** A buffer due to become volatile whose view is still reachable: it waits, as ordinary memory. */
  #hold(b: VolatileBuffer): void {
    this.#held.push(b[kHeldNode]);
    this.#stats.heldBytes += b.capacity;
    this.#scheduleCollection();
    this.#stats.heldBuffers++;
  }

  #unhold(b: VolatileBuffer): void {
    if (!b[kHeldNode].listed) return;
    this.#held.remove(b[kHeldNode]);
    this.#stats.heldBytes -= b.capacity;
  }

  /** Held buffers whose views were collected, made volatile together (one batch per collection). */
  #released: VolatileBuffer[] = [];

  /**
   * @internal The last exposed view of a span was collected: nothing of Node's can still
   * read or write it. A held buffer becomes volatile now, a quarantined span free.
   */
  [kUnexposed](e: Exposure): void {
    this.#unexposedSinceCollection++;
    if (this.#closed) {
      if (--this.#exposedAfterClose === 0) this.#closeRegions();
      return;
    }
    if (e.freed) {
      this.#unquarantine(e);
      return;
    }
    const b = e.buffer;
    if (b === undefined || !b[kHeldNode].listed) return;
    this.#unhold(b);
    if (this.#released.push(b) === 1) queueMicrotask(() => this.#makeReleasedVolatile());
  }

  #makeReleasedVolatile(): void {
    const batch = this.#released.filter((b) => b.state === 'unpinned' && b[kExposure].views === 0);
    this.#released = [];
    if (this.#closed || batch.length === 0) return;
    // Make sure none of them is still counted in a list (a re-pin and re-unpin in between).
    const due = batch.filter((b) => !b[kSoftNode].listed && !b[kHeldNode].listed);
    this.#makeVolatile(due);
    if (performance.now() - this.#criticalAt < CRITICAL_WINDOW_MS) {
      for (const b of due) this.#advise('dontneed', b.offset, b.capacity);
    }
  }

  #softUnpin(b: VolatileBuffer): void {
    if (this.#unpinDelayMs === 0 || this.#strict) {
      this.#makeVolatile([b]);
      return;
    }
    b[kUnpinnedAt] = this.#epoch;
    this.#soft.push(b[kSoftNode]);
    if (this.#stats.softUnpinnedBytes > this.#unpinMaxBytes) this.#shrinkSoft();
    if (this.#unpinDelayMs > 0 && !this.#epochArmed && this.#soft.size !== 0) this.#armEpoch();
  }

  /** Over unpinMaxBytes: the least recently unpinned become volatile, down to 7/8 of the limit (the hot ones stay). */
  #shrinkSoft(): void {
    const batch: VolatileBuffer[] = [];
    let bytes = this.#stats.softUnpinnedBytes;
    const target = this.#unpinMaxBytes - this.#unpinMaxBytes / 8;
    for (let n = this.#soft.head; n !== undefined; n = n.next) {
      const b = n.value;
      if (bytes <= target) break;
      batch.push(b);
      bytes -= b.capacity;
    }
    this.#makeVolatile(batch);
  }

  #flushAll(): number {
    const bytes = this.#stats.softUnpinnedBytes;
    if (this.#soft.size !== 0) this.#makeVolatile(this.#soft.values());
    this.#freePending(Infinity);
    return bytes;
  }

  /**
   * The batch: buffers whose view is still reachable are held back (#hold); every other
   * buffer's canaries first, then MADV_FREE per contiguous run, lowest address first.
   */
  #makeVolatile(due: VolatileBuffer[]): void {
    const batch: VolatileBuffer[] = [];
    for (const b of due) {
      this.#soft.remove(b[kSoftNode]);
      if (b[kExposure].views > 0) this.#hold(b);
      else batch.push(b);
    }
    if (batch.length === 0) return;
    for (const b of batch) b[kCanaries]();
    batch.sort((x, y) => x.offset - y.offset);
    const runs: Array<{ offset: number; length: number }> = [];
    let runStart = batch[0].offset;
    let runEnd = runStart + batch[0].capacity;
    for (let i = 1; i < batch.length; i++) {
      const b = batch[i];
      if (b.offset === runEnd) {
        runEnd += b.capacity;
        continue;
      }
      runs.push({ offset: runStart, length: runEnd - runStart });
      runStart = b.offset;
      runEnd = runStart + b.capacity;
    }
    runs.push({ offset: runStart, length: runEnd - runStart });
    // Several runs: one process_madvise with an iovec (one TLB flush for the batch;
    // bench/c/batch_free.c); one run: a plain madvise. Runs of one region per call.
    if (runs.length === 1) this.#advise('free', runs[0].offset, runs[0].length);
    else {
      const strideBytes = this.#stride * this.#page;
      for (let i = 0; i < runs.length; ) {
        const r = this.#regionOf(runs[i].offset);
        const base = r * strideBytes;
        const local: Array<{ offset: number; length: number }> = [];
        for (; i < runs.length && this.#regionOf(runs[i].offset) === r; i++) local.push({ offset: runs[i].offset - base, length: runs[i].length });
        const m = this.#regions[r] as Mapping;
        if (local.length === 1) m.advise('free', local[0]);
        else m.adviseRanges('free', local);
      }
    }
    const s = this.#stats;
    s.volatileBatches++;
    s.madeVolatile += batch.length;
  }

  /** DONTNEED the still-resident pages of [start, end) (bytes, at most RESIDENCY_CHUNK_PAGES pages). */
  #dropResident(start: number, end: number): void {
    const r = this.#regionOf(start);
    const base = r * this.#stride * this.#page;
    const { pages, resident, offset: localFirst } = (this.#regions[r] as Mapping).residency({ offset: start - base, length: end - start });
    if (resident === 0) return;
    const first = localFirst + base;
    for (let i = 0; i < pages.length; ) {
      if ((pages[i] & 1) === 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < pages.length && (pages[j] & 1) !== 0) j++;
      const from = Math.max(start, first + i * this.#page);
      this.#advise('dontneed', from, Math.min(end, first + j * this.#page) - from);
      i = j;
    }
  }

  /** A buffer's span goes back to the arena: free at once, or into quarantine while a view of it is reachable. */
  #release(b: VolatileBuffer, state: BufferState, e: Exposure): void {
    this.#live.delete(b);
    const s = this.#stats;
    if (state === 'pinned') s.pinnedBytes -= b.capacity;
    else {
      s.unpinnedBytes -= b.capacity;
      if (state === 'unpinned') {
        this.#soft.remove(b[kSoftNode]);
        this.#unhold(b);
        s.softUnpinnedBytes -= b.capacity;
      } else s.volatileBytes -= b.capacity;
    }
    s.buffers--;
    e.buffer = undefined;
    if (e.views > 0 && this.#quarantine) {
      // Not advised, not reused: whatever still holds a view keeps reading this owner's bytes.
      e.freed = true;
      s.quarantinedBytes += b.capacity;
      this.#scheduleCollection();
      this.#quarantinedSpans++;
      return;
    }
    this.#retire(e.start, e.pages, state === 'volatile');
  }

  /** The span [start, start + pages) is free: old content decays (freeDelayMs, decayMs), then the free list. */
  #retire(start: number, pages: number, volatile: boolean): void {
    const s = this.#stats;
    const offset = start * this.#page;
    const bytes = pages * this.#page;
    const now = performance.now();
    if (this.#decayMs === 0 || now - this.#criticalAt < CRITICAL_WINDOW_MS) {
      this.#advise('dontneed', offset, bytes);
      s.decayedBytes += bytes;
    } else {
      // A volatile span is MADV_FREE'd already; the others wait freeDelayMs (as ordinary memory).
      const lazy = volatile || this.#freeDelayMs === 0;
      if (lazy && !volatile) this.#advise('free', offset, bytes);
      this.#dirty.push({ start, pages, at: now, lazy });
      if (!lazy) {
        s.pendingFreeBytes += bytes;
        if (s.pendingFreeBytes > this.#unpinMaxBytes) this.#freePending(Infinity, this.#unpinMaxBytes - this.#unpinMaxBytes / 8);
        else this.#schedule(now + this.#freeDelayMs);
      } else if (this.#decayMs > 0) this.#schedule(now + this.#decayMs);
    }
    s.freeBytes += bytes;
    this.#insertFree(start, pages);
    if (start >= this.#stride) this.#shrinkSoon(now);
  }

  /** The last view of a quarantined span was collected: it is free now. */
  #unquarantine(e: Exposure): void {
    this.#stats.quarantinedBytes -= e.pages * this.#page;
    this.#quarantinedSpans--;
    this.#retire(e.start, e.pages, false);
  }

  /** A span of a grown region went back to the free list: the timer checks whether the region can go. */
  #shrinkSoon(now: number): void {
    this.#shrinkDue = true;
    this.#schedule(now + Math.max(this.#freeDelayMs, 1));
  }

  /** Insert an extent, coalescing with its neighbours. */
  #insertFree(start: number, pages: number): void {
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
    if (prev && prev.start + prev.pages === start) {
      prev.pages += pages;
      if (next && start + pages === next.start) {
        prev.pages += next.pages;
        free.splice(lo, 1);
      }
    } else if (next && start + pages === next.start) {
      next.start = start;
      next.pages += pages;
    } else {
      free.splice(lo, 0, { start, pages });
    }
  }

  /** Forget the dirty parts of [first, end) (pages; being reused). True if any part was dirty. */
  #cutDirty(first: number, end: number): boolean {
    // In place, order kept (oldest first): alloc() runs this on every allocation, and
    // a new array each time was garbage in proportion to the dirty list.
    const dirty = this.#dirty;
    let hit = false;
    let w = 0;
    for (let i = 0; i < dirty.length; i++) {
      const r = dirty[i];
      const rEnd = r.start + r.pages;
      if (rEnd <= first || r.start >= end) {
        dirty[w++] = r;
        continue;
      }
      hit = true;
      if (!r.lazy) this.#stats.pendingFreeBytes -= (Math.min(rEnd, end) - Math.max(r.start, first)) * this.#page;
      if (r.start < first && rEnd > end) {
        // The span is inside r: r keeps its left piece and its right piece follows it.
        const right: DirtyRange = { start: end, pages: rEnd - end, at: r.at, lazy: r.lazy };
        r.pages = first - r.start;
        dirty[w++] = r;
        if (w <= i) dirty[w++] = right;
        else {
          dirty.splice(i + 1, 0, right);
          i++;
          w++;
        }
      } else if (r.start < first) {
        r.pages = first - r.start;
        dirty[w++] = r;
      } else if (rEnd > end) {
        r.pages = rEnd - end;
        r.start = end;
        dirty[w++] = r;
      }
    }
    dirty.length = w;
    return hit;
  }

  /** MADV_FREE pending ranges freed at or before `cutoff` (oldest first), or until pendingFreeBytes <= `downTo`. */
  #freePending(cutoff: number, downTo = -1): void {
    const s = this.#stats;
    if (s.pendingFreeBytes === 0) return;
    for (const r of this.#dirty) {
      if (r.lazy || r.at > cutoff) continue;
      if (s.pendingFreeBytes <= downTo) break;
      this.#advise('free', r.start * this.#page, r.pages * this.#page);
      r.lazy = true;
      s.pendingFreeBytes -= r.pages * this.#page;
      if (this.#decayMs > 0) this.#schedule(r.at + this.#decayMs);
    }
  }

  /** DONTNEED every dirty range freed at or before `cutoff` (a pending one needs no MADV_FREE first). */
  #decay(cutoff: number): number {
    let bytes = 0;
    const kept: DirtyRange[] = [];
    for (const r of this.#dirty) {
      if (r.at > cutoff) {
        kept.push(r);
        continue;
      }
      const length = r.pages * this.#page;
      this.#advise('dontneed', r.start * this.#page, length);
      if (!r.lazy) this.#stats.pendingFreeBytes -= length;
      bytes += length;
    }
    this.#dirty = kept;
    this.#stats.decayedBytes += bytes;
    return bytes;
  }

  /** When the epoch tick was armed; it is due unpinDelayMs / 2 later. */
  #epochAt = 0;

  #epochDue(): number {
    return this.#epochAt + this.#unpinDelayMs / 2;
  }

  #armEpoch(): void {
    this.#epochArmed = true;
    this.#epochAt = performance.now();
    this.#schedule(this.#epochDue());
  }

  #schedule(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, Math.ceil(at - performance.now())) + 1);
    this.#timer.unref();
  }

  /** The one timer: soft unpins due, pending frees due, decays due; then the next deadline. */
  #tick(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closed) return;
    const now = performance.now();
    if (this.#epochArmed && now >= this.#epochDue()) {
      this.#epochArmed = false;
      this.#epoch++;
      const due: VolatileBuffer[] = [];
      for (let n = this.#soft.head; n !== undefined; n = n.next) {
        if (this.#epoch - n.value[kUnpinnedAt] < 3) break;
        due.push(n.value);
      }
      this.#makeVolatile(due);
      this.#epochAt = now;
    }
    this.#freePending(now - this.#freeDelayMs);
    if (this.#decayMs > 0) this.#decay(now - this.#decayMs);
    if (this.#shrinkDue) this.#shrink();
    let next = Infinity;
    if (this.#unpinDelayMs > 0 && this.#soft.size !== 0) {
      if (!this.#epochArmed) {
        this.#epochArmed = true;
        this.#epochAt = now;
      }
      next = this.#epochDue();
    }
    for (const r of this.#dirty) {
      if (!r.lazy) next = Math.min(next, r.at + this.#freeDelayMs);
      else if (this.#decayMs > 0) next = Math.min(next, r.at + this.#decayMs);
    }
    if (next !== Infinity) this.#schedule(next);
  }

  /** Test hook: the free list as [startByte, bytes] pairs (sorted, coalesced). */
  freeSpans(): Array<[number, number]> {
    return this.#free.map((e) => [e.start * this.#page, e.pages * this.#page]);
  }

  /** The name given in the options (its mappings' name; metrics label the arena with it). */
  get name(): string {
    return this.#name;
  }

  /** Start addresses of the regions mapped now (native backend; none on the simulator): metrics label their figures with the name. */
  regionAddresses(): bigint[] {
    const out: bigint[] = [];
    for (const m of this.#regions) if (m !== undefined && m.address !== undefined) out.push(m.address);
    return out;
  }
}
