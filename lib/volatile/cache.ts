// VolatileCache: a purgeable key -> bytes cache on a VolatileArena, with lru-cache's
// habits (set/get/fetch/memo, ttl, dispose, dump/load) kept volatile.
// (Over 600 lines: the hit path, the hot set and the entries share the cache's private
// state, which a split would expose or slow down; types, handles, fetch() and slabs live
// in ./cache-types.ts, ./cache-handle.ts, ./cache-fetch.ts and ./slab.ts.)
//
// Values of half a page or more get their own span; smaller ones share pages (slabs,
// ./slab.ts). get() returns a handle whose `bytes` is a view of the entry; the entry
// stays pinned until release() (or `using`). A released entry stays in the cache's
// hot set (its span pinned, its view kept) until it has gone unused for 50-75 ms, so
// a hot hit is a Map lookup, a stamp and a handle; then its span is unpinned and the
// arena makes it volatile on its own schedule, the kernel may drop it under memory
// pressure, and the next get() notices (the canaries say 'purged') and makes it
// again. A byte budget and an entry limit evict the least recently used unpinned
// entries in userspace; the kernel is the backstop under real pressure (Chromium's
// discardable memory does the same).
//
// Re-entrancy: produce runs synchronously, so a get() of the same key from inside
// it cannot wait for the value: it throws ERR_CACHE_REENTRANT_GET (other keys are
// fine). peek() of a key being produced finds nothing. delete()/clear() from
// inside produce are honoured: the value is handed out once and not kept.
import { invalidArgType, invalidArgValue, pagewiseError } from '../errors';
import { effectiveMemoryLimit } from '../cgroup';
import { validateBoolean, validateInteger, validateObject, validateOneOf } from '../validate';
import { VolatileArena, type VolatileBuffer } from './arena';
import { kPrivateBytes } from './buffer';
import { CacheHandle, type CacheOutcome, checkValue, copyOf, copyValue, CREATE_HANDLE, type HandleOwner, lengthOf } from './cache-handle';
import { type FetchOptions, Fetches } from './cache-fetch';
import { List, type ListNode } from './list';
import { ARENA_OPTION_KEYS, DEFAULT_UNPIN_SHARE } from './options';
import { listenToPressure, type PressureLevel } from './pressure-source';
import type {
  CacheEntryInfo,
  CacheStats,
  Disposer,
  DisposeReason,
  Entry,
  FillProducer,
  GetOptions,
  Producer,
  SetOptions,
  VolatileCacheOptions,
} from './cache-types';
import { ownUnit, type Slab, SlabPool, type Unit } from './slab';

export { CacheHandle, type CacheOutcome } from './cache-handle';
export type { FetchOptions, FetchMethod } from './cache-fetch';

export type * from './cache-types';

/** A unit stays pinned until it has gone unused for this many sweep ticks (a hot entry never goes through the arena). */
const SWEEP_MS = 25;
const IDLE_TICKS = 2;

const OWN_KEYS = ['budget', 'max', 'lowWatermark', 'arena', 'arenaSize', 'ttl', 'allowStale', 'updateAgeOnGet', 'maxEntrySize', 'dispose', 'disposeAfter', 'fetchMethod', 'memoMethod'] as const;
/** Every key of VolatileCacheOptions (the arena's, less `size`, plus the cache's own): any other is refused. */
const CACHE_OPTION_KEYS: readonly string[] = Object.freeze([...ARENA_OPTION_KEYS.filter((k) => k !== 'size'), ...OWN_KEYS]);

/** Bytes an entry counts against the budget: its slot, or its own span's whole pages. */
function footprint(e: Entry<unknown>): number {
  return e.unit.slotSize || e.unit.buffer.capacity;
}

function optionalFunction<T>(name: string, v: T | undefined): T | undefined {
  if (v !== undefined && typeof v !== 'function') throw invalidArgType(name, 'of type function', v);
  return v;
}
function optionalBoolean(name: string, v: unknown): boolean {
  return v === undefined ? false : validateBoolean(name, v);
}

export class VolatileCache<K = string> implements Disposable, HandleOwner<Entry<K>> {
  readonly #arena: VolatileArena;
  readonly #ownsArena: boolean;
  readonly #name: string | undefined;
  readonly #budget: number;
  readonly #max: number;
  readonly #lowWatermark: number;
  readonly #ttl: number;
  readonly #allowStale: boolean;
  readonly #updateAgeOnGet: boolean;
  readonly #maxEntrySize: number;
  readonly #dispose: Disposer<K> | undefined;
  readonly #disposeAfter: Disposer<K> | undefined;
  readonly #memoMethod: VolatileCacheOptions<K>['memoMethod'];
  readonly #slabs: SlabPool;
  readonly #fetches: Fetches<K>;
  readonly #entries = new Map<K, Entry<K>>();
  /**
   * Every entry in the order it was placed (pinned ones too; eviction skips them). A
   * use stamps the entry instead of moving it, so a hit touches no other entry; eviction
   * moves entries used since they were placed to the end, then takes the first unused one.
   */
  readonly #lru = new List<Entry<K>>();
  #clock = 0;
  /** Keys whose produce is running, and whether a delete()/clear() cancelled keeping the value. */
  readonly #producing = new Map<K, boolean>();
  readonly #stopListening: (() => void) | undefined;
  #disposed: Array<[K, DisposeReason]> = [];
  /** Hot units (pinned in the arena by this cache), least recently pinned first. */
  readonly #hot = new List<Unit>();
  /** Most bytes kept hot (over it, the first pinned units without handles are unpinned at once). */
  readonly #idleMax: number;
  #tick = 0;
  /** The use clock when each of the last IDLE_TICKS + 1 ticks began (ring): "used since tick t" is used >= #tickStart[t % n]. */
  readonly #tickStart: number[] = new Array(IDLE_TICKS + 1).fill(0);
  #sweeper: NodeJS.Timeout | undefined;
  /** Bytes of hot units (pinned in the arena by this cache). */
  #hotBytes = 0;

  #bytes = 0;
  #valueBytes = 0;
    #handles = 0;
  #leaked = 0;
  #hits = 0;
  #misses = 0;
  #purged = 0;
  #evictions = 0;
  #closed = false;

  constructor(options?: VolatileCacheOptions<K>) {
    const o = validateObject<VolatileCacheOptions<K>>('options', options, CACHE_OPTION_KEYS);
    this.#budget = o.budget === undefined ? 64 * 1024 * 1024 : validateInteger('options.budget', o.budget, 0);
    this.#max = o.max === undefined ? Infinity : validateInteger('options.max', o.max, 1);
    this.#lowWatermark =
      o.lowWatermark === undefined ? Math.floor(this.#budget / 2) : validateInteger('options.lowWatermark', o.lowWatermark, 0);
    this.#ttl = o.ttl === undefined ? 0 : validateInteger('options.ttl', o.ttl, 0);
    this.#allowStale = optionalBoolean('options.allowStale', o.allowStale);
    this.#updateAgeOnGet = optionalBoolean('options.updateAgeOnGet', o.updateAgeOnGet);
    this.#maxEntrySize = o.maxEntrySize === undefined ? Infinity : validateInteger('options.maxEntrySize', o.maxEntrySize, 0);
    this.#dispose = optionalFunction('options.dispose', o.dispose);
    this.#disposeAfter = optionalFunction('options.disposeAfter', o.disposeAfter);
    this.#memoMethod = optionalFunction('options.memoMethod', o.memoMethod);
    const fetchMethod = optionalFunction('options.fetchMethod', o.fetchMethod);
    if (o.name !== undefined && typeof o.name !== 'string') throw invalidArgType('options.name', 'of type string', o.name);
    this.#name = o.name;
    if (o.arena !== undefined) {
      if (!(o.arena instanceof VolatileArena)) throw invalidArgType('options.arena', 'an instance of VolatileArena', o.arena);
      // The arena's own options would be silently ignored with an arena given: refuse them.
      for (const key of [...ARENA_OPTION_KEYS, 'arenaSize']) {
        if (key !== 'pressure' && key !== 'name' && Object.hasOwn(o, key) && o[key as keyof VolatileCacheOptions<K>] !== undefined) {
          throw invalidArgValue('options', options, `has '${key}', which applies only to the arena the cache makes (options.arena was given: set it on that arena)`);
        }
      }
      this.#arena = o.arena;
      this.#ownsArena = false;
    } else {
      const arenaOptions: Record<string, unknown> = {};
      for (const key of ARENA_OPTION_KEYS) if (key !== 'pressure' && o[key as keyof typeof o] !== undefined) arenaOptions[key] = o[key as keyof typeof o];
      const size = o.arenaSize === undefined ? Math.max(2 * this.#budget, 1024 * 1024) : validateInteger('options.arenaSize', o.arenaSize, 1);
      this.#arena = new VolatileArena({ name: 'pagewise-cache', ...arenaOptions, size });
      this.#ownsArena = true;
    }
    this.#slabs = new SlabPool(this.#arena.pageSize);
    // The hot set is memory the kernel cannot take, like the arena's unpinned-but-not-volatile
    // spans: at most half the arena's bound on those (1/16 of the memory limit by default), none
    // when the arena makes unpinned spans volatile at once (unpinDelayMs: 0).
    const unpinMax = o.unpinMaxBytes ?? Math.floor(effectiveMemoryLimit() * DEFAULT_UNPIN_SHARE);
    this.#idleMax = o.unpinDelayMs === 0 ? 0 : Math.floor(unpinMax / 2);
    this.#fetches = new Fetches<K>(this as never, fetchMethod);
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

  /** The name given in the options (metrics label the cache with it), if any. */
  get name(): string | undefined {
    return this.#name;
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

  /**
   * Whether an intact, fresh entry is cached for `key` (recency unchanged). A volatile
   * entry is probed without pinning it: false if the kernel dropped it.
   */
  has(key: K): boolean {
    const e = this.#entries.get(key);
    if (e === undefined || (e.ttl !== 0 && this.#stale(e))) return false;
    const u = e.unit;
    return e.epoch === u.epoch && (u.hot || u.buffer.probe() === 'intact');
  }

  /** Keys, most recently used first. */
  *keys(): IterableIterator<K> {
    for (const e of this.#recent()) yield e.key;
  }

  /** [key, value] pairs, most recently used first: each value is a copy (a string if it was set as one); dropped entries are skipped. */
  *entries(): IterableIterator<[K, string | Uint8Array]> {
    for (const e of this.#recent()) {
      const v = this.#copy(e);
      if (v !== undefined) yield [e.key, v];
    }
  }

  /** Values (copies), most recently used first. */
  *values(): IterableIterator<string | Uint8Array> {
    for (const [, v] of this.entries()) yield v;
  }

  /** fn(value, key, cache) for every fresh, intact entry, most recently used first (values are copies). */
  forEach(fn: (value: string | Uint8Array, key: K, cache: this) => unknown, thisArg?: unknown): void {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    for (const e of this.#recent()) {
      if (e.ttl !== 0 && this.#stale(e)) continue;
      const v = this.#copy(e);
      if (v !== undefined) fn.call(thisArg ?? this, v, e.key, this);
    }
  }

  [Symbol.iterator](): IterableIterator<K> {
    return this.keys();
  }

  /**
   * Pinned bytes for `key`: the cached entry if it is there, intact and fresh, else
   * what produce makes (see Producer). Without produce: the entry's handle, or
   * undefined. Release the handle when done (or hold it with `using`). A get() of the
   * same key from inside its produce throws ERR_CACHE_REENTRANT_GET.
   */
  get(key: K, produce: Producer<K>, options?: GetOptions): CacheHandle<K>;
  get(key: K, options?: GetOptions): CacheHandle<K> | undefined;
  get(key: K, produce?: Producer<K> | GetOptions, options?: GetOptions): CacheHandle<K> | undefined {
    if (this.#producing.size !== 0 && this.#producing.has(key)) throw reentrantGet();
    // The hot path: an entry without a ttl whose view is kept (its unit is hot). A Map
    // lookup, a few counters and a handle: no arena call. Everything else is in #get, so
    // that this stays small enough for V8 to inline into the caller with the handle's
    // constructor, bytes and release() (measured: ~10 ns a hit when it was not).
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.ttl === 0 && (produce === undefined || typeof produce === 'function')) {
      const view = entry.view;
      if (view !== undefined) {
        entry.used = ++this.#clock;
        entry.pins++;
        this.#handles++;
        this.#hits++;
        return new CacheHandle(CREATE_HANDLE, key, view, entry.isString, 'hit', this, entry);
      }
    }
    return this.#get(key, produce, options, entry, 'miss');
  }

  #get(
    key: K,
    produce: Producer<K> | GetOptions | undefined,
    options: GetOptions | undefined,
    entry: Entry<K> | undefined,
    outcome: CacheOutcome,
  ): CacheHandle<K> | undefined {
    let producer: Producer<K> | undefined;
    if (typeof produce === 'function' || (typeof produce === 'object' && produce !== null && ('fill' in produce || 'size' in produce))) {
      if (typeof produce !== 'function' && typeof (produce as FillProducer<K>).fill !== 'function') {
        throw invalidArgType('produce', 'of type function or an object with a fill() method', produce);
      }
      producer = produce as Producer<K>;
    } else if (produce !== undefined) {
      if (typeof produce !== 'object' || produce === null) throw invalidArgType('produce', 'of type function or an object with a fill() method', produce);
      options = produce;
    }
    if (entry !== undefined) {
      if (entry.ttl !== 0 && this.#stale(entry)) {
        if (producer === undefined && (options?.allowStale ?? this.#allowStale)) {
          const h = this.#acquire(entry, 'stale');
          this.#remove(entry, 'expire');
          this.#flushDisposed();
          return h;
        }
        this.#remove(entry, 'expire');
      } else {
        entry.used = ++this.#clock;
        if (entry.ttl !== 0 && (options?.updateAgeOnGet ?? this.#updateAgeOnGet)) entry.start = performance.now();
        const h = this.#acquire(entry, 'hit');
        if (h !== undefined) {
          this.#hits++;
          return h;
        }
        outcome = 'purged';
        this.#remove(entry, 'evict');
      }
    }
    if (producer === undefined) {
      this.#flushDisposed();
      return undefined;
    }
    if (outcome === 'purged') this.#purged++;
    else this.#misses++;
    try {
      return this.#produce(key, producer, outcome);
    } finally {
      this.#flushDisposed();
    }
  }

  /** Store a value (a string or bytes, copied into the arena); `undefined` deletes the key. Returns the cache. */
  set(key: K, value: string | Uint8Array | undefined, options?: SetOptions): this {
    if (value === undefined) {
      this.delete(key);
      return this;
    }
    const bytes = checkValue('value', value);
    try {
      this.#store(key, bytes, lengthOf(bytes), typeof value === 'string', options, null);
    } finally {
      this.#flushDisposed();
    }
    return this;
  }

  /**
   * The value for `key`, produced by the fetchMethod option when missing (or dropped,
   * or stale): concurrent fetches of one key run it once. Resolves to a handle (release
   * it), or undefined when fetchMethod resolved to undefined. See FetchOptions.
   */
  fetch(key: K, options?: FetchOptions): Promise<CacheHandle<K> | undefined> {
    return this.#fetches.fetch(key, options);
  }

  /** get(key, memoMethod) with the memoMethod option: a handle on the cached or newly made value. */
  memo(key: K, options?: { context?: unknown; forceRefresh?: boolean }): CacheHandle<K> {
    const memoMethod = this.#memoMethod;
    if (memoMethod === undefined) throw pagewiseError('ERR_CACHE_NO_MEMO_METHOD', 'Cannot memo(): the cache was made without a memoMethod option');
    if (options?.forceRefresh === true) this.delete(key);
    const context = options?.context;
    return this.get(key, (k) => memoMethod(k, undefined, { context }));
  }

  /**
   * A handle on the cached entry if it is there, intact and fresh (allowStale: stale
   * too), without producing, counting a hit or changing its recency; undefined
   * otherwise (an entry found purged is removed).
   */
  peek(key: K, options?: { allowStale?: boolean }): CacheHandle<K> | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#producing.has(key)) return undefined;
    const stale = entry.ttl !== 0 && this.#stale(entry);
    if (stale && !(options?.allowStale ?? this.#allowStale)) return undefined;
    const h = this.#acquire(entry, stale ? 'stale' : 'hit');
    if (h === undefined) {
      this.#remove(entry, 'evict');
      this.#flushDisposed();
    }
    return h;
  }

  /** Milliseconds left of the entry's ttl: Infinity without one, 0 when there is no entry (negative once stale). */
  getRemainingTTL(key: K): number {
    const e = this.#entries.get(key);
    if (e === undefined) return 0;
    return e.ttl === 0 ? Infinity : e.start + e.ttl - performance.now();
  }

  /** Remove every stale entry; whether any was removed. */
  purgeStale(): boolean {
    let any = false;
    for (const e of [...this.#entries.values()]) {
      if (e.ttl !== 0 && this.#stale(e)) {
        this.#remove(e, 'expire');
        any = true;
      }
    }
    this.#flushDisposed();
    return any;
  }

  /** { value (a copy), ttl (remaining ms, when it has one), start (Date.now() time), size }, or undefined without an intact entry. */
  info(key: K): CacheEntryInfo | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    const value = this.#copy(e);
    if (value === undefined) return undefined;
    const info: CacheEntryInfo = { value, size: e.length };
    if (e.ttl !== 0) {
      info.ttl = e.start + e.ttl - performance.now();
      info.start = Date.now();
    }
    return info;
  }

  /** Every intact entry as [key, { value (a copy), ttl, start (Date.now() time), size }], for load(). */
  dump(): Array<[K, CacheEntryInfo]> {
    const out: Array<[K, CacheEntryInfo]> = [];
    const offset = Date.now() - performance.now();
    for (const e of this.#recent()) {
      const value = this.#copy(e);
      if (value === undefined) continue;
      const info: CacheEntryInfo = { value, size: e.length };
      if (e.ttl !== 0) {
        info.ttl = e.ttl;
        info.start = e.start + offset;
      }
      out.push([e.key, info]);
    }
    return out;
  }

  /** Clear, then set every [key, entry] of a dump() (least recently used last in the dump, so loaded first). */
  load(entries: Array<[K, CacheEntryInfo]>): void {
    if (!Array.isArray(entries)) throw invalidArgType('entries', 'an instance of Array', entries);
    this.clear();
    const offset = Date.now() - performance.now();
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, info] = entries[i];
      const ttl = info.ttl ?? 0;
      this.set(key, info.value, ttl === 0 ? undefined : { ttl, start: (info.start ?? Date.now()) - offset });
    }
  }

  /** Remove an entry (an entry held by handles is freed when the last one is released). An in-flight fetch of it is aborted. */
  delete(key: K): boolean {
    if (this.#producing.has(key)) this.#producing.set(key, true);
    const aborted = this.#fetches.abort(key, 'delete');
    const entry = this.#entries.get(key);
    if (entry === undefined) return aborted;
    this.#remove(entry, 'delete');
    this.#flushDisposed();
    return true;
  }

  /** Remove every entry (and abort every fetch in flight). */
  clear(): void {
    for (const key of this.#producing.keys()) this.#producing.set(key, true);
    this.#fetches.abortAll();
    for (const entry of [...this.#entries.values()]) this.#remove(entry, 'delete');
    this.#flushDisposed();
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
    this.#flushDisposed();
    this.#coolAll();
    if (!this.#arena.closed) this.#arena.handlePressure(level);
  }

  /**
   * Unpin every entry no handle holds (they otherwise stay pinned for 25-50 ms after
   * their last release, so a hot entry costs no arena call), then make every unpinned
   * span of the arena volatile (arena.flush()). Returns the bytes made volatile.
   */
  flush(): number {
    this.#coolAll();
    return this.#arena.closed ? 0 : this.#arena.flush();
  }

  get stats(): CacheStats {
    return {
      entries: this.#entries.size,
      bytes: this.#bytes,
      valueBytes: this.#valueBytes,
      slabPages: this.#slabs.pages,
      pinnedBytes: this.#hotBytes,
      heldBytes: this.#held(),
      handles: this.#handles,
      leakedHandles: this.#leaked,
      hits: this.#hits,
      misses: this.#misses,
      purged: this.#purged,
      evictions: this.#evictions,
      arena: this.#arena.stats,
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Clear, stop listening, and close the arena if the cache created it. Handles still held see ERR_BUFFER_FREED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening?.();
    this.clear();
    if (this.#sweeper !== undefined) clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
    if (this.#ownsArena) this.#arena.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal A handle was released. */
  releaseEntry(entry: Entry<K>): void {
    this.#handles--;
    if (--entry.pins === 0 && entry.dead) this.#freeValue(entry);
    else if (this.#idleMax === 0 && entry.pins === 0) this.#cool(entry.unit, Infinity);
    else if (this.#bytes > this.#budget) {
      this.#shrink(this.#budget);
      this.#flushDisposed();
    }
  }

  /** @internal A handle was garbage-collected without release(): report it once, and drop its pin. */
  leaked(entry: Entry<K>, key: unknown): void {
    if (this.#closed) return; // close() ended every handle
    if (this.#leaked++ === 0) {
      process.emitWarning(
        `A VolatileCache handle (key ${JSON.stringify(String(key))}${this.#name ? ` of cache '${this.#name}'` : ''}) was garbage-collected without release(): its entry stayed pinned until then. Call handle.release() (or hold it with \`using\`). Further leaks are counted in cache.stats.leakedHandles.`,
        { code: 'PAGEWISE_CACHE_HANDLE_LEAK', type: 'Warning' },
      );
    }
    this.releaseEntry(entry);
  }

  /** @internal For fetch(): store a value; take() hands out handles on it (the first one pinned by the store), done() ends. */
  storeForFetch(key: K, value: unknown, options: SetOptions | undefined): { take(outcome: CacheOutcome): CacheHandle<K>; done(): void } {
    const bytes = checkValue('the value fetchMethod resolved to', value);
    const length = lengthOf(bytes);
    const isString = typeof value === 'string';
    let first = this.#store(key, bytes, length, isString, options, 'miss');
    this.#flushDisposed();
    return {
      take: (outcome) => {
        if (first !== undefined) {
          const h = first;
          first = undefined;
          return h;
        }
        const entry = this.#entries.get(key);
        const h = entry === undefined ? undefined : this.#acquire(entry, outcome);
        return h ?? new CacheHandle(CREATE_HANDLE, key, copyOf('value', bytes, length), isString, outcome);
      },
      done: () => first?.release(),
    };
  }

  /** @internal For fetch(): the entry's state without producing. */
  lookup(key: K, options: GetOptions | undefined): { handle: CacheHandle<K> | undefined; stale: boolean } {
    const entry = this.#entries.get(key);
    if (entry === undefined) return { handle: undefined, stale: false };
    const stale = entry.ttl !== 0 && this.#stale(entry);
    if (stale && !(options?.allowStale ?? this.#allowStale)) return { handle: undefined, stale: true };
    if (!stale) {
      entry.used = ++this.#clock;
      if (entry.ttl !== 0 && (options?.updateAgeOnGet ?? this.#updateAgeOnGet)) entry.start = performance.now();
    }
    const handle = this.#acquire(entry, stale ? 'stale' : 'hit');
    if (handle === undefined) {
      this.#purged++;
      this.#remove(entry, 'evict');
      this.#flushDisposed();
    } else if (!stale) this.#hits++;
    return { handle, stale };
  }

  /** @internal For fetch(): a fetch that resolved to undefined deletes the key (lru-cache's 'fetch' reason). */
  dropForFetch(key: K): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#remove(entry, 'fetch');
    this.#misses++;
    this.#flushDisposed();
  }

  /** A handle on an entry, or undefined when the kernel dropped it (the entry is left for the caller to remove). */
  #acquire(entry: Entry<K>, outcome: CacheOutcome): CacheHandle<K> | undefined {
    if (!this.#warm(entry)) return undefined;
    entry.pins++; // (recency is the caller's: peek() and the iterators leave it)
    this.#handles++;
    return new CacheHandle(CREATE_HANDLE, entry.key, entry.view, entry.isString, outcome, this, entry);
  }

  /** Pin the entry's unit unless it is hot; whether the entry's value is intact. */
  #warm(entry: Entry<K>): boolean {
    const u = entry.unit;
    if (!u.hot) {
      if (u.buffer.state === 'freed') return false; // the arena was closed
      if (u.buffer.pin() === 'purged') u.epoch++;
      this.#heat(u);
    }
    return entry.epoch === u.epoch;
  }

  /** A unit is pinned (new, or pinned again): list it hot, within the idle bound. */
  #heat(u: Unit): void {
    u.hot = true;
    this.#hotBytes += u.buffer.capacity;
    this.#hot.push(u.node);
    if (this.#sweeper === undefined && !this.#closed) this.#sweeper = setTimeout(this.#sweep, SWEEP_MS).unref();
    u.since = this.#clock;
    // Over the bound: a clock (second chance) from the first listed: a unit used since it was
    // listed goes to the end, the first one unused is unpinned. O(1) amortized.
    for (let steps = this.#hot.size; steps > 0 && this.#hotBytes > this.#idleMax; steps--) {
      const v = (this.#hot.head as ListNode<Unit>).value;
      if (v !== u && this.#cool(v, v.since + 1)) continue;
      v.since = this.#clock;
      this.#hot.push(v.node);
    }
  }

  /** The entry's view (its unit is hot), kept until the unit is unpinned. */
  #view(entry: Entry<K>): Uint8Array {
    const u = entry.unit;
    const bytes = u.buffer.bytes;
    const at = entry.slot * u.slotSize;
    const view = at === 0 && entry.length === bytes.length ? bytes : bytes.subarray(at, at + entry.length);
    entry.view = view;
    return view;
  }

  /** Unpin a hot unit unless a handle holds a value on it or one was used at or after `usedSince`; whether it was. */
  #cool(u: Unit, usedSince: number): boolean {
    // Indexed loops: a sweep cools every unit once, too few calls for V8 to optimize
    // away a for-of's iterator, and those iterators filled the young generation.
    const values = u.values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined && (v.pins > 0 || v.used >= usedSince)) return false;
    }
    this.#hot.remove(u.node);
    u.hot = false;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) v.view = undefined;
    }
    this.#hotBytes -= u.buffer.capacity;
    if (u.buffer.state === 'pinned') u.buffer.unpin();
    return true;
  }

  /** Bytes of units a handle holds a value on. */
  #held(): number {
    let bytes = 0;
    for (let n = this.#hot.head; n !== undefined; n = n.next) {
      if (n.value.values.some((v) => v !== undefined && v.pins > 0)) bytes += n.value.buffer.capacity;
    }
    return bytes;
  }

  /** Unpin every hot unit no handle holds. */
  #coolAll(): void {
    for (let n = this.#hot.head; n !== undefined; ) {
      const next = n.next;
      this.#cool(n.value, Infinity);
      n = next;
    }
  }

  /** The timer: unpin units unused for IDLE_TICKS ticks (they then go volatile on the arena's schedule). */
  readonly #sweep = (): void => {
    this.#sweeper = undefined;
    const tick = ++this.#tick;
    this.#tickStart[tick % (IDLE_TICKS + 1)] = this.#clock + 1;
    // Unpin what was not used since tick - IDLE_TICKS + 1 began: unused for IDLE_TICKS ticks.
    const usedSince = this.#tickStart[(tick + IDLE_TICKS) % (IDLE_TICKS + 1)];
    for (let n = this.#hot.head; n !== undefined; ) {
      const next = n.next;
      this.#cool(n.value, usedSince);
      n = next;
    }
    if (this.#hot.size !== 0 && !this.#closed) this.#sweeper = setTimeout(this.#sweep, SWEEP_MS).unref();
  };

  /** Give an entry's memory back (no handle holds it). */
  #freeValue(entry: Entry<K>): void {
    const u = entry.unit;
    entry.view = undefined;
    if (u.slotSize !== 0 && !this.#slabs.give(u as Slab, entry.slot)) return;
    u.values[0] = undefined;
    if (u.hot) {
      this.#hot.remove(u.node);
      this.#hotBytes -= u.buffer.capacity;
      u.hot = false;
    }
    u.buffer.free();
  }

  /** A miss (or a purged entry): make the value and keep it (unless delete()/clear() ran meanwhile, or it is over maxEntrySize). */
  #produce(key: K, producer: Producer<K>, outcome: CacheOutcome): CacheHandle<K> {
    this.#producing.set(key, false);
    let bytes: Uint8Array | undefined;
    let isString = false;
    let filled: Entry<K> | undefined;
    let cancelled: boolean;
    try {
      if (typeof producer === 'function') {
        const produced = producer(key);
        bytes = checkValue('the value returned by produce', produced);
        isString = typeof produced === 'string';
      } else {
        const size = typeof producer.size === 'function' ? producer.size(key) : producer.size;
        const length = validateInteger('produce.size', size, 0, Number.MAX_SAFE_INTEGER);
        if (length < this.#slabs.maxValue || length > this.#maxEntrySize) {
          // Small (or not kept): filled into a private buffer, then stored like a returned value.
          bytes = Buffer.alloc(length);
          producer.fill(bytes, key);
        } else {
          filled = this.#newEntry(key, length, false, undefined);
          try {
            producer.fill(this.#view(filled), key);
          } catch (err) {
            filled.pins = 0;
            this.#freeValue(filled);
            throw err;
          }
        }
      }
    } finally {
      cancelled = this.#producing.get(key) === true; // delete()/clear() ran inside produce
      this.#producing.delete(key);
    }
    if (filled !== undefined) {
      const old = this.#entries.get(key);
      if (old !== undefined) this.#remove(old, 'set');
      const h = this.#handOut(filled, outcome);
      if (cancelled) filled.dead = true; // handed out once, freed on release
      else this.#insert(filled);
      return h;
    }
    const value = bytes as Uint8Array;
    const length = lengthOf(value);
    const kept = cancelled ? undefined : this.#store(key, value, length, isString, undefined, outcome);
    return kept ?? new CacheHandle(CREATE_HANDLE, key, copyOf('the value returned by produce', value, length), isString, outcome);
  }

  /**
   * Keep a checked value under `key` (replacing an entry: reason 'set'); `length` was taken
   * when it was checked (see lengthOf). Returns a handle on it (an own-span entry stays pinned
   * for it), or undefined if the value is over maxEntrySize (not kept; an older entry is removed).
   */
  #store(key: K, bytes: Uint8Array, length: number, isString: boolean, options: SetOptions | undefined, outcome: CacheOutcome | null): CacheHandle<K> | undefined {
    const old = this.#entries.get(key);
    if (old !== undefined) this.#remove(old, 'set');
    this.#fetches.abort(key, 'set');
    if (length > this.#maxEntrySize) return undefined;
    const entry = this.#newEntry(key, length, isString, options);
    try {
      // set() makes no handle and keeps no view: nothing per entry survives but the entry.
      // Copied in through the buffer's private view: storing is not an exposure (docs/ARENA.md).
      copyValue('value', entry.unit.buffer[kPrivateBytes](), bytes, entry.slot * entry.unit.slotSize);
    } catch (err) {
      entry.pins = 0;
      this.#freeValue(entry);
      throw err;
    }
    let handle: CacheHandle<K> | undefined;
    if (outcome === null) entry.pins = 0;
    else handle = this.#handOut(entry, outcome);
    this.#insert(entry);
    return handle;
  }

  /** The handle that takes over a new entry's construction pin. */
  #handOut(entry: Entry<K>, outcome: CacheOutcome): CacheHandle<K> {
    this.#handles++;
    return new CacheHandle(CREATE_HANDLE, entry.key, entry.view, entry.isString, outcome, this, entry);
  }

  /** @internal For a handle whose bytes are read for the first time: the view, made now (an exposure). */
  viewOf(entry: Entry<K>): Uint8Array {
    return entry.view ?? this.#view(entry);
  }

  /** @internal For handles: the arena was closed (by close(), or by its owner when it was given). */
  arenaClosed(): boolean {
    return this.#arena.closed;
  }

  /**
   * Allocate an entry's memory (an own span, or a slot in a slab), hot, with one
   * construction pin (so nothing a producer or a dispose callback does meanwhile, memory
   * pressure included, can unpin it before it is written). Not inserted yet.
   */
  #newEntry(key: K, length: number, isString: boolean, options: SetOptions | undefined): Entry<K> {
    const ttl = options?.ttl === undefined ? this.#ttl : validateInteger('options.ttl', options.ttl, 0);
    const start = ttl === 0 ? 0 : options?.start ?? performance.now();
    let unit: Unit;
    let slot = 0;
    if (length < this.#slabs.maxValue) {
      let slab = this.#slabs.openFor(length);
      if (slab === undefined) {
        slab = this.#slabs.add(length, this.#alloc(this.#arena.pageSize));
        this.#heat(slab);
      }
      slot = this.#slabs.take(slab);
      unit = slab;
    } else {
      const buffer = this.#alloc(Math.max(1, length));
      unit = ownUnit(buffer);
      this.#heat(unit);
    }
    // What a hit reads and writes first (one cache line), then the rest.
    const entry = {
      ttl, view: undefined, used: this.#clock, pins: 1, isString, key,
      unit, slot, epoch: unit.epoch, length, dead: false, placed: 0, start,
      value: undefined, prev: undefined, next: undefined, listed: false,
    } as unknown as Entry<K>;
    (entry as { value: Entry<K> }).value = entry;
    unit.values[slot] = entry;
    this.#warm(entry); // a slab may have been unpinned (a dropped page only moves its epoch on)
    entry.epoch = unit.epoch;
    return entry;
  }

  #insert(entry: Entry<K>): void {
    this.#entries.set(entry.key, entry);
    entry.used = entry.placed = ++this.#clock;
    this.#lru.push(entry);
    this.#bytes += footprint(entry);
    this.#valueBytes += entry.length;
    this.#shrink(this.#budget);
  }

  #stale(e: Entry<K>): boolean {
    return performance.now() - e.start > e.ttl;
  }

  /** Live entries, most recently used first. */
  *#recent(): IterableIterator<Entry<K>> {
    yield* [...this.#entries.values()].sort((a, b) => b.used - a.used);
  }

  /** A copy of an entry's value (a string if set as one), or undefined if the kernel dropped it. */
  #copy(e: Entry<K>): string | Uint8Array | undefined {
    const h = this.#acquire(e, 'hit');
    if (h === undefined) return undefined;
    const bytes = Buffer.from(h.bytes);
    h.release();
    return e.isString ? bytes.toString('utf8') : bytes;
  }

  /** Allocate, evicting unpinned entries while the arena is full; when nothing is left to evict, say what holds the memory. */
  #alloc(length: number): VolatileBuffer {
    for (;;) {
      try {
        return this.#arena.alloc(length);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_ARENA_FULL') throw err;
        if (this.#evictOne()) continue;
        if (this.#handles > 0) {
          (err as Error).message +=
            `; this cache holds ${this.#held()} bytes pinned by ${this.#handles} unreleased handle${this.#handles === 1 ? '' : 's'}` +
            ' (call release() on every handle get()/fetch() returned, or hold it with `using`)';
        }
        throw err;
      }
    }
  }

  /** Evict least recently used unpinned entries until within `bytes` and the entry limit. */
  #shrink(bytes: number): void {
    while ((this.#bytes > bytes || this.#entries.size > this.#max) && this.#evictOne());
  }

  /** Evict the least recently used unpinned entry; false if there is none. */
  #evictOne(): boolean {
    for (let n = this.#lru.head; n !== undefined; ) {
      const entry = n.value;
      n = n.next;
      if (entry.used !== entry.placed) {
        // Used since it was placed: it moves back to its place by recency (looked for
        // from the end, a few steps at most: beyond them the order is approximate).
        entry.placed = entry.used;
        let at = this.#lru.tail as Entry<K>;
        for (let steps = 0; at !== entry && at.placed > entry.used && at.prev !== undefined && steps < 32; steps++) at = at.prev as Entry<K>;
        if (at !== entry) this.#lru.insertAfter(at, entry);
        continue;
      }
      if (entry.pins > 0) continue;
      this.#evictions++;
      this.#remove(entry, 'evict');
      return true;
    }
    return false;
  }

  #remove(entry: Entry<K>, reason: DisposeReason): void {
    if (entry.dead) return;
    entry.dead = true;
    this.#entries.delete(entry.key);
    this.#lru.remove(entry);
    this.#bytes -= footprint(entry);
    this.#valueBytes -= entry.length;
    if (entry.pins === 0) this.#freeValue(entry);
    if (this.#dispose !== undefined) this.#dispose(undefined, entry.key, reason);
    if (this.#disposeAfter !== undefined) this.#disposed.push([entry.key, reason]);
  }

  /** disposeAfter runs once the operation that removed entries is done. */
  #flushDisposed(): void {
    if (this.#disposed.length === 0) return;
    const done = this.#disposed;
    this.#disposed = [];
    for (const [key, reason] of done) (this.#disposeAfter as Disposer<K>)(undefined, key, reason);
  }
}

function reentrantGet(): Error {
  return pagewiseError('ERR_CACHE_REENTRANT_GET', 'Cannot get a key from inside its own produce(): the value is not made yet');
}
