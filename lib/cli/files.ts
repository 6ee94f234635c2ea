// Which files a command works on: the paths given, directories walked
// recursively (filtered by --include / --exclude), and the per-file errors
// (missing files, permission errors, non-regular files) reported along the way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backend';
import type { PathFilter } from './args';
import { FIELD, FIELDS, type StatCounts, rowError, statFiles } from './batch';

export interface Target {
  /** The path as shown to the user (the argument, or argument + '/' + relative path). */
  path: string;
  /** File size when it was found. */
  size: number;
  /** Whole-file cachestat counts taken when it was found (stat, where the kernel has cachestat). */
  counts?: StatCounts;
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
  /** Files left out by --max-size, and files or directories on other file systems (--one-file-system). */
  skippedLarge: number;
  skippedOtherFs: number;
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

export interface CollectOptions {
  /** Follow symbolic links found inside directories (vmtouch -f). Named paths are always followed. */
  follow?: boolean;
  /** Stay on the file system of each directory argument (vmtouch -F). */
  oneFileSystem?: boolean;
  /** Skip files larger than this many bytes (vmtouch -m). */
  maxSize?: number;
  /** Also get each file's whole-file cachestat counts (stat). */
  cachestat?: boolean;
}

/**
 * Expand the arguments. Named paths are followed if they are symbolic links;
 * inside directories, symbolic links (unless `follow`) and special files (devices,
 * FIFOs, sockets) are skipped silently and subdirectories are walked in name order.
 * The same file (device + inode: hard links, a path named twice) is taken once.
 * Filters apply to the files found under a directory argument, never to files
 * named on the command line. Every file is then opened (O_NONBLOCK) and fstat'ed in
 * one batch: what is not a regular file by then is reported, never waited on.
 */
export function collectFiles(args: readonly string[], filter: PathFilter, backend: Backend, options: CollectOptions = {}): Collected {
  const files: Target[] = [];
  const failures: Failure[] = [];
  const candidates: Array<{ path: string; named: boolean; rootDev: number | undefined }> = [];
  const walkedDirs = new Set<string>();
  let directories = 0;
  let skippedLarge = 0;
  let skippedOtherFs = 0;

  const walk = (dir: string, rel: string, rootDev: number | undefined): void => {
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
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink() && options.follow) {
        try {
          const st = fs.statSync(full);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch (err) {
          failures.push(failureOf(full, err));
          continue;
        }
      }
      if (isDir) {
        if (!filter.descend(childRel)) continue;
        if (options.oneFileSystem || options.follow) {
          let st: fs.Stats;
          try {
            st = fs.statSync(full);
          } catch (err) {
            failures.push(failureOf(full, err));
            continue;
          }
          if (options.oneFileSystem && st.dev !== rootDev) {
            skippedOtherFs++;
            continue;
          }
          // Followed links can lead back up the tree: walk each directory once.
          const key = `${st.dev}:${st.ino}`;
          if (walkedDirs.has(key)) continue;
          walkedDirs.add(key);
        }
        walk(full, childRel, rootDev);
      } else if (isFile) {
        if (filter.accept(childRel)) candidates.push({ path: full, named: false, rootDev });
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
    if (st.isDirectory()) {
      walkedDirs.add(`${st.dev}:${st.ino}`);
      walk(arg, '', options.oneFileSystem ? st.dev : undefined);
    } else if (st.isFile()) candidates.push({ path: arg, named: true, rootDev: undefined });
    else failures.push(notRegular(arg));
  }

  // Hard links and paths named twice: one file per device + inode.
  const seen = new Map<number, Set<number>>();
  const stats = statFiles(backend, candidates.map((c) => c.path), options.cachestat === true);
  const { rows } = stats;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i];
    const at = i * FIELDS;
    const error = rowError(stats, i);
    if (error !== undefined && error.syscall !== 'cachestat') {
      failures.push(failureOf(c.path, error));
      continue;
    }
    if (rows[at + FIELD.regular] !== 1) {
      failures.push(notRegular(c.path));
      continue;
    }
    const dev = rows[at + FIELD.dev];
    if (c.rootDev !== undefined && dev !== c.rootDev) {
      skippedOtherFs++;
      continue;
    }
    let inodes = seen.get(dev);
    if (inodes === undefined) seen.set(dev, (inodes = new Set()));
    const ino = rows[at + FIELD.ino];
    if (inodes.has(ino)) continue;
    inodes.add(ino);
    const size = rows[at + FIELD.size];
    if (options.maxSize !== undefined && size > options.maxSize) {
      skippedLarge++;
      continue;
    }
    // A cachestat error (e.g. EPERM) leaves counts out: stat asks again per file and explains.
    const counts: StatCounts | undefined =
      stats.cachestat && error === undefined
        ? {
            cached: rows[at + FIELD.cached],
            dirty: rows[at + FIELD.dirty],
            writeback: rows[at + FIELD.writeback],
            evicted: rows[at + FIELD.evicted],
            recentlyEvicted: rows[at + FIELD.recentlyEvicted],
          }
        : undefined;
    files.push({ path: c.path, size, counts });
  }
  return { files, directories, failures, skippedLarge, skippedOtherFs };
}

function joinDisplay(dir: string, name: string): string {
  return dir.endsWith(path.sep) ? dir + name : `${dir}${path.sep}${name}`;
}
