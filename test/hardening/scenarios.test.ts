// The hardening scenarios that only test/hardening/full.mjs ran, in their quick form, so
// that a regression in them fails `npm test` (CI) and not only the full run: misbehaving
// cache producers, Node's async work racing free()/close() of arena and cache memory, and
// the CLI on special files. full.mjs runs the same children at full size.
import { describe, expect, it } from 'vitest';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';

const simulator = process.env.PAGEWISE_BACKEND === 'simulator';

interface ProducerStats {
  backend: string;
  calls: number;
  codes: Record<string, number>;
  outcomes: Record<string, number>;
  behaviours: Record<string, number>;
  unhandledRejections: number;
  failures: string[];
}

interface ArenaAsyncStats {
  backend: string;
  modes: Record<string, { callbacks: number; overwritten: Record<string, number>; errors: Record<string, number> }>;
  failures: string[];
}

interface CliSpecialStats {
  runs: number;
  swapRuns: number;
  statuses: Record<string, number>;
  failures: string[];
}

describe('hardening scenarios, quick form (child processes)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('VolatileCache producers that misbehave: no signal, only coded errors, no leaked span, no unhandled rejection', () => {
    const calls = 3000;
    const r = runChild<ProducerStats>('producers-child.mjs', ['--seed', '20261207', '--calls', String(calls)]);
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures).toEqual([]);
    expect(s.unhandledRejections).toBe(0);
    expect(s.calls).toBeGreaterThanOrEqual(calls);
    expect(s.backend).toBe(simulator ? 'simulator' : 'native');
    // Both paths ran, and many misbehaviours were tried.
    expect(s.outcomes.hit ?? 0).toBeGreaterThan(0);
    expect(s.outcomes.miss ?? 0).toBeGreaterThan(0);
    expect(Object.keys(s.behaviours).length).toBeGreaterThan(15);
  });

  it("Node's async APIs racing free()/close() of arena buffers and cache handles: no new owner's bytes overwritten", () => {
    const r = runChild<ArenaAsyncStats>('arena-async-child.mjs', ['4']);
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures).toEqual([]);
    for (const mode of ['quarantine', 'default']) {
      expect(s.modes[mode].callbacks, mode).toBeGreaterThan(0);
      expect(s.modes[mode].overwritten, mode).toEqual({});
    }
  });

  it.skipIf(simulator)('the CLI on FIFOs, sockets, devices, /proc files and a flipping entry: every run ends by itself, exit 0 or 1 (simulator: the file commands refuse it)', () => {
    const r = runChild<CliSpecialStats>('cli-special-child.mjs', ['1'], { gc: false });
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures).toEqual([]);
    expect(s.runs).toBeGreaterThan(0);
    expect(s.swapRuns).toBeGreaterThan(0);
    expect(Object.keys(s.statuses).every((k) => k === '0' || k === '1')).toBe(true);
  });
});
