// Issue 24, item 1: the default arena's alloc / bytes / unpin+pin / free loop must not
// leak. arena-soak-child.mjs runs it in a child with --expose-gc: after a warm-up, 8
// segments each ended by full collections; memory = anonymous less LazyFree. V8 sizes its
// heap in one-time steps (seen: +9.1 and +7.7 MiB in the first two segments on Node 22, a
// -7.9 / +7.6 pair mid-run on a loaded machine; the child subtracts V8's heapTotal, yet Node 24
// still showed one +35 MiB segment outside it, then flat), so the leak rate is the median
// growth of the last six segments (37,500 cycles each): the 330 bytes a cycle cost
// 12 MiB in every segment, a one-time step moves the median by nothing. The full 1,000,000 cycles run in
// bench/arena-views.mjs --full (2.07 MiB in all, 2026-12-07). On this machine today's main did
// not show the steady leak either (Anonymous 52.7 -> 62.5 MiB from 100k to 600k cycles):
// this guards the bound, it does not reproduce the outside pass's 225 MiB.
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';

interface ArenaSoak {
  backend: string;
  cycles: number;
  growthMiB: number;
  segmentMedianMiB: number;
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
      const late = s.steps.slice(2).sort((a, b) => a - b);
      const lateMedian = (late[2] + late[3]) / 2;
      expect(lateMedian, s.steps.join(' ')).toBeLessThan(4);
      expect(s.quarantinedBytes).toBe(0);
      console.log(`arena soak ${JSON.stringify(options)}: +${s.growthMiB} MiB over ${s.cycles} cycles (segments ${s.steps.join(' ')})`);
    });
  }
});
