// Which files a command works on: the paths given, directories walked
// recursively (filtered by --include / --exclude), and the per-file errors
// (missing files, permission errors, non-regular files) reported along the way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PathFilter } from './args';

export interface Target {
  /** The path as shown to the user (the argument, or argument + '/' + relative path). */
  path: string;
  /** File size when it was found. */
  size: number;
}

export interface Failure {
  path: string;
  /** errno code (ENOENT, EACCES, ...) or ERR_NOT_REGULAR_FILE. */
  code: string;
  /** Human-readable reason, e.g. "No such file or directory". */
  reason: string;
}

export interface Collected {
  files: Target[];
  /** Directories walked (arguments and their subdirectories). */
  directories: number;
  failures: Failure[];
}

const REASONS: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
  ENOMEM: 'Cannot allocate memory',
  EAGAIN: 'Resource temporarily unavailable',
  EFAULT: 'Bad address',
  ENODEV: 'No such device',
  ENXIO: 'No such device or address',
  EOVERFLOW: 'Value too large for defined data type',
};

/** A Failure for a thrown error (errno errors keep their code). */
export function failureOf(file: string, err: unknown): Failure {
  const e = err as { code?: unknown; message?: unknown; syscall?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN';
  // Messages pagewise wrote itself (e.g. the residency permission rule) are kept as they are.
  if (code.startsWith('EPERM_') && typeof e.message === 'string') return { path: file, code: 'EPERM', reason: e.message };
  if (code === 'EPERM' && e.syscall === 'cachestat' && typeof e.message === 'string' && !e.message.startsWith('EPERM')) {
    return { path: file, code, reason: e.message };
  }
  const known = REASONS[code];
  if (known) return { path: file, code, reason: known };
  if (code === 'ERR_INVALID_ARG_VALUE' && typeof e.message === 'string' && e.message.includes('is not a regular file')) {
    return notRegular(file);
  }
  return { path: file, code, reason: typeof e?.message === 'string' ? e.message : String(err) };
}

function notRegular(file: string): Failure {
  return { path: file, code: 'ERR_NOT_REGULAR_FILE', reason: 'Not a regular file or directory' };
}

/**
 * Expand the arguments. Named paths are followed if they are symbolic links;
 * inside directories, symbolic links and special files (devices, FIFOs, sockets)
 * are skipped silently and subdirectories are walked in name order. The same
 * file (device + inode: hard links, a path named twice) is taken once.
 * Filters apply to the files found under a directory argument, never to files
 * named on the command line.
 */
export function collectFiles(args: readonly string[], filter: PathFilter): Collected {
  const files: Target[] = [];
  const failures: Failure[] = [];
  const seen = new Set<string>();
  let directories = 0;

  const take = (display: string, st: fs.Stats): void => {
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    files.push({ path: display, size: st.size });
  };

  const walk = (dir: string, rel: string): void => {
    directories++;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      failures.push(failureOf(dir, err));
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = joinDisplay(dir, entry.name);
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (filter.descend(childRel)) walk(full, childRel);
      } else if (entry.isFile()) {
        if (!filter.accept(childRel)) continue;
        try {
          take(full, fs.statSync(full));
        } catch (err) {
          failures.push(failureOf(full, err));
        }
      }
    }
  };

  for (const arg of args) {
    let st: fs.Stats;
    try {
      st = fs.statSync(arg);
    } catch (err) {
      failures.push(failureOf(arg, err));
      continue;
    }
    if (st.isDirectory()) walk(arg, '');
    else if (st.isFile()) take(arg, st);
    else failures.push(notRegular(arg));
  }
  return { files, directories, failures };
}

function joinDisplay(dir: string, name: string): string {
  return dir.endsWith(path.sep) ? dir + name : `${dir}${path.sep}${name}`;
}
