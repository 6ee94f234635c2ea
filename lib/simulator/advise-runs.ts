// The simulator's adviseRuns(): what process_madvise(2) with an iovec of runs does
// on the kernel — each run advised in order, with madvise's own checks and errors
// (the native backend falls back to the same per-run madvise where the kernel
// refuses process_madvise).
import type { BackendMapping } from '../backend';
import { errnoError } from '../errors';

export function adviseRuns(mapping: Pick<BackendMapping, 'advise'>, runs: Float64Array, advice: number): void {
  if (!(runs instanceof Float64Array) || runs.length % 2 !== 0) throw errnoError('EINVAL', 'process_madvise');
  for (let i = 0; i < runs.length; i += 2) {
    try {
      mapping.advise(runs[i], runs[i + 1], advice);
    } catch (err) {
      if (err !== null && typeof err === 'object') (err as { runsAdvised?: number }).runsAdvised = i / 2;
      throw err;
    }
  }
}
