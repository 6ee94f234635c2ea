// What every file command of the `pagewise` CLI shares: where it writes, its exit codes,
// the Run it is given (the files collected, the options), and how a failure is reported.
import * as fs from 'node:fs';
import type { Pagewise } from '../api';
import { type ByteRange, clipRange } from './args';
import { type Failure, type Target, failureOf } from './files';

/** Where a command writes. Node's process.stdout / process.stderr, or anything with write(). */
export interface CliStream {
  write(chunk: string | Uint8Array): unknown;
  isTTY?: boolean;
  columns?: number;
  /** The descriptor behind the stream, when text may be written to it directly (lib/cli/output.ts). */
  readonly fd?: number;
}

export interface CliIO {
  stdout: CliStream;
  stderr: CliStream;
  /** Ends `lock` like SIGINT / SIGTERM do (for callers that run main() in-process). */
  signal?: AbortSignal;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface Run {
  pw: Pagewise;
  io: CliIO;
  files: Target[];
  directories: number;
  /** Failures met while collecting the files (already printed). */
  failures: Failure[];
  range: ByteRange | undefined;
  verbose: boolean;
  /** -q: no output but errors (touch, evict, lock). */
  quiet?: boolean;
  /** stat --pages: record resident page runs. */
  snapshot?: boolean;
  /** stat --summary: the summary line only (vmtouch's default output). */
  summaryOnly?: boolean;
  /** Left out by --max-size / --one-file-system (counted in the summary). */
  skippedLarge?: number;
  skippedOtherFs?: number;
}


export const out = (run: Run, line: string): void => void run.io.stdout.write(`${line}\n`);

/**
 * A path as printed in text output: as is, unless it holds control characters (a newline
 * in a file name would split a table row or an error line); then as a double-quoted string
 * with C escapes ("a\nb"). --json output carries the exact name.
 */
export function showPath(file: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[\u0000-\u001f\u007f-\u009f]/.test(file)) return file;
  return JSON.stringify(file);
}

export function reportFailure(io: CliIO, f: Failure): void {
  io.stderr.write(`pagewise: ${showPath(f.path)}: ${f.reason}\n`);
}

export function fail(run: Run, file: string, err: unknown, what?: string): Failure {
  const f = failureOf(file, err);
  if (what) f.reason = `${what}: ${f.reason}`;
  run.failures.push(f);
  reportFailure(run.io, f);
  return f;
}

export function plural(n: number, word: string): string {
  if (n === 1) return `${n} ${word}`;
  return `${n} ${word.endsWith('y') ? `${word.slice(0, -1)}ies` : `${word}s`}`;
}

/** " in N directories" when directories were walked. */
export const inDirectories = (run: Pick<Run, 'directories'>): string => (run.directories > 0 ? ` in ${plural(run.directories, 'directory')}` : '');
export const errorCount = (run: Pick<Run, 'skippedLarge' | 'skippedOtherFs' | 'failures'>): string =>
  (run.skippedLarge ? `; skipped ${plural(run.skippedLarge, 'file')} over --max-size` : '') +
  (run.skippedOtherFs ? `; skipped ${run.skippedOtherFs} on other file systems` : '') +
  (run.failures.length > 0 ? `; ${plural(run.failures.length, 'error')}` : '');

/** [offset, length) for the file, rounded outward to pages and clipped to the file (as mapFile needs it). */
export function alignedRange(run: Run, size: number): { offset: number; length: number } {
  const { offset, length } = clipRange(run.range, size);
  if (length === 0) return { offset, length: 0 };
  const page = run.pw.pageSize;
  const start = Math.floor(offset / page) * page;
  const end = Math.min(Math.ceil((offset + length) / page) * page, size);
  return { offset: start, length: end - start };
}

/**
 * Run `use` with the file open (O_NONBLOCK, checked to be a regular file) and its current
 * size (the size found while collecting may be stale). Every command works on this
 * descriptor, never on the path again: a path swapped for a FIFO since the walk cannot hang it.
 */
export function withOpenFile<T>(file: string, use: (fd: number, size: number) => T): T {
  const { fd, size } = openRegular(file);
  let async = false;
  try {
    const result = use(fd, size);
    if (result instanceof Promise) {
      async = true;
      return result.finally(() => fs.closeSync(fd)) as T;
    }
    return result;
  } finally {
    if (!async) fs.closeSync(fd);
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
