// VolatileCache: a purgeable key -> bytes cache on a VolatileArena.
//
// get(key, produce) returns a handle whose bytes are pinned; release() (or
// `using`) unpins them. An unpinned entry stays cached; the arena makes it
// volatile once it has stayed unpinned for a while (a hot entry never reaches
// the kernel), and the kernel may then drop it under memory pressure; the next
// get() notices (pin says 'purged') and regenerates it through produce. A byte
// budget and an entry limit evict the least recently used unpinned entries in
// userspace; the kernel is the backstop under real pressure (Chromium's
// discardable memory does the same).
//
// Re-entrancy: produce runs synchronously, so a get() of the same key from inside
// it cannot wait for the value: it throws ERR_CACHE_REENTRANT_GET (other keys are
// fine). peek() of a key being produced finds nothing.
import * as util from 'node:util';
import { illegalConstructor, invalidArgType, invalidArgValue, pagewiseError } from '../errors';
import { validateInteger, validateObject, validateOneOf } from '../validate';
import { type ArenaStats, VolatileArena, type VolatileBuffer } from './arena';
import { kPrivateBytes } from './buffer';
import { List, type ListNode, listNode } from './list';
import { ARENA_OPTION_KEYS, type VolatileArenaOptions } from './options';
import { listenToPressure, type PressureLevel, type PressureSource } from './pressure-source';

export interface VolatileCacheOptions extends Omit<VolatileArenaOptions, 'size' | 'pressure'> {
  /**
   * Userspace budget in bytes (whole pages per entry): over it, the least recently
   * used unpinned entries are evicted. Pinned entries are never evicted, so the
   * cache can exceed the budget while they are held. Default 64 MiB.
   */
  budget?: number;
  /** Most entries kept (least recently used unpinned ones are evicted). Default: no limit. */
  max?: number;
  /** What moderate memory pressure evicts down to, in bytes. Default: half the budget. */
  lowWatermark?: number;
  /** Arena to allocate from (shared with others). Default: a new arena of `arenaSize` bytes, closed by close(). */
  arena?: VolatileArena;
  /** Size of the arena created when none is given. Default: twice the budget (at least 1 MiB). */
  arenaSize?: number;
  /** Memory-pressure signal to follow (see handlePressure()); listened to until close(). */
  pressure?: PressureSource;
}

/** What a get() found. */
export type CacheOutcome = 'hit' | 'miss' | 'purged';

export interface CacheStats {
  /** Entries cached (pinned or not). */
  entries: number;
  /** Bytes of every entry (whole pages). */
  bytes: number;
  /** Bytes of entries currently pinned by a handle. */
  pinnedBytes: number;
  /** get() that found an intact entry. */
  hits: number;
  /** get() without an entry (produce was called). */
  misses: number;
  /** get() whose entry the kernel had dropped (produce was called again). */
  purged: number;
  /** Entries removed by the budget, the entry limit or memory pressure. */
  evictions: number;
  /** The arena's own counters. */
  arena: ArenaStats;
}

/**
 * How to make the bytes of a key:
 * - a function returning them (they are copied into the arena), or
 * - `{ size, fill }`: the cache allocates `size` bytes (a number, or a function of
 *   the key) in the arena and `fill(target, key)` writes the value straight into
 *   them (no copy). `target` is valid only during the call.
 */
export type Producer<K> = ((key: K) => Uint8Array) | FillProducer<K>;

export interface FillProducer<K> {
  size: number | ((key: K) => number);
  fill(target: Uint8Array, key: K): void;
}

interface Entry<K> {
  key: K;
  buffer: VolatileBuffer;
  /** Bytes of the value (the buffer holds at least one byte). */
  length: number;
  /** Live handles. */
  pins: number;
  /** Removed from the map while pinned: freed when the last handle is released. */
  dead: boolean;
  /** Place in the cache's recency list. */
  node: ListNode<Entry<K>>;
}

function newEntry<K>(key: K, buffer: VolatileBuffer, length: number): Entry<K> {
  const entry = { key, buffer, length, pins: 1, dead: false } as Entry<K>;
  entry.node = listNode(entry);
  return entry;
}

// The intrinsic getters: neither a subclass nor a Proxy can lie about them.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayLength = Object.getOwnPropertyDescriptor(typedArrayProto, 'length')?.get as (this: Uint8Array) => number;
const typedArrayBuffer = Object.getOwnPropertyDescriptor(typedArrayProto, 'buffer')?.get as (this: Uint8Array) => ArrayBufferLike;
const typedArraySet = Uint8Array.prototype.set;

/** The value produce returned, checked: a genuine, attached Uint8Array (its true length). */
function producedBytes(value: unknown): [Uint8Array, number] {
  if (!util.types.isUint8Array(value)) {
    // An async produce: its promise is refused, and must not die later as an unhandled rejection.
    if (util.types.isPromise(value)) Promise.prototype.then.call(value, undefined, () => {});
    throw invalidArgType('the value returned by produce', 'an instance of Uint8Array', value);
  }
  const length = typedArrayLength.call(value);
  if (length === 0) {
    try {
      new Uint8Array(typedArrayBuffer.call(value)); // throws on a detached buffer
    } catch {
      throw invalidArgValue('the value returned by produce', value, 'is a view of a detached ArrayBuffer');
    }
  }
  return [value, length];
}

/** Copy what produce returned into the entry; a value detached since it was checked gives a coded error. */
function copyProduced(target: Uint8Array, value: Uint8Array): void {
  try {
    typedArraySet.call(target, value);
  } catch {
    throw invalidArgValue('the value returned by produce', value, 'could not be copied (is it a view of a detached ArrayBuffer?)');
  }
}

/** Every key of VolatileCacheOptions (the arena's, less `size`, plus the cache's own): any other is refused. */
const CACHE_OPTION_KEYS: readonly string[] = Object.freeze([
  ...ARENA_OPTION_KEYS.filter((k) => k !== 'size'),
  'budget',
  'max',
  'lowWatermark',
  'arena',
  'arenaSize',
]);

const CREATE_HANDLE = Symbol('pagewise.createCacheHandle');

/** A pinned entry: its bytes stay valid until release(). */
export class CacheHandle<K> implements Disposable {
  readonly #cache: VolatileCache<K>;
  readonly #entry: Entry<K>;
  #released = false;
  /** What get() found: 'hit' (intact), 'miss' or 'purged' (both regenerated through produce). */
  readonly outcome: CacheOutcome;

  /** @internal */
  constructor(token: typeof CREATE_HANDLE, cache: VolatileCache<K>, entry: Entry<K>, outcome: CacheOutcome) {
    if (token !== CREATE_HANDLE) throw illegalConstructor('use cache.get()');
    this.#cache = cache;
    this.#entry = entry;
    this.outcome = outcome;
  }

  get key(): K {
    return this.#entry.key;
  }

  get released(): boolean {
    return this.#released;
  }

  /** The cached bytes. Throws ERR_HANDLE_RELEASED after release(). */
  get bytes(): Uint8Array {
    if (this.#released) throw pagewiseError('ERR_HANDLE_RELEASED', 'Cannot access the bytes: the cache handle was released');
    const e = this.#entry;
    const bytes = e.buffer.bytes;
    return bytes.length === e.length ? bytes : bytes.subarray(0, e.length);
  }

  /** Unpin (when this is the last handle of the entry). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#cache[kRelease](this.#entry);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

const kRelease = Symbol('pagewise.cacheRelease');

export class VolatileCache<K = string> implements Disposable {
  readonly #arena: VolatileArena;
  readonly #ownsArena: boolean;
  readonly #budget: number;
  readonly #max: number;
  readonly #lowWatermark: number;
  readonly #entries = new Map<K, Entry<K>>();
  /** Every entry, least recently used first (pinned ones too; eviction skips them). */
  readonly #lru = new List<Entry<K>>();
  /** Keys whose produce is running. */
  readonly #producing = new Set<K>();
  readonly #stopListening: (() => void) | undefined;
  #bytes = 0;
  #pinnedBytes = 0;
  #hits = 0;
  #misses = 0;
  #purged = 0;
  #evictions = 0;
  #closed = false;

  constructor(options?: VolatileCacheOptions) {
    const o = validateObject<VolatileCacheOptions>('options', options, CACHE_OPTION_KEYS);
    this.#budget = o.budget === undefined ? 64 * 1024 * 1024 : validateInteger('options.budget', o.budget, 0);
    this.#max = o.max === undefined ? Infinity : validateInteger('options.max', o.max, 1);
    this.#lowWatermark =
      o.lowWatermark === undefined ? Math.floor(this.#budget / 2) : validateInteger('options.lowWatermark', o.lowWatermark, 0);
    if (o.arena !== undefined) {
      if (!(o.arena instanceof VolatileArena)) throw invalidArgType('options.arena', 'an instance of VolatileArena', o.arena);
      // The arena's own options would be silently ignored with an arena given: refuse them.
      for (const key of ARENA_OPTION_KEYS) {
        if (key !== 'pressure' && Object.hasOwn(o, key) && o[key as keyof VolatileCacheOptions] !== undefined) {
          throw invalidArgValue('options', options, `has '${key}', which applies only to the arena the cache makes (options.arena was given: set it on that arena)`);
        }
      }
      if (o.arenaSize !== undefined) {
        throw invalidArgValue('options', options, "has 'arenaSize', which applies only to the arena the cache makes (options.arena was given)");
      }
      this.#arena = o.arena;
      this.#ownsArena = false;
    } else {
      const { budget: _b, arena: _a, max: _m, lowWatermark: _l, pressure: _p, arenaSize, ...arenaOptions } = o;
      const size = arenaSize === undefined ? Math.max(2 * this.#budget, 1024 * 1024) : validateInteger('options.arenaSize', arenaSize, 1);
      this.#arena = new VolatileArena({ name: 'pagewise-cache', ...arenaOptions, size });
      this.#ownsArena = true;
    }
    try {
      this.#stopListening = listenToPressure('options.pressure', o.pressure, (level) => {
        if (!this.#closed) this.handlePressure(level);
      });
    } catch (err) {
      if (this.#ownsArena) this.#arena.close();
      throw err;
    }
  }

  get arena(): VolatileArena {
    return this.#arena;
  }

  get budget(): number {
    return this.#budget;
  }

  /** The entry limit (Infinity when none). */
  get max(): number {
    return this.#max;
  }

  /** Entries cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether an entry is cached for `key` (it may have been dropped by the kernel since; recency unchanged). */
  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** Keys, most recently used first. */
  *keys(): IterableIterator<K> {
    const all = this.#lru.values();
    for (let i = all.length - 1; i >= 0; i--) if (!all[i].dead) yield all[i].key;
  }

  [Symbol.iterator](): IterableIterator<K> {
    return this.keys();
  }

  /**
   * Pinned bytes for `key`: the cached entry if it is there and intact, else what
   * produce makes (see Producer). Release the handle when done (or hold it with
   * `using`). A get() of the same key from inside its produce throws
   * ERR_CACHE_REENTRANT_GET.
   */
  get(key: K, produce: Producer<K>): CacheHandle<K> {
    if (typeof produce !== 'function' && (typeof produce !== 'object' || produce === null || typeof produce.fill !== 'function')) {
      throw invalidArgType('produce', 'of type function or an object with a fill() method', produce);
    }
    if (this.#producing.size !== 0 && this.#producing.has(key)) {
      throw pagewiseError('ERR_CACHE_REENTRANT_GET', 'Cannot get a key from inside its own produce(): the value is not made yet');
    }
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#lru.push(entry.node);
      if (entry.pins > 0) {
        entry.pins++;
        this.#hits++;
        return new CacheHandle(CREATE_HANDLE, this, entry, 'hit');
      }
      const result = entry.buffer.pin();
      this.#pinnedBytes += entry.buffer.capacity;
      entry.pins = 1;
      if (result === 'intact') {
        this.#hits++;
        return new CacheHandle(CREATE_HANDLE, this, entry, 'hit');
      }
      this.#purged++;
      this.#producing.add(key);
      try {
        this.#regenerate(entry, key, produce);
      } catch (err) {
        // No handle will release it: drop the entry now.
        entry.pins = 0;
        this.#pinnedBytes -= entry.buffer.capacity;
        if (entry.dead) entry.buffer.free(); // removed from inside produce
        else this.#remove(entry);
        throw err;
      } finally {
        this.#producing.delete(key);
      }
      return new CacheHandle(CREATE_HANDLE, this, entry, 'purged');
    }
    this.#misses++;
    this.#producing.add(key);
    let created: Entry<K>;
    try {
      created = this.#make(key, produce);
    } finally {
      this.#producing.delete(key);
    }
    this.#entries.set(key, created);
    this.#lru.push(created.node);
    this.#bytes += created.buffer.capacity;
    this.#pinnedBytes += created.buffer.capacity;
    this.#shrink(this.#budget);
    return new CacheHandle(CREATE_HANDLE, this, created, 'miss');
  }

  /**
   * A handle on the cached entry if it is there and intact, without producing,
   * counting a hit or changing its recency; undefined otherwise (an entry found
   * purged is removed). Release it like any handle.
   */
  peek(key: K): CacheHandle<K> | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#producing.has(key)) return undefined;
    if (entry.pins > 0) {
      entry.pins++;
      return new CacheHandle(CREATE_HANDLE, this, entry, 'hit');
    }
    if (entry.buffer.pin() === 'purged') {
      this.#remove(entry); // unpinned by any handle: freed here
      return undefined;
    }
    this.#pinnedBytes += entry.buffer.capacity;
    entry.pins = 1;
    return new CacheHandle(CREATE_HANDLE, this, entry, 'hit');
  }

  /** Remove an entry (an entry held by handles is freed when the last one is released). */
  delete(key: K): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  /** Remove every entry. */
  clear(): void {
    for (const entry of [...this.#entries.values()]) this.#remove(entry);
  }

  /**
   * React to memory pressure (what the `pressure` option calls). 'moderate': evict
   * unpinned entries down to the low watermark, then the arena makes every unpinned
   * span volatile. 'critical': drop every unpinned entry, then the arena returns
   * every unpinned and freed span to the kernel (MADV_DONTNEED).
   */
  handlePressure(level: PressureLevel): void {
    validateOneOf('level', level, ['moderate', 'critical'] as const);
    if (this.#closed) throw pagewiseError('ERR_CACHE_CLOSED', 'Cannot handle memory pressure: the cache is closed');
    this.#shrink(level === 'critical' ? 0 : this.#lowWatermark);
    if (!this.#arena.closed) this.#arena.handlePressure(level);
  }

  get stats(): CacheStats {
    return {
      entries: this.#entries.size,
      bytes: this.#bytes,
      pinnedBytes: this.#pinnedBytes,
      hits: this.#hits,
      misses: this.#misses,
      purged: this.#purged,
      evictions: this.#evictions,
      arena: this.#arena.stats,
    };
  }

  /** Clear, stop listening, and close the arena if the cache created it. Handles still held see ERR_BUFFER_FREED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening?.();
    this.clear();
    if (this.#ownsArena) this.#arena.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  [kRelease](entry: Entry<K>): void {
    if (--entry.pins > 0) return;
    this.#pinnedBytes -= entry.buffer.capacity;
    if (entry.dead || entry.buffer.state === 'freed') {
      entry.buffer.free();
      return;
    }
    entry.buffer.unpin();
    if (this.#bytes > this.#budget) this.#shrink(this.#budget);
  }

  /** A new entry for a miss: allocated and filled, or nothing allocated at all (it throws). */
  #make(key: K, produce: Producer<K>): Entry<K> {
    if (typeof produce === 'function') {
      const [value, length] = producedBytes(produce(key));
      const buffer = this.#alloc(Math.max(1, length));
      try {
        copyProduced(buffer[kPrivateBytes](), value); // not an exposure: the entry can go volatile unread (docs/ARENA.md)
      } catch (err) {
        buffer.free();
        throw err;
      }
      return newEntry(key, buffer, length);
    }
    const length = this.#sizeOf(key, produce);
    const buffer = this.#alloc(Math.max(1, length));
    try {
      const bytes = buffer.bytes;
      produce.fill(length === bytes.length ? bytes : bytes.subarray(0, length), key);
    } catch (err) {
      buffer.free();
      throw err;
    }
    return newEntry(key, buffer, length);
  }

  #sizeOf(key: K, produce: FillProducer<K>): number {
    const size = typeof produce.size === 'function' ? produce.size(key) : produce.size;
    return validateInteger('produce.size', size, 0, Number.MAX_SAFE_INTEGER);
  }

  /** Regenerate a purged entry in place (a new buffer if the size changed). */
  #regenerate(entry: Entry<K>, key: K, produce: Producer<K>): void {
    let value: Uint8Array | undefined;
    let length: number;
    if (typeof produce === 'function') [value, length] = producedBytes(produce(key));
    else length = this.#sizeOf(key, produce);
    if (entry.buffer.state === 'freed') throw pagewiseError('ERR_BUFFER_FREED', 'Cannot regenerate the entry: its arena was closed');
    if (Math.max(1, length) !== entry.buffer.length) {
      const old = entry.buffer;
      const fresh = this.#alloc(Math.max(1, length));
      old.free();
      entry.buffer = fresh;
      const delta = fresh.capacity - old.capacity;
      if (!entry.dead) this.#bytes += delta;
      this.#pinnedBytes += delta;
    }
    entry.length = length;
    if (value !== undefined) {
      copyProduced(entry.buffer[kPrivateBytes]().subarray(0, length), value);
      return;
    }
    const bytes = entry.buffer.bytes;
    (produce as FillProducer<K>).fill(length === bytes.length ? bytes : bytes.subarray(0, length), key);
  }

  /** Allocate, evicting unpinned entries while the arena is full. */
  #alloc(length: number): VolatileBuffer {
    for (;;) {
      try {
        return this.#arena.alloc(length);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_ARENA_FULL' || !this.#evictOne()) throw err;
      }
    }
  }

  /** Evict least recently used unpinned entries until within `bytes` and the entry limit. */
  #shrink(bytes: number): void {
    while ((this.#bytes > bytes || this.#entries.size > this.#max) && this.#evictOne());
  }

  /** Evict the least recently used unpinned entry; false if there is none. */
  #evictOne(): boolean {
    for (let n = this.#lru.head; n !== undefined; n = n.next) {
      const entry = n.value;
      if (entry.pins > 0) continue;
      this.#evictions++;
      this.#remove(entry);
      return true;
    }
    return false;
  }

  #remove(entry: Entry<K>): void {
    if (entry.dead) return;
    entry.dead = true;
    this.#entries.delete(entry.key);
    this.#lru.remove(entry.node);
    this.#bytes -= entry.buffer.capacity;
    if (entry.pins === 0) entry.buffer.free();
  }
}
