// The types of VolatileCache (./cache.ts): its options, stats, producers and entries.
import type { ArenaStats, VolatileArena } from './arena';
import type { FetchMethod } from './cache-fetch';
import type { ListNode } from './list';
import type { VolatileArenaOptions } from './options';
import type { PressureSource } from './pressure-source';
import type { Unit, UnitValue } from './slab';

/** Why an entry left the cache (lru-cache's reasons). */
export type DisposeReason = 'evict' | 'set' | 'delete' | 'expire' | 'fetch';
/** Called as dispose(undefined, key, reason): the bytes may be gone already, so no value is passed. */
export type Disposer<K> = (value: undefined, key: K, reason: DisposeReason) => void;

export interface VolatileCacheOptions<K = string> extends Omit<VolatileArenaOptions, 'size' | 'pressure'> {
  /**
   * Userspace budget in bytes: each entry counts the bytes it occupies (its slot for a
   * value under half a page, whole pages otherwise). Over it, the least recently used
   * unpinned entries are evicted. Pinned entries are never evicted, so the cache can
   * exceed the budget while they are held. Default 64 MiB.
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
  /** Milliseconds an entry stays fresh (lru-cache's ttl). Default 0: no expiry. */
  ttl?: number;
  /** get()/fetch() may return an entry past its ttl (fetch() then refreshes it in the background). */
  allowStale?: boolean;
  /** A get() that finds an entry restarts its ttl. */
  updateAgeOnGet?: boolean;
  /** A value longer than this many bytes is not kept (set() ignores it; get() hands it out once). */
  maxEntrySize?: number;
  /** Called when an entry leaves the cache, before it is gone. */
  dispose?: Disposer<K>;
  /** Called when an entry has left the cache, after the operation that removed it. */
  disposeAfter?: Disposer<K>;
  /** The async producer of fetch(): fetchMethod(key, undefined, { signal, options, context }). */
  fetchMethod?: FetchMethod<K>;
  /** The producer of memo(): memoMethod(key, undefined, { context }) returns the value. */
  memoMethod?: (key: K, staleValue: undefined, options: { context: unknown }) => string | Uint8Array;
}

export interface CacheStats {
  /** Entries cached (pinned or not). */
  entries: number;
  /** Bytes the entries occupy: their slots (values under half a page) and whole pages (larger ones). */
  bytes: number;
  /** Bytes of the values themselves. */
  valueBytes: number;
  /** Pages held by slabs (small values share them). */
  slabPages: number;
  /** Bytes this cache keeps pinned in the arena: held by handles, or released in the last 25-50 ms (see flush()). */
  pinnedBytes: number;
  /** Bytes of spans held by handles. */
  heldBytes: number;
  /** Handles holding a pin, not released yet. */
  handles: number;
  /** Handles garbage-collected without release() (reported once by a warning). */
  leakedHandles: number;
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
 * - a function returning them (a Uint8Array or a string; copied into the arena), or
 * - `{ size, fill }`: the cache allocates `size` bytes (a number, or a function of
 *   the key) and `fill(target, key)` writes the value straight into them. `target`
 *   is valid only during the call.
 */
export type Producer<K> = ((key: K) => Uint8Array | string) | FillProducer<K>;

export interface FillProducer<K> {
  size: number | ((key: K) => number);
  fill(target: Uint8Array, key: K): void;
}

export interface GetOptions {
  allowStale?: boolean;
  updateAgeOnGet?: boolean;
}

export interface SetOptions {
  /** This entry's ttl in milliseconds (0: none). */
  ttl?: number;
  /** When the ttl started (a performance.now() value). Default: now. */
  start?: number;
}

/** A dump()/load() record (lru-cache's Entry): start is a Date.now() time. */
export interface CacheEntryInfo {
  value: string | Uint8Array;
  ttl?: number;
  start?: number;
  size: number;
}

/** @internal An entry is its own node in the recency list (one object per entry). */
export interface Entry<K> extends UnitValue, ListNode<Entry<K>> {
  key: K;
  /** Bytes of the value. */
  length: number;
  isString: boolean;
  /** Its span: an own span (a value of half a page or more) or a slab it shares. */
  unit: Unit;
  /** Its slot in a slab (0 for an own span). */
  slot: number;
  /** The unit's epoch when the value was written (valid while they are equal). */
  epoch: number;
  /** Removed from the map while held: its memory is given back on the last release. */
  dead: boolean;
  /** The cache's use clock at its last use (a hit only stamps this: the recency list is settled when evicting). */
  used: number;
  /** The use clock when it took its place in the recency list. */
  placed: number;
  /** performance.now() when the ttl started; ttl 0 means none. */
  start: number;
  ttl: number;
}

