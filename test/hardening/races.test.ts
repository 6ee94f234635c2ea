// Lifetime races in a child process (races-child.mjs): close() while populate /
// flush / lock are in flight, mappings left to the GC (--expose-gc) among
// explicit closes, and worker threads terminated with mappings and work in
// flight. No signal, no unexpected outcome, sentinel mappings intact (a double
// munmap of a reused range would hit them), and /proc/self/maps back to its
// baseline: exactly for the test's uniquely named file, within a few lines of
// noise for everything (threadpool and a worker warmed up before the baseline).
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';

interface RaceStats {
  racesRun: number;
  outcomes: Record<string, number>;
  baseline: { lines: number; fileLines: number };
  end: { lines: number; fileLines: number };
  sentinelsIntact: boolean;
  failures: number;
  failureText: string[];
}

describe.skipIf(pagewise.kind !== 'native')('lifetime races (simulator: no threadpool, no munmap, nothing to race)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('close during async work, GC of abandoned mappings, terminated workers', () => {
    const r = runChild<RaceStats>('races-child.mjs', ['--rounds', '300', '--gc', '3000', '--workers', '16']);
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures, s.failureText.join('\n')).toBe(0);
    expect(s.sentinelsIntact).toBe(true);
    expect(s.end.fileLines).toBe(0);
    expect(s.end.lines).toBeLessThanOrEqual(s.baseline.lines + 48); // the child's SLACK: V8's heap regions vary, a leak adds thousands
    expect(s.outcomes.other).toBe(0);
    // Both outcomes of the race happen: work that finished first, and work close() stopped.
    expect(s.outcomes.resolved).toBeGreaterThan(0);
    expect(s.outcomes.ERR_MAPPING_CLOSED).toBeGreaterThan(0);
    console.log(`races: ${s.racesRun} operations raced against close(); maps lines ${s.baseline.lines} -> ${s.end.lines}`);
  });
});
