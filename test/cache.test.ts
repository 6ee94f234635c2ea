import * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CacheHandle, type CodedError, VolatileCache } from '../lib/index';
import { allEqual, collectViews, PAGE, pattern, pw } from './helpers';
import { spyPagewise } from './spy-backend';

function cache(budgetPages: number, arenaPages = 4 * budgetPages): VolatileCache<string> {
  return new VolatileCache<string>({ budget: budgetPages * PAGE, arenaSize: arenaPages * PAGE, pagewise: pw, decayMs: -1 });
}

/** What the kernel may do to released entries: unpin the cache's hot set (flush) and page out every volatile span. */
async function dropReleased(c: VolatileCache<string>): Promise<void> {
  c.flush();
  await collectViews(c.arena); // views still reachable hold their spans back (issue 22)
  c.arena.purge();
}

const produceFor = (calls: string[], pages = 2) => (key: string) => {
  calls.push(key);
  return pattern(pages * PAGE - 17, key.charCodeAt(0));
};

describe('VolatileCache', () => {
  it('miss, then hit with byte-exact content; purged entries are regenerated', async () => {
    using c = cache(16);
    const calls: string[] = [];
    const produce = produceFor(calls);
    {
      using h = c.get('a', produce);
      expect(h.outcome).toBe('miss');
      expect(h.bytes).toEqual(pattern(2 * PAGE - 17, 97));
    }
    {
      using h = c.get('a', produce);
      expect(h.outcome).toBe('hit');
      expect(h.bytes).toEqual(pattern(2 * PAGE - 17, 97));
    }
    expect(calls).toEqual(['a']);
    await dropReleased(c);
    {
      using h = c.get('a', produce);
      expect(h.outcome).toBe('purged');
      expect(h.bytes).toEqual(pattern(2 * PAGE - 17, 97));
    }
    expect(calls).toEqual(['a', 'a']);
    expect(c.stats).toMatchObject({ entries: 1, hits: 1, misses: 1, purged: 1, evictions: 0, heldBytes: 0, handles: 0, bytes: 2 * PAGE });
  });

  it('handles nest: the entry stays pinned (and purge cannot touch it) until the last release', async () => {
    using c = cache(16);
    const calls: string[] = [];
    const h1 = c.get('k', produceFor(calls));
    const h2 = c.get('k', produceFor(calls));
    expect(h2.outcome).toBe('hit');
    h1.release();
    h1.release(); // idempotent
    expect(() => h1.bytes).toThrow(expect.objectContaining({ code: 'ERR_HANDLE_RELEASED' }));
    await dropReleased(c);
    expect(h2.bytes).toEqual(pattern(2 * PAGE - 17, 107));
    const view = h2.bytes;
    h2.release();
    expect(view.length).toBe(2 * PAGE - 17); // released, not volatile yet: still the entry's own bytes
    c.flush();
    c.arena.flush();
    // Still reachable (issue 22): held back, never detached, still the entry's own bytes.
    expect(c.stats.arena.heldBytes).toBe(2 * PAGE);
    expect(view).toEqual(pattern(2 * PAGE - 17, 107));
    expect(c.stats.pinnedBytes).toBe(0);
    expect(c.stats.arena.unpinnedBytes).toBe(2 * PAGE);
  });

  it('evicts least recently released unpinned entries over the budget, never pinned ones', () => {
    using c = cache(6); // three 2-page entries
    const calls: string[] = [];
    const produce = produceFor(calls);
    for (const k of ['a', 'b', 'c']) c.get(k, produce).release();
    c.get('a', produce).release(); // 'a' is now the most recent
    const pinned = c.get('b', produce); // held: not evictable
    c.get('d', produce).release(); // over budget: evicts 'c' (oldest unpinned)
    expect([...['a', 'b', 'c', 'd']].filter((k) => c.has(k))).toEqual(['a', 'b', 'd']);
    c.get('e', produce).release(); // evicts 'a'
    expect(c.has('a')).toBe(false);
    expect(c.has('b')).toBe(true);
    expect(c.stats.evictions).toBe(2);
    expect(c.stats.bytes).toBeLessThanOrEqual(6 * PAGE);
    pinned.release();
  });

  it('evicts when the arena itself is full, and delete() of a held entry waits for the release', () => {
    using c = new VolatileCache<string>({ budget: 1 << 30, arenaSize: 4 * PAGE, pagewise: pw, decayMs: -1, quarantine: false }); // arena-full eviction: freed spans reused at once (the simulator quarantines them by default)
    const produce = produceFor([]);
    c.get('a', produce).release();
    c.get('b', produce).release();
    c.get('c', produce).release(); // arena full: 'a' goes
    expect(c.has('a')).toBe(false);
    expect(c.stats.evictions).toBe(1);
    const h = c.get('b', produce);
    expect(c.delete('b')).toBe(true);
    expect(c.has('b')).toBe(false);
    expect(h.bytes.length).toBe(2 * PAGE - 17); // still pinned and valid
    h.release();
    expect(c.stats.arena.buffers).toBe(1);
    const held = c.get('x', produce);
    const held2 = c.get('y', produce);
    expect(() => c.get('z', produce)).toThrow(expect.objectContaining({ code: 'ERR_ARENA_FULL' }));
    held.release();
    held2.release();
  });

  it('a producer that throws leaves no entry behind', async () => {
    using c = cache(8);
    expect(() =>
      c.get('bad', () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(c.has('bad')).toBe(false);
    c.get('p', produceFor([])).release();
    await dropReleased(c);
    expect(() =>
      c.get('p', () => {
        throw new Error('again');
      }),
    ).toThrow('again');
    expect(c.has('p')).toBe(false);
    expect(c.stats.arena.buffers).toBe(0);
    let err: unknown;
    try {
      c.get('q', () => 42 as unknown as Uint8Array); // strings are values now; a number is not
    } catch (e) {
      err = e;
    }
    expect((err as CodedError).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('a regenerated entry may change size', async () => {
    using c = cache(16);
    c.get('s', () => new Uint8Array(PAGE).fill(1)).release();
    await dropReleased(c);
    using h = c.get('s', () => new Uint8Array(3 * PAGE).fill(2));
    expect(h.outcome).toBe('purged');
    expect(h.bytes.length).toBe(3 * PAGE);
    expect(h.bytes.every((b) => b === 2)).toBe(true);
    expect(c.stats.bytes).toBe(3 * PAGE);
  });
});

describe('VolatileCache: lru-cache habits', () => {
  it('has, peek, delete, size, keys (most recent first), clear', () => {
    using c = cache(64);
    const produce = produceFor([]);
    for (const k of ['a', 'b', 'c']) c.get(k, produce).release();
    c.get('a', produce).release();
    expect([...c.keys()]).toEqual(['a', 'c', 'b']);
    expect([...c]).toEqual(['a', 'c', 'b']);
    expect(c.size).toBe(3);
    expect(c.has('b')).toBe(true);
    const h = c.peek('b');
    expect(h?.bytes).toEqual(pattern(2 * PAGE - 17, 98));
    h?.release();
    expect([...c.keys()]).toEqual(['a', 'c', 'b']); // peek changes no recency
    expect(c.peek('zzz')).toBeUndefined();
    expect(c.stats).toMatchObject({ hits: 1, misses: 3 });
    expect(c.delete('c')).toBe(true);
    expect(c.delete('c')).toBe(false);
    expect(c.size).toBe(2);
    c.clear();
    expect(c.size).toBe(0);
    expect(c.stats).toMatchObject({ entries: 0, bytes: 0, arena: { buffers: 0 } });
  });

  it('peek of an entry the kernel dropped finds nothing and removes it', async () => {
    using c = cache(64);
    c.get('a', produceFor([])).release();
    await dropReleased(c);
    expect(c.peek('a')).toBeUndefined();
    expect(c.has('a')).toBe(false);
    expect(c.stats.arena.buffers).toBe(0);
  });

  it('max: a limit on entries besides the byte budget', () => {
    using c = new VolatileCache<string>({ budget: 1 << 30, max: 2, arenaSize: 64 * PAGE, pagewise: pw, decayMs: -1 });
    const produce = produceFor([]);
    for (const k of ['a', 'b', 'c']) c.get(k, produce).release();
    expect([...c.keys()]).toEqual(['c', 'b']);
    expect(c.stats.evictions).toBe(1);
    expect(c.max).toBe(2);
  });

  it('a hot hit (entry never gone volatile) makes no syscall and hands out the same view', () => {
    const spy = spyPagewise();
    using c = new VolatileCache<string>({ budget: 64 * PAGE, pagewise: spy.pagewise, decayMs: -1, unpinDelayMs: -1 });
    c.get('k', produceFor([])).release();
    const before = spy.total();
    let view: Uint8Array | undefined;
    for (let i = 0; i < 50; i++) {
      using h = c.get('k', produceFor([]));
      expect(h.outcome).toBe('hit');
      if (view === undefined) view = h.bytes;
      else expect(h.bytes).toBe(view);
    }
    expect(spy.total()).toBe(before);
    // Released entries stay in the cache's hot set for a while: not even a soft pin in the arena.
    expect(c.stats.arena.pins).toBe(0);
    expect(c.stats.hits).toBe(50);
  });
});

describe('VolatileCache: producers that fill the arena memory directly', () => {
  it('{ size, fill } writes straight into the entry (a miss and a regeneration)', async () => {
    using c = cache(64);
    let targets: Uint8Array[] = [];
    const produce = {
      size: (key: string) => key.length * PAGE + 5,
      fill(target: Uint8Array, key: string) {
        targets.push(target);
        target.set(pattern(target.length, key.length));
      },
    };
    {
      using h = c.get('ab', produce);
      expect(h.outcome).toBe('miss');
      expect(h.bytes.length).toBe(2 * PAGE + 5);
      expect(h.bytes).toEqual(pattern(2 * PAGE + 5, 2));
      // The target was the entry's own memory (no copy): same buffer and offset.
      expect(targets[0].buffer).toBe(h.bytes.buffer);
      expect(targets[0].byteOffset).toBe(h.bytes.byteOffset);
    }
    await dropReleased(c);
    targets = [];
    await collectViews(c.arena);
    c.arena.purge();
    using h = c.get('ab', { size: PAGE, fill: (t) => t.fill(7) });
    expect(h.outcome).toBe('purged');
    expect(h.bytes.length).toBe(PAGE);
    expect(allEqual(h.bytes, 7)).toBe(true);
    expect(c.stats.bytes).toBe(PAGE);
  });

  it('a fill that throws or a bad size leaves nothing allocated', () => {
    using c = cache(64);
    expect(() => c.get('x', { size: PAGE, fill: () => { throw new Error('no'); } })).toThrow('no');
    expect(() => c.get('x', { size: -1, fill: () => {} })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => c.get('x', { size: 1.5, fill: () => {} })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => c.get('x', { size: PAGE } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(c.has('x')).toBe(false);
    expect(c.stats.arena.buffers).toBe(0);
  });

  it('an empty value is an entry of length 0', () => {
    using c = cache(64);
    c.get('e', () => new Uint8Array(0)).release();
    using h = c.get('e', () => new Uint8Array(0));
    expect(h.outcome).toBe('hit');
    expect(h.bytes.length).toBe(0);
  });
});

describe('VolatileCache: misbehaving and re-entrant producers (issue 16 F6)', () => {
  it('a detached view, a Proxy or a lying subclass: coded errors, and no span leaks (40+ calls)', () => {
    using c = new VolatileCache<string>({ budget: 8 * PAGE, arenaSize: 8 * PAGE, pagewise: pw, decayMs: -1 });
    const detached = () => {
      const u = new Uint8Array(2 * PAGE);
      structuredClone(u.buffer, { transfer: [u.buffer] });
      return u;
    };
    const proxy = () => new Proxy(new Uint8Array(PAGE), { get: (t, p) => (p === 'length' ? 1e9 : Reflect.get(t, p)) });
    class Liar extends Uint8Array {
      override get length() {
        return 1e9;
      }
    }
    for (let i = 0; i < 50; i++) {
      let err: unknown;
      try {
        c.get(`d${i}`, detached);
      } catch (e) {
        err = e;
      }
      expect((err as CodedError).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(() => c.get(`p${i}`, proxy)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      using h = c.get(`l${i}`, () => new Liar(3 * PAGE).fill(4));
      expect(h.bytes.length).toBe(3 * PAGE); // its true length
      expect(allEqual(h.bytes, 4)).toBe(true);
    }
    // Only the valid (Liar) entries hold spans.
    expect(c.stats.arena.buffers).toBe(c.size);
    expect(c.stats.heldBytes).toBe(0);
    c.flush();
    expect(c.stats.arena.pinnedBytes).toBe(0);
    // The arena is not full: a full-size value still fits.
    c.get('big', () => new Uint8Array(8 * PAGE)).release();
  });

  it('a value detached by the dispose callback its own set() runs: a coded error, no entry of the wrong length, no span leak', () => {
    let victim: Uint8Array | undefined;
    using c = new VolatileCache<string>({
      budget: 8 * PAGE,
      arenaSize: 8 * PAGE,
      pagewise: pw,
      decayMs: -1,
      dispose: () => {
        if (victim !== undefined) structuredClone(victim.buffer, { transfer: [victim.buffer as ArrayBuffer] });
      },
    });
    for (const length of [200, 3 * PAGE]) {
      c.set('k', pattern(length, 1));
      victim = pattern(length, 2);
      expect(() => c.set('k', victim)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
      victim = undefined;
      expect(c.has('k')).toBe(false); // the old entry was replaced (disposed), the new one not kept
      expect(c.stats.arena.buffers).toBe(0);
      expect(c.stats.bytes).toBe(0);
    }
  });

  it('a subclass whose buffer getter lies about a detached buffer, and an async produce: coded errors, no span leaks, no unhandled rejection', async () => {
    using c = new VolatileCache<string>({ budget: 16 * PAGE, arenaSize: 16 * PAGE, pagewise: pw, decayMs: -1 });
    const realBuffer = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'buffer')!.get!;
    class LyingBuffer extends Uint8Array {
      override get buffer(): ArrayBuffer {
        return new ArrayBuffer(8);
      }
    }
    const lying = () => {
      const u = new LyingBuffer(PAGE);
      const ab = realBuffer.call(u) as ArrayBuffer;
      structuredClone(ab, { transfer: [ab] });
      return u;
    };
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    try {
      for (let i = 0; i < 40; i++) {
        expect(() => c.get(`l${i}`, lying)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
        expect(() => c.get(`a${i}`, (async () => Promise.reject(new Error('async produce'))) as never)).toThrow(
          expect.objectContaining({ code: 'ERR_CACHE_ASYNC_PRODUCE', message: expect.stringContaining('cache.fetch(key)') }),
        );
      }
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
    expect(c.stats.arena.buffers).toBe(0);
    c.get('big', () => new Uint8Array(16 * PAGE)).release();
  });

  it('a get() of the same key from inside its produce throws ERR_CACHE_REENTRANT_GET; nothing is orphaned', () => {
    using c = cache(64);
    let inner: unknown;
    const h = c.get('k', (key) => {
      try {
        c.get(key, () => new Uint8Array(3 * PAGE));
      } catch (e) {
        inner = e;
      }
      return new Uint8Array(PAGE).fill(1);
    });
    expect((inner as CodedError).code).toBe('ERR_CACHE_REENTRANT_GET');
    h.release();
    expect(c.stats).toMatchObject({ entries: 1, bytes: PAGE });
    c.clear();
    expect(c.stats).toMatchObject({ entries: 0, bytes: 0, arena: { buffers: 0 } });
    // Other keys may be produced from inside a produce.
    using h2 = c.get('outer', () => {
      c.get('inner', () => new Uint8Array(PAGE).fill(2)).release();
      return new Uint8Array(PAGE).fill(3);
    });
    expect(allEqual(h2.bytes, 3)).toBe(true);
    expect(c.has('inner')).toBe(true);
  });

  it("during regeneration, a re-entrant get() of the key never returns 'hit' with old bytes", async () => {
    using c = cache(64);
    c.get('r', () => new Uint8Array(PAGE).fill(1)).release();
    await dropReleased(c);
    const seen: unknown[] = [];
    const h = c.get('r', () => {
      try {
        const inner = c.get('r', () => new Uint8Array(PAGE).fill(9));
        seen.push(inner.outcome);
        inner.release();
      } catch (e) {
        seen.push((e as CodedError).code);
      }
      seen.push(c.peek('r'));
      return new Uint8Array(PAGE).fill(2);
    });
    expect(seen).toEqual(['ERR_CACHE_REENTRANT_GET', undefined]);
    expect(h.outcome).toBe('purged');
    expect(allEqual(h.bytes, 2)).toBe(true);
    h.release();
  });

  it('a producer that deletes or clears its own entry during regeneration, then throws, leaks nothing', async () => {
    using c = cache(64);
    for (const op of ['delete', 'clear'] as const) {
      c.get('z', () => new Uint8Array(PAGE)).release();
      await dropReleased(c);
      expect(() =>
        c.get('z', () => {
          if (op === 'delete') c.delete('z');
          else c.clear();
          throw new Error('late');
        }),
      ).toThrow('late');
      expect(c.stats).toMatchObject({ entries: 0, bytes: 0, pinnedBytes: 0, arena: { buffers: 0 } });
    }
  });
});

describe('VolatileCache: memory pressure', () => {
  it("moderate evicts unpinned entries down to the low watermark; critical drops every unpinned entry", async () => {
    using c = new VolatileCache<string>({ budget: 16 * PAGE, lowWatermark: 4 * PAGE, arenaSize: 64 * PAGE, pagewise: pw, decayMs: -1, unpinDelayMs: -1 });
    const produce = produceFor([]);
    for (const k of ['a', 'b', 'c', 'd', 'e']) c.get(k, produce).release();
    const held = c.get('f', produce);
    c.flush(); // the hot set lets go of its views; then the engine collects them (issue 22)
    await collectViews(c.arena);
    c.handlePressure('moderate');
    // Least recently used first; 'f' is pinned and stays.
    expect([...c.keys()]).toEqual(['f', 'e']);
    expect(c.stats.arena).toMatchObject({ softUnpinnedBytes: 0, volatileBytes: 2 * PAGE });
    await collectViews(c.arena);
    c.handlePressure('critical');
    expect([...c.keys()]).toEqual(['f']);
    expect(held.bytes).toEqual(pattern(2 * PAGE - 17, 102));
    held.release();
    expect(() => c.handlePressure('low' as 'moderate')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('follows a PressureSource (an EventEmitter) until close()', () => {
    const source = new EventEmitter();
    const c = new VolatileCache<string>({ budget: 16 * PAGE, pagewise: pw, decayMs: -1, unpinDelayMs: -1, pressure: source });
    c.get('a', produceFor([])).release();
    source.emit('pressure', { level: 'critical', source: 'test' });
    expect(c.size).toBe(0);
    expect(c.stats.arena.pressureEvents).toBe(1);
    c.close();
    expect(source.listenerCount('pressure')).toBe(0);
  });
});

describe('VolatileCache: handles', () => {
  it('CacheHandle cannot be constructed by user code', () => {
    expect(() => new (CacheHandle as unknown as new () => unknown)()).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_CONSTRUCTOR' }));
  });
});

describe('option typos (issue 15)', () => {
  function err(fn: () => unknown): CodedError | undefined {
    try {
      fn();
    } catch (e) {
      return e as CodedError;
    }
    return undefined;
  }

  it('VolatileCache refuses unknown option keys, naming the key with a did-you-mean, and makes no arena', () => {
    const e = err(() => new VolatileCache({ budgte: PAGE, pagewise: pw } as never));
    expect(e?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(e?.message).toMatch(/'budgte'/);
    expect(e?.message).toMatch(/did you mean 'budget'/);
    const arenaTypo = err(() => new VolatileCache({ budget: PAGE, freeDelayMS: 0, pagewise: pw } as never));
    expect(arenaTypo?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(arenaTypo?.message).toMatch(/did you mean 'freeDelayMs'/);
    // 'size' is the arena's key, not the cache's (it is arenaSize here).
    expect(err(() => new VolatileCache({ size: PAGE, pagewise: pw } as never))?.code).toBe('ERR_INVALID_ARG_VALUE');
    // Every documented key is accepted.
    using c = new VolatileCache({ budget: 4 * PAGE, max: 3, lowWatermark: PAGE, arenaSize: 16 * PAGE, pagewise: pw, decayMs: -1, freeDelayMs: 0, unpinDelayMs: -1, unpinMaxBytes: PAGE, zero: true, strict: false, quarantine: true, name: 'typo-test', pressure: new EventEmitter() });
    expect(c.get('k', () => new Uint8Array([1])).outcome).toBe('miss');
  });

  it('with options.arena, the options of the arena it would make are refused rather than ignored', async () => {
    const { VolatileArena } = await import('../lib/index');
    using a = new VolatileArena({ size: 16 * PAGE, pagewise: pw });
    for (const extra of [{ zero: true }, { arenaSize: PAGE }, { decayMs: 0 }, { pagewise: pw }]) {
      const e = err(() => new VolatileCache({ arena: a, ...extra }));
      expect(e?.code, JSON.stringify(Object.keys(extra))).toBe('ERR_INVALID_ARG_VALUE');
      expect(e?.message).toMatch(new RegExp(`'${Object.keys(extra)[0]}'`));
    }
    using c = new VolatileCache({ arena: a, budget: 4 * PAGE, pressure: new EventEmitter() });
    expect(c.arena).toBe(a);
  });
});

describe('Node async work on a released entry (issue 16 F3, default options)', () => {
  it('crypto.randomFill still writing into an evicted entry never reaches the entry that reuses the memory', async () => {
    using c = new VolatileCache<string>({ budget: 64 * PAGE, arenaSize: 128 * PAGE, pagewise: pw });
    const size = 32 * PAGE;
    for (let round = 0; round < 3; round++) {
      const h = c.get(`a${round}`, () => new Uint8Array(size));
      const done = new Promise<void>((resolve, reject) => crypto.randomFill(h.bytes, (err) => (err ? reject(err) : resolve())));
      h.release();
      expect(c.delete(`a${round}`)).toBe(true); // freed while randomFill may still run
      const h2 = c.get(`b${round}`, { size, fill: (t) => t.fill(0x33) });
      await done;
      expect(allEqual(h2.bytes, 0x33)).toBe(true);
      h2.release();
      c.delete(`b${round}`);
    }
    expect(c.stats.arena.quarantinedBytes).toBeGreaterThan(0);
  });
});
