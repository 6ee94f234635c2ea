// VolatileCache: a purgeable key -> bytes cache on a VolatileArena.
//
// get(key, produce) returns a handle whose bytes are pinned; release() (or
// `using`) unpins them. An unpinned entry stays cached but may be dropped by the
// kernel under memory pressure; the next get() notices (pin says 'purged') and
// regenerates it through produce. A byte budget evicts the least recently
// released unpinned entries in userspace; the kernel is the backstop under real
// pressure (Chromium's discardable memory does the same).
import { type ArenaStats, VolatileArena, type VolatileArenaOptions, type VolatileBuffer } from './arena';
import { invalidArgType, pagewiseError } from './errors';
import { validateInteger, validateObject } from './validate';

export interface VolatileCacheOptions extends Omit<VolatileArenaOptions, 'size'> {
  /**
   * Userspace budget in bytes (whole pages per entry): over it, the least recently
   * released unpinned entries are evicted. Pinned entries are never evicted, so the
   * cache can exceed the budget while they are held. Default 64 MiB.
   */
  budget?: number;
  /** Arena to allocate from (shared with others). Default: a new arena of `arenaSize` bytes, closed by close(). */
  arena?: VolatileArena;
  /** Size of the arena created when none is given. Default: twice the budget. */
  arenaSize?: number;
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
  /** Entries removed by the userspace budget. */
  evictions: number;
  /** The arena's own counters. */
  arena: ArenaStats;
}

/** Bytes to cache for a key: returned by produce (copied into the arena). */
export type Producer<K> = (key: K) => Uint8Array;

interface Entry<K> {
  key: K;
  buffer: VolatileBuffer;
  /** Live handles. */
  pins: number;
  /** Removed from the map while pinned: freed when the last handle is released. */
  dead: boolean;
}

/** A pinned entry: its bytes stay valid until release(). */
export class CacheHandle<K> implements Disposable {
  readonly #cache: VolatileCache<K>;
  readonly #entry: Entry<K>;
  #released = false;
  /** What get() found: 'hit' (intact), 'miss' or 'purged' (both regenerated through produce). */
  readonly outcome: CacheOutcome;

  /** @internal */
  constructor(cache: VolatileCache<K>, entry: Entry<K>, outcome: CacheOutcome) {
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
    return this.#entry.buffer.bytes;
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
  readonly #entries = new Map<K, Entry<K>>();
  /** Unpinned entries, least recently released first. */
  readonly #lru = new Set<Entry<K>>();
  #bytes = 0;
  #pinnedBytes = 0;
  #hits = 0;
  #misses = 0;
  #purged = 0;
  #evictions = 0;

  constructor(options?: VolatileCacheOptions) {
    const o = validateObject<VolatileCacheOptions>('options', options);
    this.#budget = o.budget === undefined ? 64 * 1024 * 1024 : validateInteger('options.budget', o.budget, 0);
    if (o.arena !== undefined) {
      if (!(o.arena instanceof VolatileArena)) throw invalidArgType('options.arena', 'an instance of VolatileArena', o.arena);
      this.#arena = o.arena;
      this.#ownsArena = false;
    } else {
      const { budget: _b, arena: _a, arenaSize, ...arenaOptions } = o;
      const size = arenaSize === undefined ? Math.max(2 * this.#budget, 1024 * 1024) : validateInteger('options.arenaSize', arenaSize, 1);
      this.#arena = new VolatileArena({ ...arenaOptions, size });
      this.#ownsArena = true;
    }
  }

  get arena(): VolatileArena {
    return this.#arena;
  }

  get budget(): number {
    return this.#budget;
  }

  /** Entries cached. */
  get size(): number {
    return this.#entries.size;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /**
   * Pinned bytes for `key`: the cached entry if it is there and intact, else what
   * produce(key) returns (copied into the arena). Release the handle when done
   * (or hold it with `using`).
   */
  get(key: K, produce: Producer<K>): CacheHandle<K> {
    if (typeof produce !== 'function') throw invalidArgType('produce', 'of type function', produce);
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      if (entry.pins > 0) {
        entry.pins++;
        this.#hits++;
        return new CacheHandle(this, entry, 'hit');
      }
      this.#lru.delete(entry);
      const result = entry.buffer.pin();
      this.#pinnedBytes += entry.buffer.capacity;
      entry.pins = 1;
      if (result === 'intact') {
        this.#hits++;
        return new CacheHandle(this, entry, 'hit');
      }
      this.#purged++;
      try {
        this.#fill(entry, key, produce);
      } catch (err) {
        // No handle will release it: drop the entry now.
        entry.pins = 0;
        this.#pinnedBytes -= entry.buffer.capacity;
        this.#remove(entry);
        throw err;
      }
      return new CacheHandle(this, entry, 'purged');
    }
    this.#misses++;
    const bytes = produce(key);
    if (!(bytes instanceof Uint8Array)) throw invalidArgType('the value returned by produce', 'an instance of Uint8Array', bytes);
    const buffer = this.#alloc(Math.max(1, bytes.length));
    buffer.bytes.set(bytes);
    const created: Entry<K> = { key, buffer, pins: 1, dead: false };
    this.#entries.set(key, created);
    this.#bytes += buffer.capacity;
    this.#pinnedBytes += buffer.capacity;
    this.#shrink();
    return new CacheHandle(this, created, 'miss');
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

  /** Clear, and close the arena if the cache created it. Handles still held see ERR_BUFFER_FREED. */
  close(): void {
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
    this.#lru.add(entry);
    this.#shrink();
  }

  /** Regenerate a purged entry in place (a new buffer if the size changed). */
  #fill(entry: Entry<K>, key: K, produce: Producer<K>): void {
    const bytes = produce(key);
    if (!(bytes instanceof Uint8Array)) throw invalidArgType('the value returned by produce', 'an instance of Uint8Array', bytes);
    const length = Math.max(1, bytes.length);
    if (length !== entry.buffer.length) {
      const old = entry.buffer;
      const fresh = this.#alloc(length);
      old.free();
      entry.buffer = fresh;
      const delta = fresh.capacity - old.capacity;
      this.#bytes += delta;
      this.#pinnedBytes += delta;
    }
    entry.buffer.bytes.set(bytes);
  }

  /** Allocate, evicting unpinned entries while the arena is full. */
  #alloc(length: number): VolatileBuffer {
    for (;;) {
      try {
        return this.#arena.alloc(length);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_ARENA_FULL' || this.#lru.size === 0) throw err;
        this.#evictOne();
      }
    }
  }

  /** Evict least recently released unpinned entries until within budget. */
  #shrink(): void {
    while (this.#bytes > this.#budget && this.#lru.size > 0) this.#evictOne();
  }

  #evictOne(): void {
    const entry = this.#lru.values().next().value as Entry<K>;
    this.#evictions++;
    this.#remove(entry);
  }

  #remove(entry: Entry<K>): void {
    if (entry.dead) return;
    entry.dead = true;
    this.#entries.delete(entry.key);
    this.#lru.delete(entry);
    this.#bytes -= entry.buffer.capacity;
    if (entry.pins === 0) entry.buffer.free();
  }
}
