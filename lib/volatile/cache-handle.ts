// CacheHandle and the checks of values handed to a VolatileCache.
//
// A handle pins its entry until release(); its `bytes` is a view of the arena
// (of the entry's own span, or of its slot in a slab). A value that was not kept
// (over maxEntrySize, or deleted while it was made) is handed out as a private
// copy. `bytes` throws once released, and after the cache's arena was closed.
//
// A handle garbage-collected without release() is reported once per cache (a
// process warning naming the key, as Node does for an unclosed FileHandle) and
// its pin is dropped. FinalizationRegistry.register costs ~200 ns, more than a
// whole hit, so a handle is registered only if it is still unreleased when the
// next handle is made (then it waits in a batch of 32, checked when full) or when
// the event loop next runs its immediates: most handles are released before the
// next get() and never pay for it — nor for the batch (~15 ns a hit when every
// handle went through it).
import * as util from 'node:util';
import { illegalConstructor, invalidArgType, invalidArgValue, pagewiseError } from '../errors';

/** What get() found: 'hit' (intact), 'miss' or 'purged' (both made by produce), 'stale' (past its ttl, allowStale). */
export type CacheOutcome = 'hit' | 'miss' | 'purged' | 'stale';

/** What the cache does for a handle (implemented by VolatileCache). */
export interface HandleOwner<E> {
  /** The entry's view, made when a handle's bytes are first read (an unread value exposes nothing). */
  viewOf(entry: E): Uint8Array;
  /** The arena was closed: every span in it is freed (a pinned one only then). */
  arenaClosed(): boolean;
  releaseEntry(entry: E): void;
  leaked(entry: E, key: unknown): void;
}

export const CREATE_HANDLE = Symbol('pagewise.createCacheHandle');

interface LeakToken {
  owner: HandleOwner<unknown>;
  entry: unknown;
  key: unknown;
  released: boolean;
}

const leakRegistry = new FinalizationRegistry<LeakToken>((t) => {
  if (!t.released) t.owner.leaked(t.entry, t.key);
});

/**
 * The newest handle holding a pin: strongly held until the next one is made (then moved to
 * the batch if still unreleased) or the check runs. Every handle is held by one of the two
 * until it is released or registered, so none can be collected unnoticed.
 */
let newest: CacheHandle<unknown> | undefined;
/** Handles still unreleased when a newer one was made, not checked yet. */
// Small: the handles in it survive a scavenge (and would be promoted), so few are kept.
const YOUNG_BATCH = 32;
let young: Array<CacheHandle<unknown>> = new Array(YOUNG_BATCH);
let youngCount = 0;
// The rare steps live in functions of their own: the constructor is on every hit's path,
// and a small one is inlined into get() (measured: +13 ns a hit when these lines were in it).
function holdYoung(h: CacheHandle<unknown>): void {
  young[youngCount++] = h;
  if (youngCount === YOUNG_BATCH) CacheHandle.checkYoung();
}
function onImmediate(): void {
  CacheHandle.checkYoung(true);
}
const textDecoder = new TextDecoder();

/** A value of the cache: its bytes stay valid until release(). */
export class CacheHandle<K> implements Disposable {
  readonly #owner: HandleOwner<unknown> | undefined;
  readonly #entry: unknown;
  /** Dropped at release(): a released handle (kept somewhere by mistake) must not keep the span's view reachable. */
  #bytes: Uint8Array | undefined;
  readonly #isString: boolean;
  #released = false;
  #token: LeakToken | undefined;
  readonly key: K;
  /** What get() / fetch() found. */
  readonly outcome: CacheOutcome;

  /**
   * @internal `owner` and `entry` when the handle holds a pin (released through
   * owner.releaseEntry), undefined when `bytes` is a copy.
   */
  constructor(
    token: typeof CREATE_HANDLE,
    key: K,
    bytes: Uint8Array | undefined,
    isString: boolean,
    outcome: CacheOutcome,
    owner?: HandleOwner<unknown>,
    entry?: unknown,
  ) {
    if (token !== CREATE_HANDLE) throw illegalConstructor('use cache.get()');
    this.key = key;
    this.#bytes = bytes;
    this.#isString = isString;
    this.outcome = outcome;
    if (owner !== undefined) {
      this.#owner = owner;
      this.#entry = entry;
      // Bounded: a long synchronous loop that holds its handles checks them in batches.
      const previous = newest;
      newest = this as CacheHandle<unknown>;
      if (previous === undefined) {
        // The first since the last check: the check runs when the event loop next runs its
        // immediates (it clears `newest`, so exactly one is pending while `newest` is set).
        setImmediate(onImmediate).unref();
      } else if (!previous.#released) holdYoung(previous);
    }
  }

  get released(): boolean {
    return this.#released;
  }

  /** The cached bytes. Throws ERR_HANDLE_RELEASED after release(). */
  get bytes(): Uint8Array {
    if (this.#released) throw released();
    if (this.#owner !== undefined && this.#owner.arenaClosed()) throw freed();
    return this.#bytes ?? this.#expose();
  }

  /** The value as it was set: a string for a value set (or produced) as a string, else `bytes`. */
  get value(): string | Uint8Array {
    if (this.#released) throw released();
    if (this.#owner !== undefined && this.#owner.arenaClosed()) throw freed();
    const bytes = this.#bytes ?? this.#expose();
    return this.#isString ? textDecoder.decode(bytes) : bytes;
  }

  /** The entry's view, first read: only now is the span exposed (docs/ARENA.md). */
  #expose(): Uint8Array {
    this.#bytes = (this.#owner as HandleOwner<unknown>).viewOf(this.#entry);
    return this.#bytes;
  }

  /** Unpin (when this is the last handle of the entry). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#bytes = undefined;
    if (this.#token !== undefined) this.#token.released = true;
    if (this.#owner !== undefined) this.#owner.releaseEntry(this.#entry);
  }

  [Symbol.dispose](): void {
    this.release();
  }

  /** @internal Watch the handles of the batch still unreleased (and, at the end of synchronous code, the newest). */
  static checkYoung(withNewest = false): void {
    const n = youngCount;
    const batch = young;
    young = new Array(YOUNG_BATCH);
    youngCount = 0;
    for (let i = 0; i < n; i++) batch[i].#watch();
    if (withNewest && newest !== undefined) {
      newest.#watch();
      newest = undefined;
    }
  }

  #watch(): void {
    if (this.#released || this.#owner === undefined || this.#token !== undefined) return;
    this.#token = { owner: this.#owner, entry: this.#entry, key: this.key, released: false };
    leakRegistry.register(this, this.#token);
  }

}

function freed() {
  return pagewiseError('ERR_BUFFER_FREED', 'Cannot access the bytes: the arena of the cache was closed');
}

function released() {
  return pagewiseError('ERR_HANDLE_RELEASED', 'Cannot access the bytes: the cache handle was released');
}

// The intrinsic getters: neither a subclass nor a Proxy can lie about them.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayLength = Object.getOwnPropertyDescriptor(typedArrayProto, 'length')?.get as (this: Uint8Array) => number;
const typedArrayBuffer = Object.getOwnPropertyDescriptor(typedArrayProto, 'buffer')?.get as (this: Uint8Array) => ArrayBufferLike;
const typedArraySet = Uint8Array.prototype.set;

/**
 * The true length of a checked value's bytes (a subclass may override `length`). Callers take it
 * when they check the value, before any callback runs: one that detaches the value then gives a
 * coded error at the copy, not an entry of the wrong length.
 */
export function lengthOf(bytes: Uint8Array): number {
  return typedArrayLength.call(bytes);
}

/**
 * Check a value given to the cache (returned by produce, fetchMethod, memoMethod or
 * passed to set()): a string (stored as UTF-8) or a genuine, attached Uint8Array.
 * Returns its bytes (no object per value: set() allocates nothing but its entry).
 */
export function checkValue(name: string, value: unknown): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (!util.types.isUint8Array(value)) {
    if (util.types.isPromise(value)) {
      // Refused, and must not die later as an unhandled rejection.
      Promise.prototype.then.call(value, undefined, () => {});
      throw pagewiseError(
        'ERR_CACHE_ASYNC_PRODUCE',
        `${name} is a Promise: get() needs the value synchronously. For an async producer, give the cache a fetchMethod and call cache.fetch(key)`,
      );
    }
    throw invalidArgType(name, 'of type string or an instance of Uint8Array', value);
  }
  if (lengthOf(value) === 0) {
    try {
      new Uint8Array(typedArrayBuffer.call(value)); // throws on a detached buffer
    } catch {
      throw invalidArgValue(name, value, 'is a view of a detached ArrayBuffer');
    }
  }
  return value;
}

/** Copy a checked value into `target` at `offset`; a value detached since it was checked gives a coded error. */
export function copyValue(name: string, target: Uint8Array, value: Uint8Array, offset = 0): void {
  try {
    typedArraySet.call(target, value, offset);
  } catch {
    throw invalidArgValue(name, value, 'could not be copied (is it a view of a detached ArrayBuffer?)');
  }
}

/** A private copy of a checked value (for a handle of a value that is not kept in the arena). */
export function copyOf(name: string, value: Uint8Array, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  copyValue(name, out, value);
  return out;
}
