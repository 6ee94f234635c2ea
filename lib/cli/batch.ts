// open + fstat (+ cachestat) of many files at once: the native backend's statFiles
// (native/cachestat_batch.cc) when it is there, else the same steps through node:fs
// (without cachestat). Files are opened O_NONBLOCK, so a path that became a FIFO after
// the directory walk cannot block the command.
import * as fs from 'node:fs';
import type { Backend } from '../backend';
import { errnoError } from '../errors';

/** Fields of one row of Backend.statFiles(), in order (native/cachestat_batch.cc). */
const STAT_FIELDS = ['errno', 'stage', 'regular', 'dev', 'ino', 'size', 'cached', 'dirty', 'writeback', 'evicted', 'recentlyEvicted'] as const;
const FIELDS = STAT_FIELDS.length;
export const STAGE_SYSCALL = ['', 'open', 'fstat', 'cachestat'] as const;

/** Paths per native call: bounds the rows array, and the time between two event-loop turns. */
export const CHUNK = 4096;

/** cachestat(2) counts of a whole file, in pages. */
export interface StatCounts {
  cached: number;
  dirty: number;
  writeback: number;
  evicted: number;
  recentlyEvicted: number;
}

/** Rows of Backend.statFiles() for every path, in order (see row accessors below). */
export interface StatRows {
  rows: Float64Array;
  paths: readonly string[];
  /** The rows hold cachestat counts (native backend, asked for). */
  cachestat: boolean;
}

export const FIELD = Object.fromEntries(STAT_FIELDS.map((f, i) => [f, i])) as Record<(typeof STAT_FIELDS)[number], number>;
export { FIELDS };

/** The error of row i as a Node-style errno error, or undefined. */
export function rowError(s: StatRows, i: number): NodeJS.ErrnoException | undefined {
  const errno = s.rows[i * FIELDS + FIELD.errno];
  if (errno === 0) return undefined;
  return errnoError(errno, STAGE_SYSCALL[s.rows[i * FIELDS + FIELD.stage]] ?? 'open');
}

/** One open + fstat (+ cachestat when the backend has it and `wantCachestat`) per path, in order. */
export function statFiles(backend: Backend, paths: readonly string[], wantCachestat: boolean): StatRows {
  const rows = new Float64Array(paths.length * FIELDS);
  if (backend.statFiles === undefined) {
    paths.forEach((p, i) => statOne(p, rows, i * FIELDS));
    return { rows, paths, cachestat: false };
  }
  for (let from = 0; from < paths.length; from += CHUNK) {
    const chunk = paths.slice(from, from + CHUNK);
    // NUL ends each path; a path holding a NUL cannot name a file: send '' (ENOENT) instead.
    const joined = `${chunk.map((p) => (p.includes('\0') ? '' : p)).join('\0')}\0`;
    rows.set(backend.statFiles(joined, wantCachestat), from * FIELDS);
  }
  return { rows, paths, cachestat: wantCachestat };
}

function statOne(file: string, rows: Float64Array, at: number): void {
  const fail = (err: unknown, stage: number): void => {
    const errno = -((err as NodeJS.ErrnoException).errno ?? -1);
    rows[at + FIELD.errno] = errno > 0 ? errno : 5; // EIO when Node gives no errno
    rows[at + FIELD.stage] = stage;
  };
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    return fail(err, 1);
  }
  try {
    const st = fs.fstatSync(fd);
    rows[at + FIELD.regular] = st.isFile() ? 1 : 0;
    rows[at + FIELD.dev] = st.dev;
    rows[at + FIELD.ino] = st.ino;
    rows[at + FIELD.size] = st.size;
  } catch (err) {
    fail(err, 2);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Open a file for a command (O_NONBLOCK: a FIFO put in its place since it was listed opens
 * at once) and check that it is still a regular file. The caller closes the descriptor.
 */
export function openRegular(file: string): { fd: number; size: number } {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error('Not a regular file or directory'), { code: 'ERR_NOT_REGULAR_FILE' });
    return { fd, size: st.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}
