// MADV_FREE followed by MADV_PAGEOUT discards the pages only when both run on the
// same CPU: a page freed on one CPU waits in that CPU's LRU batch, and PAGEOUT from
// another CPU skips it (measured: 0 of 200 pages discarded after a migration, 200 of
// 200 without). Tests that assert the discard pin this worker's JavaScript thread to
// one CPU (spread by pid); without taskset they run unpinned.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

try {
  const cpu = process.pid % os.availableParallelism();
  execFileSync('taskset', ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
} catch {
  // Not Linux, or no util-linux: best effort.
}
