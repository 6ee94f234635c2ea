// Argument fuzzing of every public function (watchMemoryPressure, collectMetrics and
// memoryUsage included) and Mapping method, in a child
// process (fuzz-child.mjs): the child must never die by a signal, and every
// throw / rejection must be an Error with a stable `code`. Fixed seeds here;
// the full run (full.mjs) fuzzes >= 100,000 calls per backend.
import { describe, expect, it } from 'vitest';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';

interface FuzzStats {
  backend: string;
  calls: number;
  errors: number;
  skippedForBudget: number;
  codes: Record<string, number>;
  ops: Record<string, number>;
  failures: number;
  failureText: string[];
}

const simulator = process.env.PAGEWISE_BACKEND === 'simulator';
// The simulator is ~25x slower per call than the kernel path.
const CALLS = simulator ? 5_000 : 10_000;

describe('argument fuzzing (child process)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it(`${CALLS} fast-check calls with arbitrary arguments: no signal, only coded errors`, () => {
    const r = runChild<FuzzStats>('fuzz-child.mjs', ['--seed', '20251122', '--calls', String(CALLS)]);
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const s = r.json!;
    expect(s.failures, s.failureText.join('\n')).toBe(0);
    expect(s.calls).toBeGreaterThanOrEqual(CALLS);
    expect(s.backend).toBe(simulator ? 'simulator' : 'native');
    // Every operation was exercised, and both success and failure paths ran.
    for (const op of ['map', 'mapFile', 'fileResidency', 'evict', 'prefetch', 'supports', 'createPagewise', 'buffer', 'view', 'detachView', 'advise', 'residency', 'populate', 'flush', 'flushSync', 'protect', 'lock', 'unlock', 'resize', 'close', 'dispose', 'getters', 'watchPressure', 'metrics', 'memoryUsage']) {
      expect(s.ops[op] ?? 0, op).toBeGreaterThan(0);
    }
    for (const code of ['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_VALUE', 'ERR_MAPPING_CLOSED']) {
      expect(s.codes[code] ?? 0, code).toBeGreaterThan(0);
    }
    console.log(`fuzz (${s.backend}): ${s.calls} calls, ${s.errors} coded errors, ${s.skippedForBudget} skipped for the memory budget`);
  });
});
