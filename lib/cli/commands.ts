// The file commands of the `pagewise` CLI: stat, touch, evict, lock. Each is
// built on the library's public API (fileResidency, evict, mapFile + populate /
// lock) and returns the process exit code.
import * as fs from 'node:fs';
import type { FileResidency, Pagewise } from '../api';
import type { Mapping } from '../mapping';
import { type ByteRange, clipRange, formatBytes, formatPercent } from './args';
import { openRegular } from './batch';
import { type PageRuns, type Snapshot, residentRuns } from './snapshot';
import { READY_MARK, removeOwnPidFile } from './daemon';
import { type Failure, type Target, failureOf } from './files';

/** Where a command writes. Node's process.stdout / process.stderr, or anything with write(). */
export interface CliStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
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
  /** Left out by --max-size / --one-file-system (counted in the summary). */
  skippedLarge?: number;
  skippedOtherFs?: number;
}

const out = (run: Run, line: string): void => void run.io.stdout.write(`${line}\n`);

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

function fail(run: Run, file: string, err: unknown, what?: string): Failure {
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
const inDirectories = (run: Run): string => (run.directories > 0 ? ` in ${plural(run.directories, 'directory')}` : '');
const errorCount = (run: Run): string =>
  (run.skippedLarge ? `; skipped ${plural(run.skippedLarge, 'file')} over --max-size` : '') +
  (run.skippedOtherFs ? `; skipped ${run.skippedOtherFs} on other file systems` : '') +
  (run.failures.length > 0 ? `; ${plural(run.failures.length, 'error')}` : '');

/** [offset, length) for the file, rounded outward to pages and clipped to the file (as mapFile needs it). */
function alignedRange(run: Run, size: number): { offset: number; length: number } {
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
function withOpenFile<T>(file: string, use: (fd: number, size: number) => T): T {
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

// ---------------------------------------------------------------------------
// stat

/** cachestat(2) counts in pages; null when the kernel has no cachestat (mincore was used). */
export interface CacheCounts {
  dirty: number | null;
  writeback: number | null;
  evicted: number | null;
  recentlyEvicted: number | null;
}

export interface StatFile extends CacheCounts {
  path: string;
  /** File size in bytes. */
  size: number;
  /** The byte range looked at (the whole file unless --range). */
  offset: number;
  length: number;
  /** Pages of the range in the page cache, and pages in the range. */
  cached: number;
  total: number;
  percent: number;
  /** cached * page size. */
  residentBytes: number;
  source: 'cachestat' | 'mincore' | 'none';
  /** --verbose: the residency strip ('O' all pages resident, 'o' some, ' ' none). */
  strip?: string;
  /** --pages: runs [first, end) of resident page numbers (a snapshot for touch --from). */
  resident?: PageRuns;
}

export interface StatSummary extends CacheCounts {
  files: number;
  directories: number;
  errors: number;
  size: number;
  /** Bytes of the ranges looked at. */
  length: number;
  cached: number;
  total: number;
  percent: number;
  residentBytes: number;
}

export const STRIP_WIDTH = 60;

/** vmtouch-style strip: `width` cells (fewer for small files), 'O' full, 'o' partial, ' ' none. */
export function residencyStrip(pages: Uint8Array, width = STRIP_WIDTH): string {
  const n = pages.length;
  const cells = Math.min(width, n);
  let s = '';
  for (let c = 0; c < cells; c++) {
    const from = Math.floor((c * n) / cells);
    const to = Math.floor(((c + 1) * n) / cells);
    let resident = 0;
    for (let i = from; i < to; i++) resident += pages[i] & 1;
    s += resident === 0 ? ' ' : resident === to - from ? 'O' : 'o';
  }
  return s;
}

/**
 * Whether the kernel tells this process the truth about a file's residency:
 * cachestat(2) refuses (EPERM) and mincore(2) reports every page as resident
 * for files the caller can neither write nor own (Linux 5.0+ / 6.x hardening
 * against page-cache side channels). Root passes both checks.
 */
export function canWriteOrOwn(file: string): boolean {
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : -1;
  if (euid === 0) return true;
  if (fs.statSync(file).uid === euid) return true;
  try {
    fs.accessSync(file, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const HIDDEN =
  'the kernel reports page-cache residency only for files you own or can write ' +
  '(cachestat refuses; mincore would claim every page resident): run as the owner or root';

/** fileResidency of an open file, with a clear failure instead of an EPERM or an answer the kernel made up. */
function residency(run: Run, fd: number, file: string, range: { offset: number; length: number } | undefined, pages = false): FileResidency {
  let r: FileResidency;
  try {
    r = range === undefined && !pages ? run.pw.fileResidency(fd) : run.pw.fileResidency(fd, { ...range, pages });
  } catch (err) {
    const e = err as { code?: string; syscall?: string; message: string };
    if (e.code === 'EPERM' && e.syscall === 'cachestat') e.message = HIDDEN;
    throw err;
  }
  if (r.source === 'mincore' && !canWriteOrOwn(file)) {
    throw Object.assign(new Error(HIDDEN), { code: 'EPERM_RESIDENCY' });
  }
  return r;
}

export function statCommand(run: Run, json: boolean, pages = false): number {
  const { pw } = run;
  run.snapshot = pages;
  const rows: StatFile[] = [];
  for (const target of run.files) {
    // Whole files without strips: the counts the batch took while collecting (one cachestat each).
    if (target.counts !== undefined && run.range === undefined && !run.verbose) {
      const c = target.counts;
      const total = Math.ceil(target.size / pw.pageSize);
      rows.push({
        path: target.path,
        size: target.size,
        offset: 0,
        length: target.size,
        cached: c.cached,
        total,
        percent: total === 0 ? 100 : (100 * c.cached) / total,
        residentBytes: c.cached * pw.pageSize,
        dirty: c.dirty,
        writeback: c.writeback,
        evicted: c.evicted,
        recentlyEvicted: c.recentlyEvicted,
        source: 'cachestat',
      });
      continue;
    }
    try {
      withOpenFile(target.path, (fd, size) => statOne(run, rows, target.path, fd, size));
    } catch (err) {
      fail(run, target.path, err);
    }
  }

  const sum = (key: 'dirty' | 'writeback' | 'evicted' | 'recentlyEvicted'): number | null => {
    let total: number | null = null;
    for (const r of rows) {
      const v = r[key];
      if (v !== null) total = (total ?? 0) + v;
    }
    return total;
  };
  const cached = rows.reduce((a, r) => a + r.cached, 0);
  const total = rows.reduce((a, r) => a + r.total, 0);
  const summary: StatSummary = {
    files: rows.length,
    directories: run.directories,
    errors: run.failures.length,
    size: rows.reduce((a, r) => a + r.size, 0),
    length: rows.reduce((a, r) => a + r.length, 0),
    cached,
    total,
    percent: total === 0 ? 100 : (100 * cached) / total,
    residentBytes: cached * pw.pageSize,
    dirty: sum('dirty'),
    writeback: sum('writeback'),
    evicted: sum('evicted'),
    recentlyEvicted: sum('recentlyEvicted'),
  };

  if (json) {
    const doc = {
      backend: pw.kind,
      pageSize: pw.pageSize,
      range: run.range === undefined ? null : { start: run.range.start, end: run.range.end ?? null },
      files: rows,
      summary,
      errors: run.failures.map((f) => ({ path: f.path, code: f.code, message: f.reason })),
    };
    run.io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    printStatTable(run, rows, summary);
  }
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}

function statOne(run: Run, rows: StatFile[], file: string, fd: number, size: number): void {
  const { pw } = run;
  const { offset, length } = clipRange(run.range, size);
  let r: { cached: number; total: number; percent: number; source: StatFile['source']; dirty?: number; writeback?: number; evicted?: number; recentlyEvicted?: number };
  if (length === 0 && run.range !== undefined) {
    // The range misses the file entirely (a zero-length range would mean "to the end" to cachestat).
    r = { cached: 0, total: 0, percent: 100, source: 'none' };
  } else {
    const res = residency(run, fd, file, run.range === undefined ? undefined : { offset, length });
    r = { ...res, source: res.source === 'mincore' ? 'mincore' : 'cachestat' };
  }
  const row: StatFile = {
        path: file,
        size,
        offset,
        length,
        cached: r.cached,
        total: r.total,
        percent: r.percent,
        residentBytes: r.cached * pw.pageSize,
        dirty: r.dirty ?? null,
        writeback: r.writeback ?? null,
        evicted: r.evicted ?? null,
        recentlyEvicted: r.recentlyEvicted ?? null,
        source: r.source,
      };
  if (run.verbose || run.snapshot) {
    const pages = (length === 0 ? undefined : residency(run, fd, file, { offset, length }, true).pages) ?? new Uint8Array(0);
    if (run.verbose) row.strip = residencyStrip(pages);
    if (run.snapshot) row.resident = residentRuns(pages, Math.floor(offset / pw.pageSize));
  }
  rows.push(row);
}

function printStatTable(run: Run, rows: StatFile[], summary: StatSummary): void {
  // One write for the whole table: tens of thousands of rows are common.
  const lines: string[] = [];
  const emit = (line: string): void => void lines.push(line);
  const withCachestat = rows.some((r) => r.dirty !== null);
  const num = (v: number | null): string => (v === null ? '-' : String(v));
  const header = ['RESIDENT', 'PAGES', 'SIZE', 'PERCENT'];
  if (withCachestat) header.push('DIRTY', 'WRITEBACK', 'EVICTED', 'RECENT');
  const columns = header.length;
  // Cells of all rows in one flat array (tens of thousands of rows: no array per row).
  const cells: string[] = new Array(rows.length * columns);
  const widths = header.map((h) => h.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const at = i * columns;
    cells[at] = formatBytes(r.residentBytes);
    cells[at + 1] = `${r.cached}/${r.total}`;
    cells[at + 2] = formatBytes(r.size);
    cells[at + 3] = formatPercent(r.percent);
    if (withCachestat) {
      cells[at + 4] = num(r.dirty);
      cells[at + 5] = num(r.writeback);
      cells[at + 6] = num(r.evicted);
      cells[at + 7] = num(r.recentlyEvicted);
    }
    for (let c = 0; c < columns; c++) if (cells[at + c].length > widths[c]) widths[c] = cells[at + c].length;
  }
  if (rows.length > 0) {
    const line = (get: (c: number) => string, file: string): string => {
      let text = '';
      for (let c = 0; c < columns; c++) text += `${c === 0 ? '' : '  '}${get(c).padStart(widths[c])}`;
      return `${text}  ${file}`;
    };
    emit(line((c) => header[c], 'FILE'));
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      emit(line((c) => cells[i * columns + c], showPath(r.path)));
      if (r.strip !== undefined) emit(`  [${r.strip}] ${r.cached}/${r.total}`);
    }
  }
  if (summary.files === 0) {
    emit(`0 files${inDirectories(run)}${errorCount(run)}`);
    run.io.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  let text =
    `${plural(summary.files, 'file')}${inDirectories(run)}, ${formatBytes(run.range === undefined ? summary.size : summary.length)}` +
    `${run.range === undefined ? '' : ' in range'}: ${summary.cached}/${summary.total} pages resident` +
    ` (${formatPercent(summary.percent)}, ${formatBytes(summary.residentBytes)})`;
  if (summary.dirty !== null) {
    text += `; dirty ${summary.dirty}, writeback ${summary.writeback}, evicted ${summary.evicted}, recently evicted ${summary.recentlyEvicted}`;
  }
  text += errorCount(run);
  emit(text);
  run.io.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------
// touch

/** Bytes populated per call: the progress bar moves between calls. */
export const TOUCH_CHUNK = 64 * 2 ** 20;

/**
 * Populate [offset, offset + length) of the mapping, reading only the pages not in the page
 * cache yet (mincore first, then MADV_POPULATE_READ over each run of missing pages).
 * Returns the bytes that were resident already.
 */
async function populateMissing(m: Mapping, offset: number, length: number): Promise<number> {
  const page = m.pageSize;
  const { pages } = m.residency({ offset, length });
  const bytesOf = (from: number, to: number): number => Math.min(to * page, length) - from * page;
  let resident = 0;
  let i = 0;
  while (i < pages.length) {
    if (pages[i] & 1) {
      i++;
      continue;
    }
    // A run of missing pages; short resident islands inside it are populated through
    // (cheap: they are only mapped) rather than costing one call each.
    let j = i;
    for (;;) {
      while (j < pages.length && !(pages[j] & 1)) j++;
      let k = j;
      while (k < pages.length && pages[k] & 1 && k - j < POPULATE_GAP) k++;
      if (k < pages.length && !(pages[k] & 1) && k > j) j = k;
      else break;
    }
    await m.populate({ offset: offset + i * page, length: bytesOf(i, j), mode: 'read' });
    i = j;
  }
  for (let p = 0; p < pages.length; p++) if (pages[p] & 1) resident += bytesOf(p, p + 1);
  return resident;
}

/** Resident pages between two missing runs that are populated through rather than skipped. */
const POPULATE_GAP = 32;

/**
 * The byte ranges of a file to read: the --range (or the whole file), or with --from the
 * runs of pages the snapshot recorded as resident; page-aligned and clipped to `size`.
 */
function touchRanges(run: Run, size: number, saved: Array<[number, number]> | undefined, savedPageSize: number): Array<{ offset: number; length: number }> {
  if (saved === undefined) {
    const r = alignedRange(run, size);
    return r.length === 0 ? [] : [r];
  }
  const ranges: Array<{ offset: number; length: number }> = [];
  for (const [first, end] of saved) {
    const page = run.pw.pageSize;
    const offset = Math.floor((first * savedPageSize) / page) * page;
    const stop = Math.min(Math.ceil((end * savedPageSize) / page) * page, size);
    if (stop > offset) ranges.push({ offset, length: stop - offset });
  }
  return ranges;
}

export async function touchCommand(run: Run, progress: boolean, snapshot?: Snapshot): Promise<number> {
  const { pw, io } = run;
  const started = process.hrtime.bigint();
  const saved = new Map(snapshot?.files.map((f) => [f.path, f.resident]));
  const savedPageSize = snapshot?.pageSize ?? pw.pageSize;
  const plan = run.files.map((t) => {
    const runs = snapshot === undefined ? undefined : (saved.get(t.path) ?? []);
    return { target: t, runs, length: touchRanges(run, t.size, runs, savedPageSize).reduce((a, r) => a + r.length, 0) };
  });
  const totalBytes = plan.reduce((a, p) => a + p.length, 0);
  // cli-progress is loaded only when a bar is drawn (start-up time of the other commands).
  const bar =
    progress && io.stdout.isTTY === true
      ? new (await import('cli-progress')).SingleBar({
          stream: io.stdout as unknown as NodeJS.WritableStream,
          format: 'touch [{bar}] {percentage}% | {done} / {all} | {file}',
          hideCursor: true,
          clearOnComplete: true,
          barsize: 30,
        })
      : undefined;
  const payload = (file?: string) => ({ done: formatBytes(progressed), all: formatBytes(totalBytes), ...(file === undefined ? {} : { file }) });
  let progressed = 0; // bytes the bar has moved over (touched, or skipped by a failure)
  let planned = 0; // bytes of the files handled so far, as planned
  let touchedBytes = 0;
  let alreadyResident = 0; // bytes that were in the page cache already (not read again)
  let files = 0;
  const lines: string[] = [];
  const deferred: Failure[] = []; // failures met while the bar is drawn, reported once it is gone
  bar?.start(Math.max(totalBytes, 1), 0, payload(''));
  try {
    for (const p of plan) {
      let touched = 0;
      try {
        await withOpenFile(p.target.path, async (fd, size) => {
          // Map what the file holds now: a file that shrank since it was listed must not be mapped past its end.
          for (const { offset, length } of touchRanges(run, size, p.runs, savedPageSize)) {
            const m = pw.mapFile(fd, { offset, length });
            try {
              for (let pos = 0; pos < length; pos += TOUCH_CHUNK) {
                const n = Math.min(TOUCH_CHUNK, length - pos);
                bar?.update(progressed, payload(showPath(p.target.path)));
                alreadyResident += await populateMissing(m, pos, n);
                touched += n;
                progressed += n;
              }
            } finally {
              m.close();
            }
          }
        });
        files++;
        touchedBytes += touched;
        if (run.verbose) lines.push(`touched ${showPath(p.target.path)} (${formatBytes(touched)})`);
      } catch (err) {
        touchedBytes += touched;
        const f = failureOf(p.target.path, err);
        if ((err as { code?: string }).code === 'EFAULT') f.reason = 'the file shrank while it was being read';
        run.failures.push(f);
        if (bar) deferred.push(f);
        else reportFailure(io, f);
      }
      planned += p.length;
      progressed = Math.max(progressed, planned);
      bar?.update(progressed, payload());
    }
  } finally {
    bar?.stop();
  }
  for (const f of deferred) reportFailure(io, f);
  for (const line of lines) out(run, line);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = seconds > 0 ? ` (${formatBytes(Math.round(touchedBytes / seconds))}/s)` : '';
  if (!run.quiet) {
    const already = alreadyResident > 0 ? ` (${formatBytes(alreadyResident)} of it was resident already and not read again)` : '';
    out(run, `touched ${plural(files, 'file')}${inDirectories(run)}: ${formatBytes(touchedBytes)} in ${seconds.toFixed(2)} s${rate}${already}${errorCount(run)}`);
  }
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}

// ---------------------------------------------------------------------------
// evict

export function evictCommand(run: Run): number {
  const { pw } = run;
  let files = 0;
  let bytes = 0;
  let cachedAfter = 0;
  let totalAfter = 0;
  let unknownAfter = 0;
  for (const target of run.files) {
    try {
      withOpenFile(target.path, (fd, size) => {
      const { offset, length } = clipRange(run.range, size);
      if (run.range === undefined) pw.evict(fd);
      else if (length > 0) pw.evict(fd, { offset, length });
      files++;
      bytes += length;
      // What stayed: dirty pages (until written back), pages mapped or locked by some process.
      let after: FileResidency | undefined;
      if (length > 0) {
        try {
          after = residency(run, fd, target.path, run.range === undefined ? undefined : { offset, length });
          cachedAfter += after.cached;
          totalAfter += after.total;
        } catch {
          unknownAfter++; // evicted, but this process may not see residency (files it neither owns nor can write)
        }
      }
      if (run.verbose) {
        const left = after === undefined ? (length > 0 ? 'residency unknown' : 'nothing to evict') : `${after.cached}/${after.total} pages still resident`;
        out(run, `evicted ${showPath(target.path)} (${formatBytes(length)}): ${left}`);
      }
      });
    } catch (err) {
      fail(run, target.path, err);
    }
  }
  if (!run.quiet) out(
    run,
    `evicted ${plural(files, 'file')}${inDirectories(run)}` +
      `: ${formatBytes(bytes)}` +
      (totalAfter > 0 || unknownAfter === 0
        ? `; still resident ${formatBytes(cachedAfter * pw.pageSize)}` +
          ` (${formatPercent(totalAfter === 0 ? 0 : (100 * cachedAfter) / totalAfter)}), ${cachedAfter}/${totalAfter} pages`
        : '') +
      (unknownAfter > 0 ? `; what stayed is unknown for ${plural(unknownAfter, 'file')} you neither own nor can write` : '') +
      errorCount(run),
  );
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}

// ---------------------------------------------------------------------------
// lock

/** RLIMIT_MEMLOCK (soft) from /proc/self/limits: bytes, Infinity, or undefined if unknown. */
export function memlockLimit(): number | undefined {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max locked memory'));
    const soft = line?.slice('Max locked memory'.length).trim().split(/\s+/)[0];
    if (soft === undefined) return undefined;
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return undefined;
  }
}

function lockHint(code: string | undefined): string {
  const limit = memlockLimit();
  const shown = limit === undefined ? 'unknown' : limit === Infinity ? 'unlimited' : formatBytes(limit);
  switch (code) {
    case 'EPERM':
      return `not permitted to lock memory (RLIMIT_MEMLOCK ${shown}); raise \`ulimit -l\` or run with CAP_IPC_LOCK`;
    case 'ENOMEM':
      return `over the locked-memory limit (RLIMIT_MEMLOCK ${shown}) or out of memory; raise \`ulimit -l\` or run with CAP_IPC_LOCK`;
    case 'EAGAIN':
      return 'some pages could not be locked (EAGAIN); try again, or free memory';
    default:
      return '';
  }
}

export async function lockCommand(run: Run, daemonChild = false): Promise<number> {
  const { pw, io } = run;
  const held: Array<{ path: string; mapping: Mapping; locked: boolean }> = [];
  let stopping = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    wake();
  };
  // Listen before locking: a signal while mlock runs still ends cleanly.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  // Signal listeners do not keep the event loop alive; this does, until stopped.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  let lockedBytes = 0;
  try {
    for (const target of run.files) {
      if (stopping) break;
      let mapping: Mapping | undefined;
      try {
        const { fd, size } = openRegular(target.path);
        let length: number;
        try {
          const range = alignedRange(run, size);
          length = range.length;
          // Mapping.lock() locks the file's page-cache pages, not private copies. (The mapping keeps the file.)
          if (length > 0) mapping = pw.mapFile(fd, range);
        } finally {
          fs.closeSync(fd);
        }
        if (mapping === undefined) {
          if (!run.quiet) out(run, `skipped ${showPath(target.path)} (nothing to lock: empty file or range)`);
          continue;
        }
        const entry = { path: target.path, mapping, locked: false };
        held.push(entry);
        // A signal does not wait for mlock of a large file: stop waiting, and close (below) abandons it.
        const done = await Promise.race([mapping.lock().then(() => true), stopped.then(() => false)]);
        if (!done || stopping) break;
        entry.locked = true;
        lockedBytes += length;
        if (!run.quiet) out(run, `locked ${showPath(target.path)} (${formatBytes(length)})`);
      } catch (err) {
        if (stopping) break;
        const code = (err as { code?: string }).code;
        const hint = lockHint(code);
        const f = failureOf(target.path, err);
        if (hint) f.reason = `cannot lock: ${hint}`;
        run.failures.push(f);
        reportFailure(io, f);
        const last = held[held.length - 1];
        if (last?.mapping === mapping) held.pop();
        mapping?.close();
      }
    }
    const count = held.filter((h) => h.locked).length;
    if (!stopping) {
      if (count === 0) {
        out(run, `nothing locked${errorCount(run)}`);
        return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
      }
      if (!run.quiet || daemonChild) out(
        run,
        `locked ${plural(count, 'file')}, ${formatBytes(lockedBytes)}` +
          (run.failures.length > 0 ? ` (${plural(run.failures.length, 'error')})` : '') +
          `; ${READY_MARK} (Ctrl-C) to unlock and exit`,
      );
      // The daemon's parent has what it needs now and stops reading: write nothing more.
      if (daemonChild) run.quiet = true;
      await stopped;
    }
    if (!run.quiet) out(run, `unlocking ${plural(count, 'file')}`);
    return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
  } finally {
    for (const h of held) {
      try {
        if (h.locked && !h.mapping.closed) h.mapping.unlock();
      } catch {
        // munlock cannot fail on a live mapping; unmapping unlocks anyway.
      }
      h.mapping.close();
    }
    clearInterval(keepAlive);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (daemonChild) removeOwnPidFile();
    io.signal?.removeEventListener('abort', stop);
  }
}
