// The memory this process may use: the smallest memory limit of its cgroup and
// every ancestor (v2 memory.max / memory.high, v1 memory.limit_in_bytes), or the
// machine's RAM when there is none. The volatile arena sizes its default bound
// on not-yet-volatile memory from it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function readLimit(file: string): number {
  try {
    const text = fs.readFileSync(file, 'latin1').trim();
    if (text === 'max' || text === '') return Infinity;
    const n = Number(text);
    // v1 reports "no limit" as a huge page-rounded number.
    return Number.isFinite(n) && n > 0 && n < 2 ** 60 ? n : Infinity;
  } catch {
    return Infinity;
  }
}

/** Smallest limit of `files` in `dir` and its ancestors up to `root`. */
function walk(root: string, rel: string, files: string[]): number {
  let limit = Infinity;
  let dir = path.join(root, rel);
  for (;;) {
    for (const f of files) limit = Math.min(limit, readLimit(path.join(dir, f)));
    if (dir === root || !dir.startsWith(root)) break;
    dir = path.dirname(dir);
  }
  return limit;
}

/** Bytes: min(cgroup limits, total RAM). Never throws. */
export function effectiveMemoryLimit(): number {
  let limit = os.totalmem();
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/self/cgroup', 'latin1').split('\n');
  } catch {
    return limit;
  }
  for (const line of lines) {
    const [, controllers, rel] = line.split(':');
    if (rel === undefined) continue;
    if (controllers === '') limit = Math.min(limit, walk('/sys/fs/cgroup', rel, ['memory.max', 'memory.high']));
    else if (controllers.split(',').includes('memory')) {
      limit = Math.min(limit, walk('/sys/fs/cgroup/memory', rel, ['memory.limit_in_bytes']));
    }
  }
  return limit;
}
