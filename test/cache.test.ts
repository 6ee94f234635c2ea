import { describe, expect, it } from 'vitest';
import { type CodedError, VolatileCache } from '../lib/index';
import { PAGE, pattern, pw } from './helpers';

function cache(budgetPages: number, arenaPages = 4 * budgetPages): VolatileCache<string> {
  return new VolatileCache<string>({ budget: budgetPages * PAGE, arenaSize: arenaPages * PAGE, pagewise: pw, decayMs: -1 });
}

const produceFor = (calls: string[], pages = 2) => (key: string) => {
  calls.push(key);
  return pattern(pages * PAGE - 17, key.charCodeAt(0));
};

describe('VolatileCache', () => {
  it('miss, then hit with byte-exact content; purged entries are regenerated', () => {
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
    c.arena.purge();
    {
      using h = c.get('a', produce);
      expect(h.outcome).toBe('purged');
      expect(h.bytes).toEqual(pattern(2 * PAGE - 17, 97));
    }
    expect(calls).toEqual(['a', 'a']);
    expect(c.stats).toMatchObject({ entries: 1, hits: 1, misses: 1, purged: 1, evictions: 0, pinnedBytes: 0, bytes: 2 * PAGE });
  });

  it('handles nest: the entry stays pinned (and purge cannot touch it) until the last release', () => {
    using c = cache(16);
    const calls: string[] = [];
    const h1 = c.get('k', produceFor(calls));
    const h2 = c.get('k', produceFor(calls));
    expect(h2.outcome).toBe('hit');
    h1.release();
    h1.release(); // idempotent
    expect(() => h1.bytes).toThrow(expect.objectContaining({ code: 'ERR_HANDLE_RELEASED' }));
    c.arena.purge();
    expect(h2.bytes).toEqual(pattern(2 * PAGE - 17, 107));
    const view = h2.bytes;
    h2.release();
    expect(view.length).toBe(2 * PAGE - 17); // released, not volatile yet: still the entry's own bytes
    c.arena.flush();
    expect(view.length).toBe(0); // volatile: stale view, nothing to see
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
    using c = new VolatileCache<string>({ budget: 1 << 30, arenaSize: 4 * PAGE, pagewise: pw, decayMs: -1 });
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

  it('a producer that throws leaves no entry behind', () => {
    using c = cache(8);
    expect(() =>
      c.get('bad', () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(c.has('bad')).toBe(false);
    c.get('p', produceFor([])).release();
    c.arena.purge();
    expect(() =>
      c.get('p', () => {
        throw new Error('again');
      }),
    ).toThrow('again');
    expect(c.has('p')).toBe(false);
    expect(c.stats.arena.buffers).toBe(0);
    let err: unknown;
    try {
      c.get('q', () => 'nope' as unknown as Uint8Array);
    } catch (e) {
      err = e;
    }
    expect((err as CodedError).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('a regenerated entry may change size', () => {
    using c = cache(16);
    c.get('s', () => new Uint8Array(PAGE).fill(1)).release();
    c.arena.purge();
    using h = c.get('s', () => new Uint8Array(3 * PAGE).fill(2));
    expect(h.outcome).toBe('purged');
    expect(h.bytes.length).toBe(3 * PAGE);
    expect(h.bytes.every((b) => b === 2)).toBe(true);
    expect(c.stats.bytes).toBe(3 * PAGE);
  });
});
