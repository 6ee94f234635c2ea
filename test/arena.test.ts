import * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CANARY_WORDS } from '../lib/volatile/buffer';
import { type CodedError, VolatileArena, type VolatileArenaOptions, VolatileCache } from '../lib/index';
import { allEqual, collectViews, onKernel, PAGE, pattern, pw } from './helpers';
import { effectiveMemoryLimit } from '../lib/cgroup';
import { spyPagewise } from './spy-backend';

function arena(pages = 64, options: Omit<VolatileArenaOptions, 'size' | 'pagewise'> = {}): VolatileArena {
  return new VolatileArena({ size: pages * PAGE, pagewise: pw, decayMs: -1, ...options });
}

/** Wait (bounded) until cond() holds; the machine may be loaded, so no fixed sleeps. */
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as CodedError).code;
  }
  return undefined;
}

describe('VolatileBuffer pin / unpin', () => {
  it('pin with no pressure: intact and byte-exact', () => {
    using a = arena();
    const b = a.alloc(3 * PAGE + 100);
    expect(b.length).toBe(3 * PAGE + 100);
    expect(b.capacity).toBe(4 * PAGE);
    expect(b.bytes.length).toBe(3 * PAGE + 100);
    const data = pattern(b.length, 3);
    // The first word of every page is what the canary replaces: make it nonzero and distinctive.
    b.bytes.set(data);
    b.unpin();
    expect(b.state).toBe('unpinned');
    expect(b.pin()).toBe('intact');
    expect(b.bytes).toEqual(data);
    expect(a.stats.intactPins).toBe(1);
  });

  it('unpin, deterministic purge, pin -> purged (and usable again)', async () => {
    using a = arena();
    const b = a.alloc(4 * PAGE);
    b.bytes.set(pattern(4 * PAGE, 5));
    b.unpin();
    await collectViews(a);
    expect(a.purge()).toBe(4 * PAGE);
    expect(b.pin()).toBe('purged');
    expect(b.state).toBe('pinned');
    b.bytes.set(pattern(4 * PAGE, 6));
    b.unpin();
    expect(b.pin()).toBe('intact');
    expect(b.bytes).toEqual(pattern(4 * PAGE, 6));
    const s = a.stats;
    expect(s.purgedPins).toBe(1);
    expect(s.intactPins).toBe(1);
    expect(s.pins).toBe(2);
  });

  it('a buffer with only some pages purged reports purged, never intact', async () => {
    using a = arena();
    for (let first = 0; first < 4; first++) {
      for (let count = 1; first + count <= 4; count++) {
        const b = a.alloc(4 * PAGE);
        const data = pattern(4 * PAGE, first * 4 + count);
        b.bytes.set(data);
        b.unpin();
        await collectViews(a);
        expect(a.purge({ offset: b.offset + first * PAGE, length: count * PAGE })).toBe(count * PAGE);
        expect(b.pin()).toBe('purged');
        // The pages outside the purged range kept their content; the dropped ones read zero.
        const bytes = b.bytes;
        for (let p = 0; p < 4; p++) {
          const page = bytes.subarray(p * PAGE, (p + 1) * PAGE);
          if (p >= first && p < first + count) expect(allEqual(page, 0)).toBe(true);
          else expect(page).toEqual(data.subarray(p * PAGE, (p + 1) * PAGE));
        }
        b.free();
      }
    }
    expect(a.stats.intactPins).toBe(0);
  });

  it('bytes throws a coded error when unpinned or freed; a kept view is never detached and never shows canaries or a new owner', async () => {
    using a = arena();
    const b = a.alloc(2 * PAGE);
    let view: Uint8Array | undefined = b.bytes;
    let sub: Uint8Array | undefined = view.subarray(10, 20);
    view.fill(7);
    b.unpin();
    // The view is still reachable: the span is held back (ordinary memory, no canary).
    a.flush();
    expect(b.state).toBe('unpinned');
    expect(a.stats.heldBytes).toBe(2 * PAGE);
    expect(a.stats.heldBuffers).toBe(1);
    expect(view.length).toBe(2 * PAGE);
    expect(allEqual(view, 7)).toBe(true);
    expect(allEqual(sub, 7)).toBe(true);
    expect(code(() => b.bytes)).toBe('ERR_BUFFER_UNPINNED');
    expect(code(() => b.unpin())).toBe('ERR_BUFFER_UNPINNED');
    // A re-pin while the view lives hands back the same view (no new ArrayBuffer).
    expect(b.pin()).toBe('intact');
    expect(a.stats.heldBytes).toBe(0);
    expect(b.bytes).toBe(view);
    expect(code(() => b.pin())).toBe('ERR_BUFFER_PINNED');
    b.unpin();
    view = sub = undefined;
    await collectViews(a);
    expect(a.flush()).toBe(2 * PAGE);
    expect(b.state).toBe('volatile');
    expect(b.pin()).toBe('intact');
    const view2 = b.bytes;
    expect(allEqual(view2, 7)).toBe(true);
    b.free();
    // Freed while its view lives: quarantined, the view still shows this owner's bytes.
    expect(a.stats.quarantinedBytes).toBe(2 * PAGE);
    expect(code(() => b.bytes)).toBe('ERR_BUFFER_FREED');
    expect(code(() => b.pin())).toBe('ERR_BUFFER_FREED');
    expect(code(() => b.unpin())).toBe('ERR_BUFFER_FREED');
    b.free(); // idempotent
    const c = a.alloc(2 * PAGE);
    expect(c.offset).not.toBe(b.offset);
    c.bytes.fill(0x42);
    expect(view2.length).toBe(2 * PAGE);
    expect(allEqual(view2, 7)).toBe(true);
  });

  it("unpinning or freeing one buffer leaves every other buffer's view attached and intact", async () => {
    using a = arena(16);
    const bufs = [a.alloc(PAGE), a.alloc(3 * PAGE), a.alloc(2 * PAGE)];
    for (const [i, b] of bufs.entries()) b.bytes.fill(i + 1);
    bufs[1].unpin();
    await collectViews(a);
    const views = [bufs[0].bytes, bufs[2].bytes];
    expect(a.flush()).toBe(3 * PAGE);
    expect(bufs[1].state).toBe('volatile');
    expect(allEqual(views[0], 1)).toBe(true);
    expect(allEqual(views[1], 3)).toBe(true);
    bufs[0].free();
    expect(views[0].length).toBe(PAGE);
    expect(allEqual(views[0], 1)).toBe(true);
    views[0] = new Uint8Array(0);
    views[1] = bufs[2].bytes;
    expect(views[1].length).toBe(2 * PAGE);
    expect(bufs[1].pin()).toBe('intact');
    expect(allEqual(bufs[1].bytes, 2)).toBe(true);
    expect(allEqual(views[1], 3)).toBe(true);
  });

  it('the saved word may equal the canary: pin still reports intact and restores it', async () => {
    using a = arena();
    const b = a.alloc(2 * PAGE);
    // In a function of its own: a local of this async function would keep the view alive across awaits.
    ((bytes: Uint8Array) => {
      const words = new Int32Array(bytes.buffer, bytes.byteOffset, (2 * PAGE) / 4);
      words[0] = CANARY_WORDS[0]; // the canary itself
      words[PAGE / 4] = CANARY_WORDS[1]; // the alternate canary
    })(b.bytes);
    const before = b.bytes.slice();
    b.unpin();
    await collectViews(a);
    expect(a.flush()).toBe(2 * PAGE);
    expect(b.pin()).toBe('intact');
    expect(b.bytes.slice()).toEqual(before);
    const backend = pw.backend as { reclaim?: (bytes: number) => number };
    if (backend.reclaim) {
      // The simulator sees a write only as changed bytes: the pin CAS must have changed them,
      // or the pinned page would still count as lazy-free and be reclaimed here.
      backend.reclaim(2 ** 40);
      expect(b.bytes.slice()).toEqual(before);
    }
    b.unpin();
    await collectViews(a);
    a.purge();
    expect(b.pin()).toBe('purged');
  });

  it('zero: true makes purged pins and reused spans read zeros', async () => {
    using a = arena(16, { zero: true });
    const b = a.alloc(2 * PAGE);
    expect(allEqual(b.bytes, 0)).toBe(true);
    b.bytes.fill(0xee);
    b.free();
    await collectViews(a);
    const c = a.alloc(2 * PAGE); // same span, MADV_FREE'd but not dropped
    expect(c.offset).toBe(b.offset);
    expect(allEqual(c.bytes, 0)).toBe(true);
    c.bytes.fill(0xdd);
    c.unpin();
    await collectViews(a);
    a.purge();
    expect(c.pin()).toBe('purged');
    expect(allEqual(c.bytes, 0)).toBe(true);
  });

  it('using frees the buffer; close() frees everything and never detaches or changes a view still held', () => {
    const a = arena();
    let view: Uint8Array;
    {
      using b = a.alloc(PAGE);
      view = b.bytes;
      view.fill(3);
      expect(a.stats.buffers).toBe(1);
    }
    expect(view.length).toBe(PAGE);
    expect(a.stats.buffers).toBe(0);
    expect(a.stats.quarantinedBytes).toBe(PAGE);
    const c = a.alloc(PAGE);
    const v = c.bytes;
    v.fill(7);
    a.close();
    // Views still reachable keep the memory as it was (Node may still be sending it), owned by no one.
    expect(allEqual(v, 7)).toBe(true);
    expect(allEqual(view, 3)).toBe(true);
    expect(code(() => c.bytes)).toBe('ERR_BUFFER_FREED');
    expect(code(() => a.alloc(PAGE))).toBe('ERR_ARENA_CLOSED');
    a.close();
  });

  it('pinned buffers survive purge(); stats follow every transition', async () => {
    using a = arena(32);
    const p = a.alloc(4 * PAGE);
    const u = a.alloc(2 * PAGE);
    p.bytes.set(pattern(4 * PAGE, 1));
    u.bytes.set(pattern(2 * PAGE, 2));
    u.unpin();
    await collectViews(a);
    let s = a.stats;
    expect(s).toMatchObject({ size: 32 * PAGE, pinnedBytes: 4 * PAGE, unpinnedBytes: 2 * PAGE, freeBytes: 26 * PAGE, buffers: 2 });
    expect(a.purge()).toBe(2 * PAGE);
    expect(p.bytes).toEqual(pattern(4 * PAGE, 1));
    expect(u.pin()).toBe('purged');
    u.free();
    await collectViews(a);
    s = a.stats;
    expect(s).toMatchObject({ pinnedBytes: 4 * PAGE, unpinnedBytes: 0, freeBytes: 28 * PAGE, buffers: 1, allocations: 2, unpins: 1, purgedPins: 1 });
  });
});

describe('VolatileArena allocator', () => {
  it('validates sizes and throws ERR_ARENA_FULL', () => {
    using a = arena(8);
    expect(code(() => a.alloc(0))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => a.alloc(-1))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => a.alloc(1.5))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => a.alloc('1' as unknown as number))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => a.alloc(9 * PAGE))).toBe('ERR_OUT_OF_RANGE');
    const x = a.alloc(3 * PAGE);
    a.alloc(3 * PAGE);
    expect(code(() => a.alloc(3 * PAGE))).toBe('ERR_ARENA_FULL');
    x.free();
    expect(a.alloc(3 * PAGE).offset).toBe(0);
    expect(code(() => new VolatileArena({ size: 0, pagewise: pw }))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => new VolatileArena({ decayMs: -2, pagewise: pw }))).toBe('ERR_OUT_OF_RANGE');
  });

  it('property: spans never overlap, and freeing everything coalesces back to one extent', () => {
    const pages = 64;
    using a = arena(pages);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ alloc: fc.integer({ min: 1, max: 12 * PAGE }) }), fc.record({ free: fc.nat() })), {
          maxLength: 60,
        }),
        (ops) => {
          const live: { offset: number; capacity: number; free(): void }[] = [];
          for (const op of ops) {
            if ('alloc' in op) {
              try {
                const b = a.alloc(op.alloc);
                expect(b.offset % PAGE).toBe(0);
                expect(b.capacity).toBe(Math.ceil(op.alloc / PAGE) * PAGE);
                for (const o of live) {
                  expect(b.offset + b.capacity <= o.offset || o.offset + o.capacity <= b.offset).toBe(true);
                }
                live.push(b);
              } catch (err) {
                expect((err as CodedError).code).toBe('ERR_ARENA_FULL');
                const used = live.reduce((n, b) => n + b.capacity, 0);
                // First fit fails only if no free extent is large enough.
                const largest = Math.max(0, ...a.freeSpans().map(([, n]) => n));
                expect(largest).toBeLessThan(Math.ceil(op.alloc / PAGE) * PAGE);
                expect(used).toBeLessThanOrEqual(pages * PAGE);
              }
            } else if (live.length > 0) {
              live.splice(op.free % live.length, 1)[0].free();
            }
            // The free list is sorted, coalesced, and accounts for every page.
            const spans = a.freeSpans();
            for (let i = 1; i < spans.length; i++) expect(spans[i - 1][0] + spans[i - 1][1]).toBeLessThan(spans[i][0]);
            const free = spans.reduce((n, [, len]) => n + len, 0);
            expect(free + live.reduce((n, b) => n + b.capacity, 0)).toBe(pages * PAGE);
            expect(a.stats.freeBytes).toBe(free);
          }
          for (const b of live) b.free();
          expect(a.freeSpans()).toEqual([[0, pages * PAGE]]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('decay', () => {
  it('decayMs 0 DONTNEEDs at once: the span reads zero and is no longer resident', () => {
    // quarantine: false: this test is about what happens to freed spans, not about views (see 'issue 22').
    using a = arena(8, { decayMs: 0, quarantine: false });
    const b = a.alloc(2 * PAGE);
    b.bytes.fill(9);
    b.free();
    expect(a.stats.decayedBytes).toBe(2 * PAGE);
    const c = a.alloc(2 * PAGE);
    expect(allEqual(c.bytes, 0)).toBe(true);
  });

  it('a freed span is DONTNEEDed after the decay period, by an unref()d timer', async () => {
    // quarantine: false: this test is about what happens to freed spans, not about views (see 'issue 22').
    using a = arena(8, { decayMs: 30, quarantine: false });
    const b = a.alloc(2 * PAGE);
    b.bytes.fill(9);
    b.free();
    expect(a.stats.decayedBytes).toBe(0);
    await waitFor(() => a.stats.decayedBytes !== 0);
    // Only the freed span: the untouched rest of the arena is never advised.
    expect(a.stats.decayedBytes).toBe(2 * PAGE);
    const c = a.alloc(2 * PAGE);
    expect(allEqual(c.bytes, 0)).toBe(true);
  });

  it('decayMs -1 never DONTNEEDs; decayNow() does it on request', async () => {
    // quarantine: false: this test is about what happens to freed spans, not about views (see 'issue 22').
    using a = arena(8, { decayMs: -1, quarantine: false });
    const b = a.alloc(PAGE);
    b.bytes.fill(9);
    b.free();
    await new Promise((r) => setTimeout(r, 30));
    expect(a.stats.decayedBytes).toBe(0);
    expect(a.decayNow()).toBe(PAGE); // the freed span only
    expect(a.stats.decayedBytes).toBe(PAGE);
  });
});

describe('freeDelayMs: freed spans stay ordinary memory for a while', () => {
  it('counts pending bytes, forgets the part an allocation reuses, and MADV_FREEs the rest later', async () => {
    // Tests reuse of a freed span at once: quarantine off (the simulator cannot tell whether Node work is in flight, so by default it quarantines every viewed span).
    using a = arena(16, { freeDelayMs: 40, quarantine: false });
    const b = a.alloc(4 * PAGE);
    b.bytes.fill(7);
    b.free();
    expect(a.stats.pendingFreeBytes).toBe(4 * PAGE);
    const c = a.alloc(PAGE); // first fit: the first page of the freed span, reused with no syscall
    expect(c.offset).toBe(0);
    expect(a.stats.pendingFreeBytes).toBe(3 * PAGE);
    expect(c.bytes[0]).toBe(7); // never freed: the previous owner's bytes (zero: false)
    await waitFor(() => a.stats.pendingFreeBytes === 0);
    c.free();
    expect(a.stats.pendingFreeBytes).toBe(PAGE);
    expect(a.decayNow()).toBe(4 * PAGE); // the four pages freed, nothing else
    expect(a.stats.pendingFreeBytes).toBe(0); // DONTNEED supersedes a pending MADV_FREE
  });

  it('an allocation over several freed spans forgets each part it reuses, and only those', () => {
    using a = arena(16, { freeDelayMs: 60_000, quarantine: false });
    const [b0, b1, b2, b3] = [0, 1, 2, 3].map((i) => {
      const b = a.alloc(2 * PAGE);
      b.bytes.fill(10 + i);
      return b;
    });
    b1.free();
    b0.free();
    b2.free(); // three pending ranges, freed out of address order: pages 2-3, 0-1, 4-5
    expect(a.stats.pendingFreeBytes).toBe(6 * PAGE);
    const c = a.alloc(5 * PAGE); // pages 0-4: two whole ranges and the first page of the third
    expect(c.offset).toBe(0);
    expect(a.stats.pendingFreeBytes).toBe(PAGE);
    expect([c.bytes[0], c.bytes[2 * PAGE], c.bytes[4 * PAGE]]).toEqual([10, 11, 12]); // reused, never advised
    expect(a.decayNow()).toBe(PAGE); // page 5 alone was still freed content
    expect(a.stats.pendingFreeBytes).toBe(0);
    expect(b3.bytes[0]).toBe(13);
    c.free();
    b3.free();
  });

  it.runIf(onKernel)('the kernel sees the span as LazyFree only after the delay', async () => {
    // quarantine: false: this test is about what happens to freed spans, not about views (see 'issue 22').
    using a = arena(2048, { freeDelayMs: 60, quarantine: false });
    const b = a.alloc(1024 * PAGE);
    b.bytes.fill(1);
    const before = a.kernelLazyFreeBytes() as number;
    b.free();
    expect((a.kernelLazyFreeBytes() as number) - before).toBeLessThan(256 * PAGE);
    await waitFor(() => a.stats.pendingFreeBytes === 0);
    expect((a.kernelLazyFreeBytes() as number) - before).toBeGreaterThan(512 * PAGE);
  });

  it('rejects a negative or fractional delay', () => {
    expect(() => new VolatileArena({ size: PAGE, pagewise: pw, freeDelayMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new VolatileArena({ size: PAGE, pagewise: pw, freeDelayMs: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

describe('kernel view', () => {
  it.runIf(onKernel)('LazyFree in smaps_rollup counts unpinned memory', async () => {
    using a = arena(1024);
    const b = a.alloc(1024 * PAGE);
    b.bytes.fill(1);
    const before = a.kernelLazyFreeBytes();
    expect(before).toBeTypeOf('number');
    b.unpin();
    await collectViews(a);
    a.flush();
    const after = a.kernelLazyFreeBytes() as number;
    // The kernel batches its counters: allow slack, but most of the 4 MiB must show.
    expect(after - (before as number)).toBeGreaterThan(512 * PAGE);
  });

  it.runIf(!onKernel)('kernelLazyFreeBytes is undefined on the simulator', () => {
    using a = arena(4);
    expect(a.kernelLazyFreeBytes()).toBeUndefined();
  });
});

describe('two-stage unpin: pinned -> unpinned (userspace) -> volatile (kernel) -> pinned', () => {
  it('unpinned -> pinned costs no syscall and no CAS; the kept view shows the own bytes, never a canary', () => {
    const spy = spyPagewise();
    using a = new VolatileArena({ size: 16 * PAGE, pagewise: spy.pagewise, decayMs: -1, unpinDelayMs: -1 });
    const b = a.alloc(3 * PAGE);
    const data = pattern(3 * PAGE, 4);
    const view = b.bytes;
    view.set(data);
    const before = spy.total();
    for (let i = 0; i < 100; i++) {
      b.unpin();
      expect(b.state).toBe('unpinned');
      expect(a.stats).toMatchObject({ pinnedBytes: 0, unpinnedBytes: 3 * PAGE, softUnpinnedBytes: 3 * PAGE, volatileBytes: 0 });
      // First words of every page unchanged: no canary was written. (Buffer.compare: a deep toEqual of
      // 12 KiB per round took most of a minute on a loaded machine.)
      expect(Buffer.compare(view, data), `round ${i}`).toBe(0);
      expect(b.pin()).toBe('intact');
    }
    expect(spy.total()).toBe(before); // no madvise at all
    expect(b.bytes).toBe(view); // the same view: no new ArrayBuffer per hit
    expect(a.stats).toMatchObject({ pins: 100, softPins: 100, intactPins: 100, volatileBatches: 0, pinnedBytes: 3 * PAGE });
  });

  it('flush() makes unpinned buffers volatile in one batch: canaries, one MADV_FREE per contiguous run; a span whose view is reachable is held', async () => {
    const spy = spyPagewise();
    using a = new VolatileArena({ size: 32 * PAGE, pagewise: spy.pagewise, decayMs: -1, unpinDelayMs: -1 });
    const bufs = [a.alloc(2 * PAGE), a.alloc(PAGE), a.alloc(3 * PAGE), a.alloc(PAGE)];
    bufs.forEach((b, i) => b.bytes.set(pattern(b.length, 10 + i)));
    // 0, 1 and 3 unpinned; 2 stays pinned: runs [0, 3 pages) and [6, 7 pages).
    for (const i of [3, 0, 1]) bufs[i].unpin();
    // Still reachable (made in this task): held back, not advised, nothing changed.
    expect(a.flush()).toBe(4 * PAGE);
    expect(a.stats).toMatchObject({ heldBytes: 4 * PAGE, softUnpinnedBytes: 4 * PAGE, volatileBytes: 0, volatileBatches: 0 });
    expect(bufs.map((b) => b.state)).toEqual(['unpinned', 'unpinned', 'pinned', 'unpinned']);
    // Once collected, held spans become volatile in one batch by themselves.
    spy.log.length = 0;
    await collectViews(a);
    expect(a.stats).toMatchObject({ heldBytes: 0, softUnpinnedBytes: 0, volatileBytes: 4 * PAGE, volatileBatches: 1, madeVolatile: 3 });
    expect(spy.log).toEqual([
      [0, 3 * PAGE, 'free'],
      [6 * PAGE, PAGE, 'free'],
    ]);
    // The same from the soft state: pin, unpin, collect, flush.
    for (const i of [3, 0, 1]) bufs[i].pin();
    for (const i of [3, 0, 1]) bufs[i].unpin();
    await collectViews(a);
    const views = bufs.map((b) => (b.pinned ? b.bytes : undefined));
    spy.log.length = 0;
    expect(a.flush()).toBe(4 * PAGE);
    expect(spy.log).toEqual([
      [0, 3 * PAGE, 'free'],
      [6 * PAGE, PAGE, 'free'],
    ]);
    // Both runs in one call: process_madvise with an iovec of two runs.
    expect(spy.batches).toEqual([2, 2]);
    for (const i of [0, 1, 3]) expect(bufs[i].state).toBe('volatile');
    expect(views[2]).toEqual(pattern(3 * PAGE, 12));
    expect(a.stats).toMatchObject({ softUnpinnedBytes: 0, volatileBytes: 4 * PAGE, unpinnedBytes: 4 * PAGE, volatileBatches: 2, madeVolatile: 6 });
    expect(a.flush()).toBe(0); // nothing left to do
    // volatile -> pinned: the CAS protocol (no syscall), intact and byte-exact.
    spy.log.length = 0;
    expect(bufs[1].pin()).toBe('intact');
    expect(bufs[1].bytes).toEqual(pattern(PAGE, 11));
    expect(spy.log).toEqual([]);
    expect(a.stats).toMatchObject({ softPins: 0, intactPins: 4, volatileBytes: 3 * PAGE, pinnedBytes: 4 * PAGE });
    // volatile -> (purged) -> pinned.
    a.purge();
    expect(bufs[0].pin()).toBe('purged');
    expect(bufs[3].pin()).toBe('purged');
  });

  it('unpinDelayMs: a buffer left unpinned becomes volatile by an unref()d timer', async () => {
    using a = arena(16, { unpinDelayMs: 20 });
    const b = a.alloc(2 * PAGE);
    b.bytes.fill(3);
    b.unpin();
    expect(b.state).toBe('unpinned');
    await collectViews();
    await waitFor(() => b.state === 'volatile');
    expect(a.stats).toMatchObject({ softUnpinnedBytes: 0, volatileBytes: 2 * PAGE, volatileBatches: 1 });
    expect(b.pin()).toBe('intact');
    expect(allEqual(b.bytes, 3)).toBe(true);
  });

  it('unpinDelayMs 0 makes the buffer volatile in unpin() itself (a never-viewed one), or as soon as its view is collected', async () => {
    using a = arena(16, { unpinDelayMs: 0 });
    const b = a.alloc(PAGE);
    b.unpin();
    expect(b.state).toBe('volatile');
    const c = a.alloc(PAGE);
    let view: Uint8Array | undefined = c.bytes;
    view.fill(4);
    c.unpin();
    expect(c.state).toBe('unpinned');
    expect(a.stats.heldBytes).toBe(PAGE);
    expect(allEqual(view, 4)).toBe(true);
    view = undefined;
    await collectViews(a);
    expect(c.state).toBe('volatile');
  });

  it('unpinMaxBytes: over the limit, the least recently unpinned become volatile, down to 7/8 of it', () => {
    using a = arena(64, { unpinDelayMs: -1, unpinMaxBytes: 16 * PAGE });
    const bufs = Array.from({ length: 6 }, () => a.alloc(4 * PAGE));
    for (const i of [0, 1, 2, 3]) bufs[i].unpin();
    expect(a.stats.volatileBytes).toBe(0); // 16 pages: at the limit, not over
    expect(bufs[0].pin()).toBe('intact'); // 0 is now the most recently unpinned
    bufs[0].unpin();
    bufs[4].unpin(); // 20 pages: over -> the least recently unpinned go until <= 14 pages are left
    expect(bufs.map((b) => b.state)).toEqual(['unpinned', 'volatile', 'volatile', 'unpinned', 'unpinned', 'pinned']);
    expect(a.stats).toMatchObject({ softUnpinnedBytes: 12 * PAGE, volatileBytes: 8 * PAGE });
  });

  it('the default bound follows the memory limit of the cgroup (or RAM)', () => {
    const limit = effectiveMemoryLimit();
    expect(limit).toBeGreaterThan(0);
    expect(limit).toBeLessThanOrEqual(os.totalmem());
  });

  it('strict: unpin() forgets the view (a re-pin makes a new one) and the span becomes volatile as soon as it is collected', async () => {
    using a = arena(16, { strict: true, unpinDelayMs: -1 });
    const b = a.alloc(PAGE);
    const view = b.bytes;
    view.fill(5);
    b.unpin();
    // Never detached: Node may still hold it.
    expect(view.length).toBe(PAGE);
    expect(b.state).toBe('unpinned');
    expect(a.stats.heldBytes).toBe(PAGE);
    expect(b.pin()).toBe('intact');
    expect(b.bytes).not.toBe(view);
    expect(allEqual(b.bytes, 5)).toBe(true);
    b.unpin();
    expect(allEqual(view, 5)).toBe(true);
  });

  it('free() from every state keeps views attached (quarantined until collected) and accounts every byte', async () => {
    using a = arena(32, { unpinDelayMs: -1 });
    const sum = () => {
      const s = a.stats;
      return s.pinnedBytes + s.softUnpinnedBytes + s.volatileBytes + s.freeBytes + s.quarantinedBytes;
    };
    const p = a.alloc(PAGE);
    const u = a.alloc(2 * PAGE);
    const v = a.alloc(3 * PAGE);
    for (const [i, b] of [p, u, v].entries()) b.bytes.fill(i + 1);
    v.unpin();
    u.unpin();
    await collectViews(a);
    a.flush();
    expect(v.state).toBe('volatile');
    const views = [p.bytes];
    expect(sum()).toBe(32 * PAGE);
    for (const b of [p, u, v]) {
      b.free();
      expect(b.state).toBe('freed');
      expect(sum()).toBe(32 * PAGE);
    }
    expect(a.stats.quarantinedBytes).toBe(PAGE); // p's view is still reachable
    expect(views[0].length).toBe(PAGE);
    expect(allEqual(views[0], 1)).toBe(true);
    views.length = 0;
    await collectViews(a);
    expect(a.stats).toMatchObject({ pinnedBytes: 0, unpinnedBytes: 0, softUnpinnedBytes: 0, volatileBytes: 0, quarantinedBytes: 0, freeBytes: 32 * PAGE, buffers: 0 });
  });

  it('freed spans go back to the kernel by default: MADV_FREE after freeDelayMs, then DONTNEED after decayMs', async () => {
    const spy = spyPagewise();
    using a = new VolatileArena({ size: 16 * PAGE, pagewise: spy.pagewise, freeDelayMs: 10, decayMs: 40, quarantine: false });
    const b = a.alloc(2 * PAGE);
    b.bytes.fill(1);
    spy.log.length = 0;
    b.free();
    expect(spy.log).toEqual([]); // a reuse within freeDelayMs would cost no syscall
    expect(a.stats.pendingFreeBytes).toBe(2 * PAGE);
    await waitFor(() => a.stats.decayedBytes === 2 * PAGE);
    expect(spy.log).toEqual([
      [b.offset, 2 * PAGE, 'free'],
      [b.offset, 2 * PAGE, 'dontneed'],
    ]);
    expect(a.stats.pendingFreeBytes).toBe(0);
  });
});

describe('views held past the bound (issue 22)', () => {
  it('the arena asks the engine for a collection itself once held bytes pass unpinMaxBytes; the spans then go volatile', async () => {
    using arena = new VolatileArena({ size: 64 * PAGE, unpinMaxBytes: 2 * PAGE, unpinDelayMs: -1, decayMs: -1, pagewise: pw });
    const bufs = Array.from({ length: 8 }, () => arena.alloc(PAGE));
    for (const b of bufs) b.bytes[0] = 1; // each exposes a view, unreachable once this task ends
    for (const b of bufs) b.unpin(); // over the bound: due at once, but held (the views are alive in this task)
    expect(arena.stats.heldBytes).toBeGreaterThan(2 * PAGE);
    expect(arena.stats.volatileBytes).toBe(0);
    // No gc() from here: only the arena's own request can get the views collected this soon.
    for (let i = 0; i < 500 && arena.stats.heldBytes > 2 * PAGE; i++) await new Promise((r) => setTimeout(r, 10));
    expect(arena.stats.collectionsRequested).toBeGreaterThan(0);
    expect(arena.stats.heldBytes).toBeLessThanOrEqual(2 * PAGE);
    expect(arena.stats.volatileBytes).toBeGreaterThanOrEqual(6 * PAGE);
    for (const b of bufs) expect(['intact', 'purged']).toContain(b.pin());
  });

  it('under the bound too: a held span goes volatile without any pressure signal or gc() from outside', async () => {
    using arena = new VolatileArena({ size: 64 * PAGE, unpinDelayMs: 10, decayMs: -1, pagewise: pw });
    const bufs = [arena.alloc(PAGE), arena.alloc(2 * PAGE)];
    for (const b of bufs) b.bytes.fill(7); // exposed
    for (const b of bufs) b.unpin();
    for (let i = 0; i < 1000 && arena.stats.volatileBytes < 3 * PAGE; i++) await new Promise((r) => setTimeout(r, 10));
    expect(arena.stats).toMatchObject({ heldBytes: 0, volatileBytes: 3 * PAGE });
    expect(arena.stats.collectionsRequested).toBeGreaterThan(0);
    for (const b of bufs) {
      if (b.pin() === 'intact') expect(allEqual(b.bytes, 7)).toBe(true);
    }
  });
});

describe('memory pressure', () => {
  it("handlePressure('moderate'): every unpinned buffer becomes volatile and freed spans are MADV_FREE'd", async () => {
    using a = arena(32, { unpinDelayMs: -1, freeDelayMs: 100_000 });
    const u = a.alloc(2 * PAGE);
    const p = a.alloc(PAGE);
    const f = a.alloc(PAGE);
    u.bytes.fill(2);
    p.bytes.fill(3);
    u.unpin();
    f.free();
    await collectViews(a);
    expect(a.stats.pendingFreeBytes).toBe(PAGE);
    a.handlePressure('moderate');
    expect(u.state).toBe('volatile');
    expect(p.state).toBe('pinned');
    expect(a.stats).toMatchObject({ softUnpinnedBytes: 0, volatileBytes: 2 * PAGE, pendingFreeBytes: 0, pressureEvents: 1 });
    expect(u.pin()).toBe('intact');
    expect(allEqual(p.bytes, 3)).toBe(true);
  });

  it("handlePressure('critical'): unpinned memory is dropped at once (pin says purged), pinned untouched", async () => {
    using a = arena(32, { unpinDelayMs: -1 });
    const u = a.alloc(2 * PAGE);
    const p = a.alloc(PAGE);
    u.bytes.fill(2);
    p.bytes.fill(3);
    u.unpin();
    const f = a.alloc(PAGE);
    f.bytes.fill(4);
    f.free();
    await collectViews(a);
    a.handlePressure('critical');
    expect(a.stats.decayedBytes).toBe(PAGE);
    expect(u.pin()).toBe('purged');
    expect(allEqual(u.bytes, 0)).toBe(true);
    expect(allEqual(p.bytes, 3)).toBe(true);
    expect(code(() => a.handlePressure('severe' as 'critical'))).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('follows a PressureSource (an EventEmitter) until close()', async () => {
    const source = new EventEmitter();
    const a = arena(16, { unpinDelayMs: -1, pressure: source });
    expect(source.listenerCount('pressure')).toBe(1);
    const b = a.alloc(PAGE);
    b.bytes.fill(9);
    b.unpin();
    await collectViews(a);
    source.emit('pressure', { level: 'moderate', source: 'test' });
    expect(b.state).toBe('volatile');
    b.pin();
    b.unpin();
    await collectViews(a);
    source.emit('pressure', { level: 'critical', source: 'test' });
    expect(b.pin()).toBe('purged');
    source.emit('pressure', { level: 'unknown', source: 'test' }); // ignored, no throw into the emitter
    a.close();
    expect(source.listenerCount('pressure')).toBe(0);
    expect(a.stats.pressureEvents).toBe(2);
    expect(code(() => new VolatileArena({ size: PAGE, pagewise: pw, pressure: {} as never }))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('option typos (issue 15)', () => {
  it('VolatileArena refuses unknown option keys with ERR_INVALID_ARG_VALUE naming the key and a did-you-mean', () => {
    let e: CodedError | undefined;
    try {
      new VolatileArena({ size: 4 * PAGE, pagewise: pw, freeDelayMS: 0 } as never);
    } catch (err) {
      e = err as CodedError;
    }
    expect(e?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(e?.message).toMatch(/unknown property 'freeDelayMS'/);
    expect(e?.message).toMatch(/did you mean 'freeDelayMs'/);
    expect(code(() => new VolatileArena({ size: 4 * PAGE, pagewise: pw, quarantined: false } as never))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => new VolatileArena({ sise: 4 * PAGE, pagewise: pw } as never))).toBe('ERR_INVALID_ARG_VALUE');
    // Every documented key is accepted.
    using a = new VolatileArena({ size: 4 * PAGE, name: 'typo-test', unpinDelayMs: 5, unpinMaxBytes: PAGE, decayMs: 10, freeDelayMs: 1, zero: true, strict: true, quarantine: false, pressure: new EventEmitter(), pagewise: pw });
    expect(a.alloc(PAGE).length).toBe(PAGE);
  });

  it('purge() refuses unknown range keys (a typo must not widen it to the whole arena)', () => {
    using a = arena(8, { unpinDelayMs: -1 });
    const keep = a.alloc(PAGE);
    keep.bytes.fill(7);
    keep.unpin();
    let e: CodedError | undefined;
    try {
      a.purge({ ofset: 4 * PAGE } as never);
    } catch (err) {
      e = err as CodedError;
    }
    expect(e?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(e?.message).toMatch(/did you mean 'offset'/);
    expect(a.stats.purgedBytes).toBe(0);
    expect(keep.state).toBe('unpinned'); // not even flushed
    expect(keep.pin()).toBe('intact');
  });
});

describe('hardening (issue 16)', () => {
  it.skipIf(!onKernel)('F1: purge() of a 32 TiB reservation visits only what was used (native: the simulator has no 2**45-byte model)', () => {
    using a = new VolatileArena({ size: 2 ** 45, pagewise: pw });
    const b = a.alloc(2 * PAGE);
    a.alloc(4096).free();
    b.unpin();
    // The freed page and the unpinned buffer: not the 32 TiB free extent around them.
    expect(a.purge()).toBe(3 * PAGE);
    expect(a.decayNow()).toBe(PAGE);
  });

  // Default options from here on: the protection is not opt-in.
  it('F3 (default options): crypto.randomFill into a freed buffer cannot overwrite the next owner', async () => {
    // 4 MiB: randomFill is still writing when the next owner fills its bytes (without the protection, 5 of 5 rounds corrupt).
    using a = arena(8192);
    const size = 1024 * PAGE;
    for (let round = 0; round < 3; round++) {
      const b1 = a.alloc(size);
      const done = new Promise<void>((resolve, reject) => crypto.randomFill(b1.bytes, (err) => (err ? reject(err) : resolve())));
      b1.free();
      expect(a.stats.quarantinedBytes).toBeGreaterThanOrEqual(size);
      const b2 = a.alloc(size);
      expect(b2.offset).not.toBe(b1.offset);
      b2.bytes.fill(0x11);
      await done;
      expect(allEqual(b2.bytes, 0x11)).toBe(true);
      b2.free();
    }
  });

  it('F3 (default options): fs.read and fs.promises read into a freed buffer cannot overwrite the next owner', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-arena-f3-'));
    const file = path.join(dir, 'data');
    const size = 64 * PAGE;
    fs.writeFileSync(file, Buffer.alloc(size, 0x5a));
    const fd = fs.openSync(file, 'r');
    try {
      using a = arena(1024);
      for (const api of ['fs.read', 'filehandle.read'] as const) {
        const b1 = a.alloc(size);
        let done: Promise<unknown>;
        if (api === 'fs.read') {
          done = new Promise((resolve, reject) => fs.read(fd, b1.bytes, 0, size, 0, (err, n) => (err ? reject(err) : resolve(n))));
        } else {
          const fh = await fs.promises.open(file, 'r');
          done = fh.read(b1.bytes, 0, size, 0).finally(() => fh.close());
        }
        b1.free();
        const b2 = a.alloc(size);
        expect(b2.offset, api).not.toBe(b1.offset);
        b2.bytes.fill(0x22);
        await done;
        expect(allEqual(b2.bytes, 0x22), api).toBe(true);
        b2.free();
      }
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!onKernel)('F3 (default options): zlib reading a freed buffer sees the old owner bytes, never the new owner, and does not abort (native: the simulator releases a view only by detaching it, and zlib aborts on a detached input)', async () => {
    using a = arena(512);
    const size = 256 * PAGE;
    // Incompressible: deflate needs many output chunks, so zlib comes back to its input
    // after free() (a detached input would abort the process in Node's zlib).
    const data = new Uint8Array(crypto.randomBytes(size));
    const b1 = a.alloc(size);
    b1.bytes.set(data);
    const done = new Promise<Buffer>((resolve, reject) => zlib.deflate(b1.bytes, (err, out) => (err ? reject(err) : resolve(out))));
    const view = b1.bytes;
    b1.free();
    expect(view.length).toBe(size); // work in flight: the view stays attached, the span is not reused
    const b2 = a.alloc(size);
    expect(b2.offset).not.toBe(b1.offset);
    b2.bytes.fill(0xaa);
    expect(zlib.inflateSync(await done)).toEqual(Buffer.from(data));
    b2.free();
  });

  it('issue 22: with no libuv request in flight, a freed span whose view is reachable is still quarantined (a Writable buffers chunks without one); reused once collected', async () => {
    using a = arena(8);
    const b1 = a.alloc(4 * PAGE);
    let view: Uint8Array | undefined = b1.bytes;
    view.fill(3);
    b1.free();
    expect(view.length).toBe(4 * PAGE);
    expect(a.stats.quarantinedBytes).toBe(4 * PAGE);
    const b2 = a.alloc(4 * PAGE);
    expect(b2.offset).not.toBe(b1.offset);
    b2.bytes.fill(4);
    expect(allEqual(view, 3)).toBe(true);
    view = undefined;
    await collectViews(a);
    expect(a.stats.quarantinedBytes).toBe(0);
    const b3 = a.alloc(4 * PAGE);
    expect(b3.offset).toBe(b1.offset);
  });

  it('F3 (default options): a synchronous alloc/free loop with Node work in flight never fails: the arena grows, then gives the regions back', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const a = arena(16);
    try {
      const pending: Array<Promise<void>> = [];
      let seen = 0;
      for (let i = 0; i < 100; i++) {
        const b = a.alloc(4 * PAGE);
        b.bytes.fill(i & 0xff);
        if (i % 2 === 0) pending.push(new Promise<void>((resolve, reject) => crypto.randomFill(b.bytes, (err) => (err ? reject(err) : resolve()))));
        b.free();
        seen = Math.max(seen, a.stats.regions);
      }
      expect(a.stats.grownRegions).toBeGreaterThan(0);
      expect(seen).toBeGreaterThan(1);
      const s = a.stats;
      expect(s.pinnedBytes + s.unpinnedBytes + s.freeBytes + s.quarantinedBytes).toBe(s.size);
      await Promise.all(pending);
      // Once every view is collected, nothing waits, and the timer unmaps the grown regions.
      await waitFor(() => {
        gc();
        return a.stats.quarantinedBytes === 0 && a.stats.regions === 1;
      }, 20_000);
      expect(a.stats.size).toBe(16 * PAGE);
      expect(a.stats.freeBytes).toBe(16 * PAGE);
      expect(a.freeSpans()).toEqual([[0, 16 * PAGE]]);
      expect(a.alloc(16 * PAGE).offset).toBe(0);
    } finally {
      a.close();
    }
  });

  it('F3 (default options): growth is bounded (64 × size): past it, ERR_ARENA_FULL says how many bytes wait and what to do', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const a = arena(4);
    try {
      const pending: Array<Promise<void>> = [];
      let err: CodedError | undefined;
      for (let i = 0; i < 100 && err === undefined; i++) {
        try {
          const b = a.alloc(4 * PAGE);
          pending.push(new Promise<void>((resolve, reject) => crypto.randomFill(b.bytes, (e) => (e ? reject(e) : resolve()))));
          b.free();
        } catch (e) {
          err = e as CodedError;
        }
      }
      expect(err?.code).toBe('ERR_ARENA_FULL');
      expect(err?.message).toMatch(/wait for their old views to be garbage-collected/);
      expect(err?.message).toMatch(/drop references/);
      expect(a.stats.regions).toBe(64);
      expect(a.stats.size).toBe(64 * 4 * PAGE);
      await Promise.all(pending);
      await waitFor(() => {
        gc();
        return a.stats.regions === 1 && a.stats.quarantinedBytes === 0;
      }, 20_000);
      expect(a.alloc(4 * PAGE).offset).toBe(0);
    } finally {
      a.close();
    }
  });

  it('F3: quarantine: false opts out (the span is reused at once even while Node work is in flight)', async () => {
    using a = arena(8, { quarantine: false });
    const b1 = a.alloc(4 * PAGE);
    const done = new Promise<void>((resolve, reject) => crypto.randomFill(b1.bytes, (err) => (err ? reject(err) : resolve())));
    b1.free();
    expect(a.stats.quarantinedBytes).toBe(0);
    expect(a.alloc(4 * PAGE).offset).toBe(b1.offset);
    await done;
  });

  it('F3: a quarantined span is reused once its views are garbage-collected; a genuinely full arena still throws ERR_ARENA_FULL', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    using a = arena(4);
    let b: ReturnType<VolatileArena['alloc']> | undefined = a.alloc(4 * PAGE);
    b.bytes.fill(1);
    // Work in flight at free(): the span waits for its view.
    const done = new Promise<void>((resolve, reject) => crypto.randomFill(b!.bytes, (err) => (err ? reject(err) : resolve())));
    b.free();
    b = undefined;
    expect(a.stats.quarantinedBytes).toBe(4 * PAGE);
    await done;
    await waitFor(() => {
      gc();
      return a.stats.quarantinedBytes === 0;
    });
    expect(a.stats.freeBytes).toBe(4 * PAGE);
    const whole = a.alloc(4 * PAGE);
    expect(whole.offset).toBe(0);
    // Nothing quarantined: full is full (no growth).
    expect(code(() => a.alloc(PAGE))).toBe('ERR_ARENA_FULL');
    expect(a.stats.regions).toBe(1);
  });
});

describe('Mapping.adviseRanges (process_madvise batches)', () => {
  it('advises every range, leaves the rest alone, and validates like advise()', () => {
    using m = pw.map(8 * PAGE);
    const bytes = m.buffer;
    bytes.fill(5);
    const advised = m.adviseRanges('dontneed', [
      { offset: 0, length: PAGE },
      { offset: 3 * PAGE, length: 2 * PAGE },
      { offset: 7 * PAGE, length: PAGE },
    ]);
    expect(advised).toEqual([
      { offset: 0, length: PAGE },
      { offset: 3 * PAGE, length: 2 * PAGE },
      { offset: 7 * PAGE, length: PAGE },
    ]);
    const pageValue = (p: number) => bytes[p * PAGE + 17];
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(pageValue)).toEqual([0, 5, 5, 0, 0, 5, 5, 0]);
    expect(code(() => m.adviseRanges('dontneed', [{ offset: 9 * PAGE, length: PAGE }]))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => m.adviseRanges('dontneed', 'x' as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(m.adviseRanges('willneed', [])).toEqual([]);
  });

  it.skipIf(!onKernel)('the raw adviseRuns refuses bad runs with coded errors (native)', () => {
    using m = pw.map(4 * PAGE);
    const region = spyPagewise().pagewise.backend.map({ length: 4 * PAGE, protection: 3, shared: false, populate: false, noreserve: false, hugePageShift: 0 });
    try {
      for (const bad of [new Float64Array([1, PAGE]), new Float64Array([0, 5 * PAGE]), new Float64Array([0]), new Float64Array([-PAGE, PAGE]), new Float64Array([0.5, 1])]) {
        expect(code(() => region.adviseRuns?.(bad, 4))).toBe('ERR_OUT_OF_RANGE');
      }
      expect(code(() => region.adviseRuns?.([0, PAGE] as never, 4))).toBe('ERR_INVALID_ARG_TYPE');
    } finally {
      region.close();
    }
    expect(m.closed).toBe(false);
  });
});

describe('import graph', () => {
  it('lib/volatile/ does not import lib/index.ts (issue 12: no cycle)', () => {
    const dir = path.join(__dirname, '..', 'lib', 'volatile');
    for (const f of fs.readdirSync(dir)) {
      expect(fs.readFileSync(path.join(dir, f), 'utf8')).not.toMatch(/from '\.\.\/index'/);
    }
  });
});

describe('named mappings', () => {
  // A Pagewise that records what the arena maps (methods bound to the real instance).
  function recording(): { pagewise: typeof pw; made: Array<{ options: unknown; mapping: ReturnType<typeof pw.map> }> } {
    const made: Array<{ options: unknown; mapping: ReturnType<typeof pw.map> }> = [];
    const pagewise = new Proxy(pw, {
      get(target, prop) {
        if (prop === 'map') {
          return (length: number, options?: Parameters<typeof pw.map>[1]) => {
            const mapping = target.map(length, options);
            made.push({ options, mapping });
            return mapping;
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    return { pagewise, made };
  }

  it('arenas and caches name their mapping (where the kernel names anonymous memory)', () => {
    const named = pw.supportsMappingNames();
    const a = recording();
    const arena = new VolatileArena({ size: 4 * PAGE, pagewise: a.pagewise });
    const b = recording();
    const custom = new VolatileArena({ size: 4 * PAGE, pagewise: b.pagewise, name: 'thumbnails' });
    const c = recording();
    const cache = new VolatileCache<string>({ budget: 4 * PAGE, pagewise: c.pagewise });
    try {
      expect(a.made.map((e) => (e.options as { name?: string }).name)).toEqual(['pagewise-arena']);
      expect(b.made.map((e) => (e.options as { name?: string }).name)).toEqual(['thumbnails']);
      expect(c.made.map((e) => (e.options as { name?: string }).name)).toEqual(['pagewise-cache']);
      expect(a.made[0].mapping.name).toBe(named ? 'pagewise-arena' : undefined);
      expect(b.made[0].mapping.name).toBe(named ? 'thumbnails' : undefined);
      expect(c.made[0].mapping.name).toBe(named ? 'pagewise-cache' : undefined);
    } finally {
      arena.close();
      custom.close();
      cache.close();
    }
  });
});
