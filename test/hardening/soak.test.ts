// Soak (soak-child.mjs): map / write / advise / close cycles in 8 measured segments.
// The leak rate is the median growth per segment (RSS < 1 MiB, maps lines <= 4): a
// leak costs every segment the same, a runtime's one-time heap sizing (Node 24's V8)
// lands in one or two. 100,000 cycles here (a leak of 100 bytes a cycle fails); the
// full run (full.mjs) does 1,000,000.
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { runChild, why } from './child';

interface SoakStats {
  cycles: number;
  rssGrowthMiB: number;
  segmentRssGrowthMiB: number;
  segmentLineGrowth: number;
  rssSteps: number[];
  lineSteps: number[];
  mapsLineGrowth: number;
  mapsLinePeakGrowth: number;
  end: { fileLines: number };
  failures: number;
  failureText: string[];
}

describe.skipIf(pagewise.kind !== 'native')('soak (simulator: its RSS is V8 heap sizing of ArrayBuffers, not mappings)', () => {
  it('100,000 map / advise / close cycles: per segment of 12,500, median RSS growth < 1 MiB and no mapping growth', () => {
    // A loaded 2-core machine has taken 118 s for it.
    const r = runChild<SoakStats>('soak-child.mjs', ['--cycles', '100000'], { timeout: 300_000 });
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures, s.failureText.join('\n')).toBe(0);
    expect(s.segmentRssGrowthMiB).toBeLessThan(1);
    expect(s.segmentLineGrowth).toBeLessThanOrEqual(4);
    expect(s.rssGrowthMiB).toBeLessThan(16);
    expect(s.end.fileLines).toBe(0);
    expect(s.mapsLineGrowth).toBeLessThanOrEqual(32);
    expect(s.mapsLinePeakGrowth).toBeLessThanOrEqual(96); // uncollected views of closed mappings, until the next GC
    console.log(
      `soak: ${s.cycles} cycles, RSS +${s.rssGrowthMiB} MiB (per segment, median +${s.segmentRssGrowthMiB}: ${s.rssSteps.join(' ')}), ` +
        `maps lines +${s.mapsLineGrowth} (per segment ${s.lineSteps.join(' ')}; peak +${s.mapsLinePeakGrowth})`,
    );
  }, 300_000);
});
