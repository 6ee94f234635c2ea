// fetch(): VolatileCache's async producer, as lru-cache's fetch() works. Concurrent
// fetches of one key share one fetchMethod call; each caller gets its own handle
// when it settles. The value is stored only after fetchMethod resolved, so a
// rejected or aborted fetch never holds a span.
//
// Aborts: a caller's `signal` rejects that caller's promise with the signal's
// reason; fetchMethod's own signal aborts when no caller is waiting any more (and
// no stale-while-revalidate refresh wants the value), or when the key is deleted
// (delete(), clear(), close()) — then every waiter rejects with an AbortError. A
// set() of the key meanwhile aborts fetchMethod and hands the waiters the value set.
import { invalidArgType } from '../errors';
import { validateBoolean, validateInteger, validateObject } from '../validate';
import type { CacheHandle, CacheOutcome } from './cache-handle';

export interface FetchOptions {
  /** Abort this caller's wait (its promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Passed to fetchMethod as options.context. */
  context?: unknown;
  /** Call fetchMethod even if a fresh entry is cached. */
  forceRefresh?: boolean;
  /** Return a stale entry at once and refresh it in the background (default: the cache's allowStale). */
  allowStale?: boolean;
  /** A hit restarts the entry's ttl (default: the cache's updateAgeOnGet). */
  updateAgeOnGet?: boolean;
  /** The ttl of the value fetched (fetchMethod may change options.ttl). */
  ttl?: number;
}

/** fetchMethod(key, staleValue, { signal, options, context }): staleValue is always undefined (see docs/ARENA.md). */
export type FetchMethod<K> = (
  key: K,
  staleValue: undefined,
  options: { signal: AbortSignal; options: FetchOptions; context: unknown },
) => Promise<string | Uint8Array | undefined> | string | Uint8Array | undefined;

/** What the cache offers fetch() (VolatileCache's @internal methods). */
export interface FetchHost<K> {
  get(key: K, options?: { allowStale?: boolean; updateAgeOnGet?: boolean }): CacheHandle<K> | undefined;
  lookup(key: K, options: FetchOptions | undefined): { handle: CacheHandle<K> | undefined; stale: boolean };
  storeForFetch(key: K, value: unknown, options: { ttl?: number } | undefined): { take(outcome: CacheOutcome): CacheHandle<K>; done(): void };
  dropForFetch(key: K): void;
}

interface Waiter<K> {
  resolve(h: CacheHandle<K> | undefined): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Flight<K> {
  ac: AbortController;
  waiters: Set<Waiter<K>>;
  /** fetchMethod may change them (ttl). */
  options: FetchOptions;
  /** Started by a stale-while-revalidate fetch: the value is wanted without a waiter. */
  background: boolean;
  /** The key was set meanwhile: the waiters get that value. */
  setMeanwhile: boolean;
}

const FETCH_OPTION_KEYS = ['signal', 'context', 'forceRefresh', 'allowStale', 'updateAgeOnGet', 'ttl'];

function abortError(message: string): Error {
  return Object.assign(new Error(message), { name: 'AbortError', code: 'ABORT_ERR' });
}

export class Fetches<K> {
  readonly #host: FetchHost<K>;
  readonly #method: FetchMethod<K> | undefined;
  readonly #flights = new Map<K, Flight<K>>();

  constructor(host: FetchHost<K>, method: FetchMethod<K> | undefined) {
    this.#host = host;
    this.#method = method;
  }

  fetch(key: K, options: FetchOptions | undefined): Promise<CacheHandle<K> | undefined> {
    try {
      const o = validateObject<FetchOptions>('options', options, FETCH_OPTION_KEYS);
      const signal = o.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
      if (o.forceRefresh !== undefined) validateBoolean('options.forceRefresh', o.forceRefresh);
      if (o.allowStale !== undefined) validateBoolean('options.allowStale', o.allowStale);
      if (o.ttl !== undefined) validateInteger('options.ttl', o.ttl, 0);
      if (this.#method === undefined) return Promise.resolve(this.#host.get(key, o));
      if (o.forceRefresh !== true) {
        const { handle, stale } = this.#host.lookup(key, o);
        if (handle !== undefined) {
          if (stale && !this.#flights.has(key)) this.#start(key, o).background = true;
          return Promise.resolve(handle);
        }
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
      const flight = this.#flights.get(key) ?? this.#start(key, o);
      return new Promise((resolve, reject) => {
        const w: Waiter<K> = { resolve, reject, signal, onAbort: undefined };
        if (signal !== undefined) {
          w.onAbort = () => {
            flight.waiters.delete(w);
            reject(signal.reason);
            if (flight.waiters.size === 0 && !flight.background) flight.ac.abort(signal.reason);
          };
          signal.addEventListener('abort', w.onAbort, { once: true });
        }
        flight.waiters.add(w);
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Abort the fetch of `key` in flight (the key was deleted or set); whether there was one. */
  abort(key: K, why: 'delete' | 'set'): boolean {
    const flight = this.#flights.get(key);
    if (flight === undefined) return false;
    this.#flights.delete(key);
    if (why === 'set') flight.setMeanwhile = true;
    flight.ac.abort(abortError(`The fetch was aborted: the key was ${why === 'set' ? 'set' : 'deleted'} meanwhile`));
    if (why === 'set') this.#handOver(key, flight);
    else for (const w of this.#take(flight)) w.reject(flight.ac.signal.reason);
    return true;
  }

  /**
   * The waiters of a fetch overtaken by set() get the value being set (stored once set()
   * returns). A method of its own: a closure in abort() would make every set() allocate
   * the context it captures, fetch in flight or not.
   */
  #handOver(key: K, flight: Flight<K>): void {
    queueMicrotask(() => {
      for (const w of this.#take(flight)) {
        try {
          w.resolve(this.#host.lookup(key, undefined).handle);
        } catch (err) {
          w.reject(err);
        }
      }
    });
  }

  abortAll(): void {
    for (const key of [...this.#flights.keys()]) this.abort(key, 'delete');
  }

  #start(key: K, options: FetchOptions): Flight<K> {
    const ac = new AbortController();
    const flight: Flight<K> = { ac, waiters: new Set(), options: { ...options }, background: false, setMeanwhile: false };
    delete flight.options.signal;
    this.#flights.set(key, flight);
    let p: Promise<unknown>;
    try {
      p = Promise.resolve((this.#method as FetchMethod<K>)(key, undefined, { signal: ac.signal, options: flight.options, context: options.context }));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (value) => this.#settle(key, flight, value, undefined),
      (err: unknown) => this.#settle(key, flight, undefined, err ?? new Error('fetchMethod rejected')),
    );
    return flight;
  }

  /** The waiters of a flight, removed from it (and from their signals). */
  #take(flight: Flight<K>): Array<Waiter<K>> {
    const waiters = [...flight.waiters];
    flight.waiters.clear();
    for (const w of waiters) if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    return waiters;
  }

  #settle(key: K, flight: Flight<K>, value: unknown, error: unknown): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
    if (flight.ac.signal.aborted) {
      // Deleted or set meanwhile (waiters already answered), or every waiter left.
      if (!flight.setMeanwhile) for (const w of this.#take(flight)) w.reject(flight.ac.signal.reason);
      return;
    }
    const waiters = this.#take(flight);
    if (error !== undefined) {
      for (const w of waiters) w.reject(error);
      return;
    }
    if (value === undefined) {
      this.#host.dropForFetch(key);
      for (const w of waiters) w.resolve(undefined);
      return;
    }
    let stored: ReturnType<FetchHost<K>['storeForFetch']>;
    try {
      const ttl = flight.options.ttl;
      stored = this.#host.storeForFetch(key, value, ttl === undefined ? undefined : { ttl });
    } catch (err) {
      for (const w of waiters) w.reject(err);
      return;
    }
    for (const w of waiters) {
      try {
        w.resolve(stored.take('miss'));
      } catch (err) {
        w.reject(err);
      }
    }
    stored.done();
  }
}
