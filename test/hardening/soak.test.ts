// Soak (soak-child.mjs): map / write / advise / close cycles with RSS growth
// under 5 MiB and no growth in /proc/self/maps. 100,000 cycles here; the full
// run (full.mjs) does 1,000,000.
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { runChild, why } from './child';

interface SoakStats {
  cycles: number;
  rssGrowthMiB: number;
  mapsLineGrowth: number;
  mapsLinePeakGrowth: number;
  end: { fileLines: number };
  failures: number;
  failureText: string[];
}

describe.skipIf(pagewise.kind !== 'native')('soak (simulator: its RSS is V8 heap sizing of ArrayBuffers, not mappings)', () => {
  it('100,000 map / advise / close cycles: RSS growth < 5 MiB, no mapping growth', () => {
    const r = runChild<SoakStats>('soak-child.mjs', ['--cycles', '100000']);
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures, s.failureText.join('\n')).toBe(0);
    expect(s.rssGrowthMiB).toBeLessThan(5);
    expect(s.end.fileLines).toBe(0);
    expect(s.mapsLineGrowth).toBeLessThanOrEqual(8);
    expect(s.mapsLinePeakGrowth).toBeLessThanOrEqual(64); // uncollected views of closed mappings, until the next GC
    console.log(`soak: ${s.cycles} cycles, RSS +${s.rssGrowthMiB} MiB, maps lines +${s.mapsLineGrowth} (peak +${s.mapsLinePeakGrowth})`);
  });
});
