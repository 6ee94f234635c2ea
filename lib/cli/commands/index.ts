// The file commands of the `pagewise` CLI, one module each: stat, touch, evict, lock. Each is
// built on the library's public API (fileResidency, evict, mapFile + populate / lock) and
// returns the process exit code; what they share (streams, exit codes, Run) is in ../run.ts.
export { type CliIO, type CliStream, EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Run, reportFailure } from '../run';
export { statCommand, statFromCounts, statNeedsOnlyCounts } from './stat';
export { touchCommand } from './touch';
export { evictCommand } from './evict';
export { lockCommand } from './lock';
