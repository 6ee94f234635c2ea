// The file commands of the `pagewise` CLI, one module each: stat, touch, evict, lock. Each is
// built on the library's public API (fileResidency, evict, mapFile + populate / lock) and
// returns the process exit code; what they share (streams, exit codes, Run) is in ../run.ts.
// touch, evict and lock load when they run: start-up time is part of every `stat`.
import type { Snapshot } from '../snapshot';
import type { Run } from '../run';

export { type CliIO, type CliStream, EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Run, reportFailure } from '../run';
export { statCommand, statFromCounts, statNeedsOnlyCounts } from './stat';

export async function touchCommand(run: Run, progress: boolean, snapshot?: Snapshot): Promise<number> {
  return (await import('./touch.js')).touchCommand(run, progress, snapshot);
}

export async function evictCommand(run: Run): Promise<number> {
  return (await import('./evict.js')).evictCommand(run);
}

export async function lockCommand(run: Run, daemonChild = false): Promise<number> {
  return (await import('./lock.js')).lockCommand(run, daemonChild);
}
