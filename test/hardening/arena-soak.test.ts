// Issue 24, item 1: the default arena's alloc / bytes / unpin+pin / free loop must not
// leak. arena-soak-child.mjs runs it in a child with --expose-gc: after a warm-up, 8
// segments each ended by full collections; memory = anonymous less LazyFree. The
// leak on main cost ~330 bytes a cycle (22 MiB over this run's 100,000 cycles); the bound
// is the (< 8 MiB per 1,000,000 cycles), with 4 MiB of slack for one-time sizing.
// The full 1,000,000 cycles run in bench/arena-soak.mjs.
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
    it(`100,000 alloc / bytes / unpin+pin / free cycles, options ${JSON.stringify(options)}: no growth beyond one-time sizing`, () => {
      const r = runChild<ArenaSoak>('arena-soak-child.mjs', ['--cycles', '100000', '--options', JSON.stringify(options)]);
      expect(r.signal, why(r)).toBeNull();
      expect(r.status, why(r)).toBe(0);
      const s = r.json as ArenaSoak;
      expect(s.cycles).toBe(100_000);
      expect(s.growthMiB, s.steps.join(' ')).toBeLessThan(Math.max(4, (8 * s.cycles) / 1_000_000));
      expect(s.segmentMedianMiB, s.steps.join(' ')).toBeLessThan(1);
      expect(s.quarantinedBytes).toBe(0);
      console.log(`arena soak ${JSON.stringify(options)}: +${s.growthMiB} MiB over ${s.cycles} cycles (segments ${s.steps.join(' ')})`);
    });
  }
});
