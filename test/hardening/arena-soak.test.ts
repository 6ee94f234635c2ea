// Issue 24, item 1: the default arena's alloc / bytes / unpin+pin / free loop must not
// leak. arena-soak-child.mjs runs it in a child with --expose-gc: after a warm-up, 8
// segments of 37,500 cycles each ended by full collections; memory = anonymous less LazyFree
// less V8's heapTotal. The leak (330 bytes a cycle, outside V8's heap) costs every
// segment 11.8 MiB, 35 MiB in any three. Two things that are not a leak move the figure: V8
// and malloc size themselves in one-time steps (seen: +9 MiB in the first two segments on
// Node 22, +35 MiB once mid-run on Node 24), and on a loaded machine memory outside the heap
// swings by up to ±21 MiB between checkpoints and back (Node 26, measured with heapTotal
// flat). So the test skips the first two segments and asks that at least one of the four
// three-segment windows after them grew by less than 18 MiB (half the leak): a steady leak
// fills every window, one step fills at most three, a swing is undone in the next segment.
// The full 1,000,000 cycles run in bench/arena-views.mjs --full (2.07 MiB in all,
// 2026-12-07). On this machine today's main did not show the steady leak either
// (Anonymous 52.7 -> 62.5 MiB from 100k to 600k cycles): this guards the bound, it does not
// reproduce the outside pass's 225 MiB.
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';

interface ArenaSoak {
  backend: string;
  cycles: number;
  growthMiB: number;
  steps: number[];
  quarantinedBytes: number;
}

describe.skipIf(pagewise.kind !== 'native')('arena soak (simulator: its memory is V8 heap, not the kernel)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  for (const options of [{}, { quarantine: true }]) {
    it(`300,000 alloc / bytes / unpin+pin / free cycles, options ${JSON.stringify(options)}: no growth beyond one-time sizing`, () => {
      const r = runChild<ArenaSoak>('arena-soak-child.mjs', ['--cycles', '300000', '--options', JSON.stringify(options)]);
      expect(r.signal, why(r)).toBeNull();
      expect(r.status, why(r)).toBe(0);
      const s = r.json as ArenaSoak;
      expect(s.cycles).toBe(300_000);
      expect(s.steps).toHaveLength(8);
      // Levels after each segment, relative to the end of the warm-up.
      const levels = [0];
      for (const step of s.steps) levels.push(levels[levels.length - 1] + step);
      const windows = [2, 3, 4, 5].map((k) => levels[k + 3] - levels[k]);
      expect(Math.min(...windows), `segments ${s.steps.join(' ')}`).toBeLessThan(18);
      expect(s.quarantinedBytes).toBe(0);
      console.log(`arena soak ${JSON.stringify(options)}: ${s.growthMiB} MiB growth over ${s.cycles} cycles (segments ${s.steps.join(' ')})`);
    });
  }
});
