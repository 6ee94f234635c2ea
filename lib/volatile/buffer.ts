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
import type { ArenaStats } from './arena';
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

/** One owner's lifetime of a span, for the quarantine: freed spans wait for every view to be collected. */
export interface Ticket {
  arena: WeakRef<Quarantining>;
  start: number;
  pages: number;
  views: number;
  freed: boolean;
}

const quarantineRegistry = new FinalizationRegistry<Ticket>((t) => {
  if (--t.views === 0 && t.freed) t.arena.deref()?.[kUnquarantine](t);
});

/** What buffers call back into (the arena's side of the protocol). */
export interface ArenaCore {
  view(offset: number, length: number): Uint8Array;
  detachView(offset: number, view: Uint8Array): void;
  page(): number;
  zero(): boolean;
  strict(): boolean;
  keepViewsOnFree(): boolean;
  mustQuarantine(t: Ticket | undefined): boolean;
  stats(): ArenaStats;
  ticket(b: VolatileBuffer): Ticket | undefined;
  softUnpin(b: VolatileBuffer): void;
  softPin(b: VolatileBuffer): void;
  release(b: VolatileBuffer, state: BufferState, quarantine: Ticket | undefined): void;
}

/** The arena's quarantine hook: the last view of a freed span was collected. */
export interface Quarantining {
  [kUnquarantine](t: Ticket): void;
}

export const CREATE = Symbol('pagewise.createVolatileBuffer');
export const kUnquarantine = Symbol('pagewise.unquarantine');
export const kClosed = Symbol('pagewise.arenaClosed');
export const kCanaries = Symbol('pagewise.canaries');
export const kUnpinnedAt = Symbol('pagewise.unpinnedAt');
export const kSoftNode = Symbol('pagewise.softNode');

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
  /** The view over the whole span, made on first use; kept until the span becomes volatile or is freed. */
  #view: Uint8Array | undefined;
  #bytes: Uint8Array | undefined;
  /** Per page: [saved first word, canary written]. */
  #side: Int32Array | undefined;
  /** Quarantine bookkeeping of this owner (quarantine: true). */
  readonly #ticket: Ticket | undefined;
  /** The arena's epoch when unpin() ran, for its timer. */
  [kUnpinnedAt] = 0;
  /** This buffer's place in the arena's list of unpinned, not yet volatile buffers. */
  readonly [kSoftNode]: ListNode<VolatileBuffer> = listNode<VolatileBuffer>(this);

  constructor(token: typeof CREATE, core: ArenaCore, offset: number, length: number, capacity: number) {
    if (token !== CREATE) throw illegalConstructor('use arena.alloc()');
    this.#core = core;
    this.offset = offset;
    this.length = length;
    this.capacity = capacity;
    this.#ticket = core.ticket(this);
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
   * keeps showing the owner's bytes across an unpin until the arena makes the span
   * volatile (or frees it, or `strict` is set): then it is detached (length 0).
   * Throws ERR_BUFFER_UNPINNED or ERR_BUFFER_FREED when not pinned.
   */
  get bytes(): Uint8Array {
    if (this.#state !== 'pinned') throw this.#notPinned('access the bytes of');
    // Defensive: on the simulator, views over overlapping memory share fate (a documented
    // divergence), so a pinned buffer whose view was detached from elsewhere gets a new one.
    if (this.#view === undefined || this.#view.byteLength === 0) this.#attach();
    return this.#bytes as Uint8Array;
  }

  /**
   * Allow the kernel to drop the content. This only records it in userspace: the
   * arena makes the span volatile (canaries, then MADV_FREE, batched) when it has
   * stayed unpinned for unpinDelayMs, when too many bytes are unpinned, on flush(),
   * purge() or memory pressure. Until then pin() costs no syscall.
   */
  unpin(): void {
    if (this.#state !== 'pinned') throw this.#notPinned('unpin');
    this.#state = 'unpinned';
    if (this.#core.strict()) this.#detach();
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
    s.volatileBytes -= this.capacity;
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

  /**
   * Return the span to the arena. Every view is detached — except when the span goes
   * into quarantine (see the `quarantine` option) on the native backend: then views
   * stay attached (Node's zlib aborts the process if its input is detached
   * mid-stream) and the span is not reused while any of them is alive.
   * Idempotent.
   */
  free(): void {
    const state = this.#state;
    if (state === 'freed') return;
    const quarantine = this.#core.mustQuarantine(this.#ticket);
    if (quarantine && this.#core.keepViewsOnFree()) this.#view = this.#bytes = undefined;
    else this.#detach();
    this.#state = 'freed';
    this.#side = undefined;
    this.#core.release(this, state, quarantine ? this.#ticket : undefined);
  }

  [Symbol.dispose](): void {
    this.free();
  }

  /** @internal The arena makes this (unpinned) buffer volatile: canaries in, view detached. MADV_FREE follows. */
  [kCanaries](): void {
    const view = this.#view !== undefined && this.#view.byteLength !== 0 ? this.#view : this.#attach();
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
    this.#state = 'volatile';
    const s = this.#core.stats();
    s.softUnpinnedBytes -= this.capacity;
    s.volatileBytes += this.capacity;
  }

  /** The arena was closed: the mapping is gone (and detached every view). */
  [kClosed](): void {
    this.#view = this.#bytes = this.#side = undefined;
    this.#state = 'freed';
  }

  #attach(): Uint8Array {
    const view = this.#core.view(this.offset, this.capacity);
    this.#view = view;
    this.#bytes = view.length === this.length ? view : view.subarray(0, this.length);
    const t = this.#ticket;
    if (t !== undefined) {
      t.views++;
      quarantineRegistry.register(view.buffer, t);
    }
    return view;
  }

  #detach(): void {
    const view = this.#view;
    if (view === undefined) return;
    if (view.byteLength !== 0) this.#core.detachView(this.offset, view);
    this.#view = this.#bytes = undefined;
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
    const view = this.#core.view(this.offset, this.capacity); // read only, dropped at once
    const words = new Int32Array(view.buffer, view.byteOffset, this.capacity / 4);
    const side = this.#side as Int32Array;
    const step = this.#core.page() / 4;
    for (let p = 0, w = 0; w < words.length; p++, w += step) {
      if (Atomics.load(words, w) !== side[2 * p + 1]) return 'purged';
    }
    return 'intact';
  }
}
