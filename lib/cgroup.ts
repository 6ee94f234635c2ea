// This process's memory cgroup and its limit: the one reader of /proc/self/cgroup,
// /proc/self/mountinfo and the cgroup limit files. The volatile arena's default bound
// (effectiveMemoryLimit) and the pressure watcher's usage threshold (ownMemoryLimit)
// both come from here, so they always see the same limit.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The cgroup directories of this process: v1 memory controller and v2 (unified). */
interface OwnCgroups {
  v1?: string;
  v2?: string;
  /** Where each hierarchy is mounted (the top the ancestor walk stops at). */
  v1Mount?: string;
  v2Mount?: string;
}

/** Finds this process's memory cgroup directories through /proc/self/cgroup and /proc/self/mountinfo. */
export function ownCgroups(): OwnCgroups {
  const found: OwnCgroups = {};
  let cgroups: string[];
  let mounts: string[];
  try {
    cgroups = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n');
  } catch {
    return found;
  }
  // mountinfo: id parent major:minor root mountpoint options [tags] - fstype source superoptions
  const parsed = mounts.map((line) => {
    const [left, right = ''] = line.split(' - ');
    const f = left.split(' ');
    const r = right.split(' ');
    return { root: f[3], point: f[4], fstype: r[0], superOptions: (r[2] ?? '').split(',') };
  });
  const resolve = (rel: string, mount: { root: string; point: string }): string | undefined => {
    // A bind mount of a subtree shows only what lies below its root.
    if (mount.root !== '/' && rel !== mount.root && !rel.startsWith(`${mount.root}/`)) return undefined;
    const below = mount.root === '/' ? rel : rel.slice(mount.root.length);
    return path.join(mount.point, below);
  };
  for (const line of cgroups) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    const controllers = line.slice(first + 1, second);
    const rel = line.slice(second + 1);
    const v2 = controllers === '' && line.startsWith('0::');
    if (!v2 && !controllers.split(',').includes('memory')) continue;
    for (const m of parsed) {
      if (v2 ? m.fstype !== 'cgroup2' : m.fstype !== 'cgroup' || !m.superOptions.includes('memory')) continue;
      const dir = resolve(rel, m);
      if (dir === undefined || !fs.existsSync(dir)) continue;
      if (v2 && found.v2 === undefined) {
        found.v2 = dir;
        found.v2Mount = m.point;
      } else if (!v2 && found.v1 === undefined) {
        found.v1 = dir;
        found.v1Mount = m.point;
      }
    }
  }
  return found;
}

/**
 * A cgroup limit file's value in bytes, or undefined for "no limit" and unreadable files.
 * The one cutoff: v2 writes "max"; v1 writes PAGE_COUNTER_MAX pages in bytes (about 2^63),
 * so any value that is not a safe integer (>= 2^53, 8 PiB) means no limit.
 */
function readLimitFile(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1').trim();
  } catch {
    return undefined;
  }
  const bytes = Number(text);
  return text !== '' && Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** This process's memory limit, if its cgroup or an ancestor has one. */
export interface MemoryLimit {
  /** Bytes. */
  bytes: number;
  /** The file it came from: v2 memory.high (the throttling point) or memory.max, v1 memory.limit_in_bytes. */
  file: string;
}

/**
 * The memory limit of this process: the smallest of its cgroup's and every ancestor's
 * (v2 memory.high and memory.max, v1 memory.limit_in_bytes), undefined when there is none
 * (or no cgroup). A default budget for a cache can start from it.
 */
export function ownMemoryLimit(cgroups: OwnCgroups = ownCgroups()): MemoryLimit | undefined {
  let best: MemoryLimit | undefined;
  const walk = (dir: string | undefined, top: string | undefined, files: readonly string[]): void => {
    if (dir === undefined || top === undefined) return;
    for (;;) {
      for (const name of files) {
        const file = path.join(dir, name);
        const bytes = readLimitFile(file);
        if (bytes !== undefined && (best === undefined || bytes < best.bytes)) best = { bytes, file };
      }
      if (dir === top || !dir.startsWith(`${top}/`)) return;
      dir = path.dirname(dir);
    }
  };
  walk(cgroups.v2, cgroups.v2Mount, ['memory.high', 'memory.max']);
  walk(cgroups.v1, cgroups.v1Mount, ['memory.limit_in_bytes']);
  return best;
}

/** Bytes this process may use: min(ownMemoryLimit(), total RAM). Never throws. */
export function effectiveMemoryLimit(): number {
  return Math.min(ownMemoryLimit()?.bytes ?? Infinity, os.totalmem());
}
