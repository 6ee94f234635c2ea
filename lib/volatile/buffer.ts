// VolatileBuffer: one owner's page-granular span of a VolatileArena, and the
// canary protocol that makes purge detection race-free (docs/ARENA.md):
//   make volatile: for every page, save its first 32-bit word and store a
//          non-zero canary there; only after all canaries of the batch are
//          written, MADV_FREE the spans (a write after MADV_FREE cancels it).
//   pin:   for every page, one atomic compare-and-swap canary -> saved word.
//          Success proves the page survived and (being a write) makes it
//          non-discardable again; failure means the page was dropped.
// Checking every canary first and restoring afterwards would race with reclaim:
// never do that.
import { type CodedError, illegalConstructor, pagewiseError } from '../errors';
import type { ArenaStats } from './stats';
import { type ListNode, listNode } from './list';

export type BufferState = 'pinned' | 'unpinned' | 'volatile' | 'freed';

/** What pin() found: every page survived ('intact') or at least one was dropped ('purged'). */
export type PinResult = 'intact' | 'purged';

/** A nonzero canary; CANARY_ALT is used for a page whose saved word equals CANARY (the pin CAS must change the bytes). */
// 32-bit words: Atomics on an Int32Array stay in small integers (a BigInt64Array
// allocates a BigInt per read), and a zero-filled (purged) page fails the CAS all the same.
const CANARY = 0x5057_564f; // "PWVO"
const CANARY_ALT = ~CANARY;
/** For tests: the two canary words. */
export const CANARY_WORDS: readonly [number, number] = [CANARY, CANARY_ALT];

/**
 * What the arena knows about the ArrayBuffers exposed over one owner's span. Node's
 * own async work (a socket write to a slow reader, zlib, fs, crypto, a Writable's
 * buffered chunk) keeps the buffer object it was given reachable until it is done,
 * so "every exposed ArrayBuffer was collected" is the one signal that nothing can
 * still read or write the span (docs/ARENA.md). Until then the span is never made
 * volatile, given canaries, advised or handed to another owner.
 */
export interface Exposure {
  /** The arena (weakly: a registered view must not keep a closed, dropped arena alive). */
  arena: WeakRef<ExposureSink>;
  /** The owner until it is freed (then undefined). */
  buffer: VolatileBuffer | undefined;
  start: number;
  pages: number;
  /** Exposed ArrayBuffers over the span not yet collected. */
  views: number;
  /** The owner freed the span while views were exposed: it waits in quarantine. */
  freed: boolean;
}

// One registration per view (not per unpin): the held value is the span's Exposure,
// never the view itself (that would keep it reachable).
const exposureRegistry = new FinalizationRegistry<Exposure>((e) => {
  if (--e.views === 0) e.arena.deref()?.[kUnexposed](e);
});

/** What buffers call back into (the arena's side of the protocol). */
export interface ArenaCore {
  /** A view of [offset, offset + length) that only its holders keep reachable. */
  view(offset: number, length: number): Uint8Array;
  /** The arena's own view of [offset, offset + length): never exposed, never counted. */
  privateView(offset: number, length: number): Uint8Array;
  page(): number;
  zero(): boolean;
  strict(): boolean;
  stats(): ArenaStats;
  exposure(b: VolatileBuffer): Exposure;
  softUnpin(b: VolatileBuffer): void;
  softPin(b: VolatileBuffer): void;
  release(b: VolatileBuffer, state: BufferState, exposure: Exposure): void;
}

/** The arena's hook: the last exposed view of a span was collected. */
export interface ExposureSink {
  [kUnexposed](e: Exposure): void;
}

export const CREATE = Symbol('pagewise.createVolatileBuffer');
export const kUnexposed = Symbol('pagewise.unexposed');
export const kClosed = Symbol('pagewise.arenaClosed');
export const kCanaries = Symbol('pagewise.canaries');
export const kExposure = Symbol('pagewise.exposure');
export const kUnpinnedAt = Symbol('pagewise.unpinnedAt');
export const kSoftNode = Symbol('pagewise.softNode');
export const kHeldNode = Symbol('pagewise.heldNode');
export const kPrivateBytes = Symbol('pagewise.privateBytes');

/**
 * A page-granular span of a VolatileArena. Pinned: ordinary memory, `bytes` is
 * valid. Unpinned: `bytes` throws; the kernel may drop the pages once the arena
 * has made the span volatile. pin() says whether the content survived.
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
  /** What `bytes` returns: held strongly only while pinned. */
  #bytes: Uint8Array | undefined;
  /**
   * The same view, weakly, across unpin: a re-pin reuses it while it is still alive
   * (a hot hit makes no new ArrayBuffer), and the arena keeps nothing exposed reachable.
   * Made once per view, not per unpin.
   */
  #weak: WeakRef<Uint8Array> | undefined;
  /** Per page: [saved first word, canary written]. */
  #side: Int32Array | undefined;
  /**
   * The arena's own view of the whole span (canaries, the pin CAS, copying a produced
   * value in): never handed out, so holding it keeps nothing exposed. Made once per owner.
   */
  #own: Uint8Array | undefined;
  readonly [kExposure]: Exposure;
  /** The arena's epoch when unpin() ran, for its timer. */
  [kUnpinnedAt] = 0;
  /** This buffer's place in the arena's list of unpinned, not yet volatile buffers . */
  readonly [kSoftNode]: ListNode<VolatileBuffer> = listNode<VolatileBuffer>(this);
  /** Its place in the arena's list of unpinned buffers held back by a reachable view. */
  readonly [kHeldNode]: ListNode<VolatileBuffer> = listNode<VolatileBuffer>(this);

  constructor(token: typeof CREATE, core: ArenaCore, offset: number, length: number, capacity: number) {
    if (token !== CREATE) throw illegalConstructor('use arena.alloc()');
    this.#core = core;
    this.offset = offset;
    this.length = length;
    this.capacity = capacity;
    this[kExposure] = core.exposure(this);
  }

  /** 'pinned', 'unpinned' (not yet volatile), 'volatile' or 'freed'. */
  get state(): BufferState {
    return this.#state;
  }

  get pinned(): boolean {
    return this.#state === 'pinned';
  }

  /**
   * The content (length bytes). Valid only while pinned. A view taken while pinned
   * is never detached and never shows another owner's bytes or canaries: as long as
   * anything (your code, a socket write, zlib, fs) keeps it reachable, the arena keeps
   * the span as it is — not volatile, not reused (stats.heldBytes, quarantinedBytes).
   * Throws ERR_BUFFER_UNPINNED or ERR_BUFFER_FREED when not pinned.
   */
  get bytes(): Uint8Array {
    const bytes = this.#bytes;
    if (bytes !== undefined) return bytes;
    if (this.#state !== 'pinned') throw this.#notPinned('access the bytes of');
    return this.#expose();
  }

  /**
   * Allow the kernel to drop the content. This only records it in userspace: the
   * arena makes the span volatile (canaries, then MADV_FREE, batched) when it has
   * stayed unpinned for unpinDelayMs, when too many bytes are unpinned, on flush(),
   * purge() or memory pressure — and only once every view of it was collected.
   * Until then pin() costs no syscall.
   */
  unpin(): void {
    if (this.#state !== 'pinned') throw this.#notPinned('unpin');
    this.#state = 'unpinned';
    this.#bytes = undefined;
    if (this.#core.strict()) this.#weak = undefined;
    const s = this.#core.stats();
    s.pinnedBytes -= this.capacity;
    s.unpinnedBytes += this.capacity;
    s.softUnpinnedBytes += this.capacity;
    s.unpins++;
    this.#core.softUnpin(this);
  }

  /**
   * Pin again and say whether the content survived: 'intact' (byte-exact) or
   * 'purged' (at least one page was dropped; content unspecified, or zeros if the
   * arena was made with `zero: true`). Either way the buffer is pinned and usable.
   * Never volatile since unpin(): no syscall, no CAS. Volatile: one atomic
   * compare-and-swap per page (canary -> saved word).
   */
  pin(): PinResult {
    const state = this.#state;
    const s = this.#core.stats();
    if (state === 'unpinned') {
      this.#core.softPin(this);
      this.#state = 'pinned';
      s.softUnpinnedBytes -= this.capacity;
      s.unpinnedBytes -= this.capacity;
      s.pinnedBytes += this.capacity;
      s.pins++;
      s.softPins++;
      s.intactPins++;
      return 'intact';
    }
    if (state !== 'volatile') {
      if (state === 'freed') throw this.#notPinned('pin');
      throw pagewiseError('ERR_BUFFER_PINNED', 'Cannot pin: the buffer is already pinned');
    }
    // Volatile: every earlier view was collected (the arena waited for it). The CAS goes
    // through the arena's own view, so a pin exposes nothing until `bytes` is read.
    this.#state = 'pinned';
    const own = this.#ownView();
    const words = new Int32Array(own.buffer, own.byteOffset, this.capacity / 4);
    const page = this.#core.page();
    const pages = this.capacity / page;
    const step = page / 4;
    const side = this.#side as Int32Array;
    let purged = false;
    // Every page gets its CAS even after a failure: each one re-dirties its page
    // (a failed CAS on a dropped page faults in a fresh zero page), so no page of
    // a pinned buffer stays lazily freed.
    for (let p = 0, w = 0; p < pages; p++, w += step) {
      const canary = side[2 * p + 1];
      if (Atomics.compareExchange(words, w, canary, side[2 * p]) !== canary) purged = true;
    }
    s.volatileBytes -= this.capacity;
    s.unpinnedBytes -= this.capacity;
    s.pinnedBytes += this.capacity;
    s.pins++;
    if (purged) {
      s.purgedPins++;
      if (this.#core.zero()) own.fill(0);
      return 'purged';
    }
    s.intactPins++;
    return 'intact';
  }

  /**
   * Return the span to the arena. Nothing is detached: a view still reachable (held by
   * your code or by Node's async work) keeps showing this owner's bytes, and the span
   * waits in quarantine until every view over it was collected. Idempotent.
   */
  free(): void {
    const state = this.#state;
    if (state === 'freed') return;
    this.#state = 'freed';
    this.#bytes = this.#weak = this.#side = this.#own = undefined;
    this.#core.release(this, state, this[kExposure]);
  }

  [Symbol.dispose](): void {
    this.free();
  }

  /** @internal The arena makes this (unpinned, unexposed) buffer volatile: canaries in, through its own view. MADV_FREE follows. */
  [kCanaries](): void {
    const own = this.#ownView();
    const words = new Int32Array(own.buffer, own.byteOffset, this.capacity / 4);
    const page = this.#core.page();
    const pages = this.capacity / page;
    const step = page / 4;
    const side = (this.#side ??= new Int32Array(2 * pages));
    for (let p = 0, w = 0; p < pages; p++, w += step) {
      const saved = words[w];
      const canary = saved === CANARY ? CANARY_ALT : CANARY;
      side[2 * p] = saved;
      side[2 * p + 1] = canary;
      words[w] = canary;
    }
    this.#weak = undefined;
    this.#state = 'volatile';
    const s = this.#core.stats();
    s.softUnpinnedBytes -= this.capacity;
    s.volatileBytes += this.capacity;
  }

  /**
   * @internal The content (length bytes) through the arena's own view, for a write that
   * must not count as exposing the span (the cache copying a produced value in). The
   * caller must not let it escape: nothing waits for it to be collected.
   */
  [kPrivateBytes](): Uint8Array {
    if (this.#state !== 'pinned') throw this.#notPinned('access the bytes of');
    const own = this.#ownView();
    return own.length === this.length ? own : own.subarray(0, this.length);
  }

  #ownView(): Uint8Array {
    // On the simulator a view can lose its memory when the store re-homes an extent: make another.
    if (this.#own === undefined || this.#own.byteLength === 0) this.#own = this.#core.privateView(this.offset, this.capacity);
    return this.#own;
  }

  /** The arena was closed: the buffer is freed (its views stay attached and keep the memory). */
  [kClosed](): void {
    this.#bytes = this.#weak = this.#side = this.#own = undefined;
    this.#state = 'freed';
  }

  /** The view `bytes` returns: the one still alive from before an unpin, or a new one. */
  #expose(): Uint8Array {
    let bytes = this.#weak?.deref();
    if (bytes === undefined) {
      const view = this.#core.view(this.offset, this.capacity);
      bytes = view.length === this.length ? view : view.subarray(0, this.length);
      this.#weak = new WeakRef(bytes);
      const e = this[kExposure];
      e.views++;
      exposureRegistry.register(view.buffer, e);
    }
    this.#bytes = bytes;
    return bytes;
  }

  #notPinned(operation: string): CodedError {
    return this.#state === 'freed'
      ? pagewiseError('ERR_BUFFER_FREED', `Cannot ${operation} the buffer: it was freed`)
      : pagewiseError('ERR_BUFFER_UNPINNED', `Cannot ${operation} the buffer: it is unpinned (pin() it first)`);
  }

  /**
   * Whether the content is still there, without pinning (nothing is written, so a
   * volatile span stays volatile): 'intact' while pinned or unpinned; for a volatile
   * span, whether every page still holds its canary (a dropped page reads back
   * zero); 'freed' after free(). The kernel may drop a page right after.
   */
  probe(): 'intact' | 'purged' | 'freed' {
    const state = this.#state;
    if (state === 'freed') return 'freed';
    if (state !== 'volatile') return 'intact';
    const view = this.#ownView(); // the arena's private view: reading the canaries exposes nothing
    const words = new Int32Array(view.buffer, view.byteOffset, this.capacity / 4);
    const side = this.#side as Int32Array;
    const step = this.#core.page() / 4;
    for (let p = 0, w = 0; w < words.length; p++, w += step) {
      if (Atomics.load(words, w) !== side[2 * p + 1]) return 'purged';
    }
    return 'intact';
  }
}
