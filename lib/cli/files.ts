// Which files a command works on: the paths given, directories walked
// recursively (filtered by --include / --exclude), and the per-file errors
// (missing files, permission errors, non-regular files) reported along the way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoError } from '../errors';
import type { PathFilter } from './args';
import { CHUNK, FIELD, FIELDS, type NativeWalk, type StatCounts, type StatNative, type StatRows, rowError, statPaths } from './stat/native';

export interface Target {
  /** The path as shown to the user (the argument, or argument + '/' + relative path). */
  path: string;
  /** File size when it was found. */
  size: number;
  /**
   * Where the whole-file cachestat counts taken when it was found are (stat, where the kernel
   * has cachestat): row `at` of `rows` (a batch of statFiles / walkFiles, lib/cli/stat/native.ts; read them with
   * countsOf). Not an object per file: a walk finds tens of thousands.
   */
  rows?: Float64Array;
  at?: number;
}

/** The cachestat counts the batch took for a file, or undefined. */
export function countsOf(t: Target): StatCounts | undefined {
  const { rows, at } = t;
  if (rows === undefined || at === undefined) return undefined;
  return {
    cached: rows[at + FIELD.cached],
    dirty: rows[at + FIELD.dirty],
    writeback: rows[at + FIELD.writeback],
    evicted: rows[at + FIELD.evicted],
    recentlyEvicted: rows[at + FIELD.recentlyEvicted],
  };
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
/** A path named on the command line, stat()ed (symlinks followed); undefined after recording why it cannot be. */
export function statArgument(arg: string, failures: Failure[]): fs.Stats | undefined {
  try {
    return fs.statSync(arg);
  } catch (err) {
    failures.push(failureOf(arg, err));
    return undefined;
  }
}

/** The directories a native walk could not open ("path\0errno\0" pairs), as failures. */
export function walkFailures(walk: NativeWalk, failures: Failure[]): void {
  const errs = walk.errors.split('\0');
  for (let i = 0; i + 1 < errs.length; i += 2) failures.push(failureOf(errs[i], errnoError(Number(errs[i + 1]), 'opendir')));
}

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

export function notRegular(file: string): Failure {
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
  /**
   * Native walks (with cachestat) of directory arguments done already, by argument
   * (lib/cli/stat/counted.ts hands them over): not walked again. Each file of a walk is once in it.
   */
  walked?: ReadonlyMap<string, NativeWalk>;
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
export function collectFiles(args: readonly string[], filter: PathFilter, native: StatNative, options: CollectOptions = {}): Collected {
  const files: Target[] = [];
  const failures: Failure[] = [];
  // Files to take, in order: runs of paths still to stat (from the JavaScript walk or named on
  // the command line), and blocks the native walk has stat'ed already.
  const segments: Array<{ paths: string[]; rootDevs: Array<number | undefined>; stats?: StatRows }> = [];
  const pending = (): { paths: string[]; rootDevs: Array<number | undefined> } => {
    const last = segments[segments.length - 1];
    // A segment is stat'ed in one batch: CHUNK paths at most, so that no rows array grows with
    // the number of files named (a --files-from list of millions).
    if (last !== undefined && last.stats === undefined && last.paths.length < CHUNK) return last;
    const fresh = { paths: [] as string[], rootDevs: [] as Array<number | undefined> };
    segments.push(fresh);
    return fresh;
  };
  const candidate = (file: string, rootDev: number | undefined): void => {
    const seg = pending();
    seg.paths.push(file);
    seg.rootDevs.push(rootDev);
  };
  // Without filters or options, the native walk does readdir + stat in one call (no object per entry).
  const nativeWalk = filter.empty && !options.follow && !options.oneFileSystem ? native.walkFiles : undefined;
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
    entries.sort((a, b) => compareCodePoints(a.name, b.name));
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
        if (filter.accept(childRel)) candidate(full, rootDev);
      }
    }
  };

  for (const arg of args) {
    const st = statArgument(arg, failures);
    if (st === undefined) continue;
    const done = options.cachestat === true ? options.walked?.get(arg) : undefined;
    const walked = st.isDirectory() && nativeWalk !== undefined ? (done ?? walkNatively(nativeWalk, arg, options.cachestat === true)) : undefined;
    if (walked !== undefined) {
      const w = walked;
      directories += w.directories;
      walkFailures(w, failures);
      const paths = w.files.split('\0');
      paths.pop(); // after the last NUL
      segments.push({ paths, rootDevs: [], stats: { rows: w.rows, paths, cachestat: options.cachestat === true } });
    } else if (st.isDirectory()) {
      walkedDirs.add(`${st.dev}:${st.ino}`);
      walk(arg, '', options.oneFileSystem ? st.dev : undefined);
    } else if (st.isFile()) candidate(arg, undefined);
    else failures.push(notRegular(arg));
  }

  // Hard links and paths named twice: one file per device + inode.
  const seen = new Map<number, Set<number>>();
  for (const seg of segments) {
  const stats = seg.stats ?? statPaths(native, seg.paths, options.cachestat === true);
  const { rows } = stats;
  for (let i = 0; i < seg.paths.length; i++) {
    const file = seg.paths[i];
    const rootDev = seg.rootDevs[i];
    const at = i * FIELDS;
    const error = rowError(stats, i);
    if (error !== undefined && error.syscall !== 'cachestat') {
      failures.push(failureOf(file, error));
      continue;
    }
    if (rows[at + FIELD.regular] !== 1) {
      failures.push(notRegular(file));
      continue;
    }
    const dev = rows[at + FIELD.dev];
    if (rootDev !== undefined && dev !== rootDev) {
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
    if (stats.cachestat && error === undefined) files.push({ path: file, size, rows, at });
    else files.push({ path: file, size });
  }
  }
  return { files, directories, failures, skippedLarge, skippedOtherFs };
}

/**
 * The native walk of a directory, or undefined when it holds more files than one native
 * call returns (2^20): the JavaScript walk then takes it, and stats it in chunks.
 */
function walkNatively(walk: StatNative['walkFiles'], dir: string, cachestat: boolean): NativeWalk | undefined {
  try {
    return walk(dir, cachestat);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_OUT_OF_RANGE') return undefined;
    throw err;
  }
}

/**
 * Compare names by code point (for UTF-8 names the byte order the native walk sorts in),
 * not by UTF-16 code unit as `<` does: a character above U+FFFF (two surrogate units,
 * 0xD800–0xDFFF) sorts after every other, also after U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate !== ySurrogate) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function joinDisplay(dir: string, name: string): string {
  return dir.endsWith(path.sep) ? dir + name : `${dir}${path.sep}${name}`;
}
