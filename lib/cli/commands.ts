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
import { FIELD } from './batch';

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
const inDirectories = (run: Pick<Run, 'directories'>): string => (run.directories > 0 ? ` in ${plural(run.directories, 'directory')}` : '');
const errorCount = (run: Pick<Run, 'skippedLarge' | 'skippedOtherFs' | 'failures'>): string =>
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

/** Pages of a range whose strip comes from one residency vector; above it, from counts per cell. */
export const STRIP_VECTOR_PAGES = 2 ** 20;

/**
 * The same strip as residencyStrip() for `n` pages, from the number of resident pages of each
 * cell (`count(from, to)` over page indexes [from, to)): no vector proportional to the file,
 * so a 17 TiB sparse file costs 60 cachestat calls, not a 4 GiB vector.
 */
export function residencyStripByCounts(n: number, count: (from: number, to: number) => number, width = STRIP_WIDTH): string {
  const cells = Math.min(width, n);
  let s = '';
  for (let c = 0; c < cells; c++) {
    const from = Math.floor((c * n) / cells);
    const to = Math.floor(((c + 1) * n) / cells);
    const resident = count(from, to);
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

/** What stat's output needs besides the rows: the page size and the backend's name. */
export interface StatContext {
  pageSize: number;
  kind: 'native' | 'simulator';
}

/** The parts of a Run that printing the result of stat needs. */
export type StatOutputRun = Pick<Run, 'io' | 'directories' | 'failures' | 'range' | 'summaryOnly' | 'skippedLarge' | 'skippedOtherFs'>;

/** A Run for statFromCounts(): no library API (it is not even loaded), only what the batch counted. */
export type CountsRun = StatOutputRun & Pick<Run, 'files'> & StatContext;

/**
 * Whether `stat` can answer from the whole-file counts the batch took while collecting
 * (every file has them; no --range, -v or --pages): then the library's API is not needed.
 */
export function statNeedsOnlyCounts(files: readonly Target[], range: ByteRange | undefined, verbose: boolean, pages: boolean): boolean {
  if (range !== undefined || verbose || pages) return false;
  for (const f of files) if (f.rows === undefined) return false;
  return true;
}

/** A StatFile for a file from its batch counts, written into `row` (one object reused for a whole table). */
function rowFromCounts(t: Target, pageSize: number, row: StatFile): StatFile {
  const { rows, at } = t;
  if (rows === undefined || at === undefined) throw new Error(`pagewise: internal error: no counts for ${t.path}`);
  const total = Math.ceil(t.size / pageSize);
  const cached = rows[at + FIELD.cached];
  row.path = t.path;
  row.size = t.size;
  row.offset = 0;
  row.length = t.size;
  row.cached = cached;
  row.total = total;
  row.percent = total === 0 ? 100 : (100 * cached) / total;
  row.residentBytes = cached * pageSize;
  row.dirty = rows[at + FIELD.dirty];
  row.writeback = rows[at + FIELD.writeback];
  row.evicted = rows[at + FIELD.evicted];
  row.recentlyEvicted = rows[at + FIELD.recentlyEvicted];
  row.source = 'cachestat';
  return row;
}

/** A StatFile to be filled by rowFromCounts. */
const blankRow = (): StatFile => ({
  path: '',
  size: 0,
  offset: 0,
  length: 0,
  cached: 0,
  total: 0,
  percent: 0,
  residentBytes: 0,
  dirty: null,
  writeback: null,
  evicted: null,
  recentlyEvicted: null,
  source: 'cachestat',
});

/** The summary, summed as rows come (the rows themselves need not be kept). */
export class StatSums {
  files = 0;
  size = 0;
  length = 0;
  cached = 0;
  total = 0;
  dirty: number | null = null;
  writeback: number | null = null;
  evicted: number | null = null;
  recentlyEvicted: number | null = null;

  add(size: number, length: number, cached: number, total: number, c: CacheCounts): void {
    this.files++;
    this.size += size;
    this.length += length;
    this.cached += cached;
    this.total += total;
    if (c.dirty !== null) this.dirty = (this.dirty ?? 0) + c.dirty;
    if (c.writeback !== null) this.writeback = (this.writeback ?? 0) + c.writeback;
    if (c.evicted !== null) this.evicted = (this.evicted ?? 0) + c.evicted;
    if (c.recentlyEvicted !== null) this.recentlyEvicted = (this.recentlyEvicted ?? 0) + c.recentlyEvicted;
  }

  summary(run: StatOutputRun, pageSize: number): StatSummary {
    return {
      files: this.files,
      directories: run.directories,
      errors: run.failures.length,
      size: this.size,
      length: this.length,
      cached: this.cached,
      total: this.total,
      percent: this.total === 0 ? 100 : (100 * this.cached) / this.total,
      residentBytes: this.cached * pageSize,
      dirty: this.dirty,
      writeback: this.writeback,
      evicted: this.evicted,
      recentlyEvicted: this.recentlyEvicted,
    };
  }
}

/** `stat` from the counts taken while collecting (see statNeedsOnlyCounts): no per-file object is made for the table. */
export function statFromCounts(run: CountsRun, json: boolean): number {
  const { files, pageSize } = run;
  const sums = new StatSums();
  const row = blankRow();
  for (const t of files) {
    rowFromCounts(t, pageSize, row);
    sums.add(row.size, row.length, row.cached, row.total, row);
  }
  const summary = sums.summary(run, pageSize);
  if (json) writeStatJson(run, run, files.length, (i) => rowFromCounts(files[i], pageSize, blankRow()), summary);
  else printStatTable(run, run.summaryOnly ? 0 : files.length, (i) => rowFromCounts(files[i], pageSize, row), summary);
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}

export function statCommand(run: Run, json: boolean, pages = false): number {
  const { pw } = run;
  const context: StatContext = { pageSize: pw.pageSize, kind: pw.kind };
  if (statNeedsOnlyCounts(run.files, run.range, run.verbose, pages)) return statFromCounts({ ...run, ...context }, json);
  run.snapshot = pages;
  // Rows in order: a Target whose batch counts are the row, or a StatFile made here.
  // With --summary (and no --json) rows are not kept at all.
  const rows: Array<Target | StatFile> = [];
  const keep = json || !run.summaryOnly;
  const sums = new StatSums();
  const scratch = blankRow();
  for (const target of run.files) {
    // Whole files without strips: the counts the batch took while collecting (one cachestat each).
    if (target.rows !== undefined && run.range === undefined && !run.verbose && !pages) {
      const r = rowFromCounts(target, pw.pageSize, scratch);
      sums.add(r.size, r.length, r.cached, r.total, r);
      if (keep) rows.push(target);
      continue;
    }
    try {
      const row = withOpenFile(target.path, (fd, size) => statOne(run, target.path, fd, size));
      sums.add(row.size, row.length, row.cached, row.total, row);
      if (keep) rows.push(row);
    } catch (err) {
      fail(run, target.path, err);
    }
  }
  const summary = sums.summary(run, pw.pageSize);
  const at = (i: number): StatFile => {
    const r = rows[i];
    return 'source' in r ? r : rowFromCounts(r, pw.pageSize, json ? blankRow() : scratch);
  };
  if (json) writeStatJson(run, context, rows.length, at, summary);
  else printStatTable(run, run.summaryOnly ? 0 : rows.length, at, summary);
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}

function writeStatJson(run: StatOutputRun, context: StatContext, count: number, at: (i: number) => StatFile, summary: StatSummary): void {
  const files: StatFile[] = new Array(count);
  for (let i = 0; i < count; i++) files[i] = at(i);
  const doc = {
    backend: context.kind,
    pageSize: context.pageSize,
    range: run.range === undefined ? null : { start: run.range.start, end: run.range.end ?? null },
    files,
    summary,
    errors: run.failures.map((f) => ({ path: f.path, code: f.code, message: f.reason })),
  };
  run.io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

function statOne(run: Run, file: string, fd: number, size: number): StatFile {
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
  if (run.verbose) row.strip = length === 0 ? '' : rangeStrip(run, fd, file, offset, length);
  if (run.snapshot) row.resident = length === 0 ? [] : rangeRuns(run, fd, file, offset, length);
  return row;
}

/** The first page of [offset, offset + length) and the number of pages it touches. */
function pageSpan(page: number, offset: number, length: number): { first: number; n: number } {
  const first = Math.floor(offset / page);
  return { first, n: Math.ceil((offset + length) / page) - first };
}

/** Bytes of page indexes [from, to) of a span, clipped to [offset, offset + length). */
function spanBytes(page: number, first: number, from: number, to: number, offset: number, length: number): { offset: number; length: number } {
  const start = Math.max(offset, (first + from) * page);
  const end = Math.min(offset + length, (first + to) * page);
  return { offset: start, length: end - start };
}

/** The -v strip of a range: one vector up to STRIP_VECTOR_PAGES pages, else counts per cell (bounded memory). */
function rangeStrip(run: Run, fd: number, file: string, offset: number, length: number): string {
  const page = run.pw.pageSize;
  const { first, n } = pageSpan(page, offset, length);
  if (n <= STRIP_VECTOR_PAGES) return residencyStrip(residency(run, fd, file, { offset, length }, true).pages ?? new Uint8Array(0));
  return residencyStripByCounts(n, (from, to) => residency(run, fd, file, spanBytes(page, first, from, to, offset, length)).cached);
}

/**
 * --pages: the runs of resident pages of a range, a chunk of STRIP_VECTOR_PAGES pages at a time
 * (a vector per chunk, not per file); a chunk with no page resident costs one count, one all
 * resident adds one run without a vector.
 */
function rangeRuns(run: Run, fd: number, file: string, offset: number, length: number): PageRuns {
  const page = run.pw.pageSize;
  const { first, n } = pageSpan(page, offset, length);
  const runs: PageRuns = [];
  const push = (from: number, to: number): void => {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === from) last[1] = to;
    else runs.push([from, to]);
  };
  for (let from = 0; from < n; from += STRIP_VECTOR_PAGES) {
    const to = Math.min(n, from + STRIP_VECTOR_PAGES);
    const bytes = spanBytes(page, first, from, to, offset, length);
    if (n > STRIP_VECTOR_PAGES) {
      const counted = residency(run, fd, file, bytes);
      if (counted.cached === 0) continue;
      if (counted.cached === counted.total) {
        push(first + from, first + to);
        continue;
      }
    }
    const pages = residency(run, fd, file, bytes, true).pages ?? new Uint8Array(0);
    for (const [a, b] of residentRuns(pages, first + from)) push(a, b);
  }
  return runs;
}

const TABLE_PIECE = 1 << 16;

function printStatTable(run: StatOutputRun, count: number, at: (i: number) => StatFile, summary: StatSummary): void {
  const withCachestat = summary.dirty !== null;
  const num = (v: number | null): string => (v === null ? '-' : String(v));
  const header = ['RESIDENT', 'PAGES', 'SIZE', 'PERCENT'];
  if (withCachestat) header.push('DIRTY', 'WRITEBACK', 'EVICTED', 'RECENT');
  const columns = header.length;
  // Sizes and percentages repeat across a tree: format each value once.
  const bytesText = new Map<number, string>();
  const percentText = new Map<number, string>();
  const bytesOf = (n: number): string => {
    let t = bytesText.get(n);
    if (t === undefined) bytesText.set(n, (t = formatBytes(n)));
    return t;
  };
  const percentOf = (n: number): string => {
    let t = percentText.get(n);
    if (t === undefined) percentText.set(n, (t = formatPercent(n)));
    return t;
  };
  const cells: string[] = new Array(columns);
  const cellsOf = (r: StatFile): void => {
    cells[0] = bytesOf(r.residentBytes);
    cells[1] = `${r.cached}/${r.total}`;
    cells[2] = bytesOf(r.size);
    cells[3] = percentOf(r.percent);
    if (withCachestat) {
      cells[4] = num(r.dirty);
      cells[5] = num(r.writeback);
      cells[6] = num(r.evicted);
      cells[7] = num(r.recentlyEvicted);
    }
  };
  // Two passes (column widths, then lines) over rows made on the fly: tens of thousands of
  // rows are common, and nothing per row outlives its line.
  const widths = header.map((h) => h.length);
  for (let i = 0; i < count; i++) {
    cellsOf(at(i));
    for (let c = 0; c < columns; c++) if (cells[c].length > widths[c]) widths[c] = cells[c].length;
  }
  // Padding strings made once: a line is then built from existing strings only.
  const pads: string[] = [];
  for (let n = 0, p = ''; n <= Math.max(...widths) + 2; n++, p += ' ') pads.push(p);
  const line = (from: readonly string[], file: string): string => {
    let text = pads[widths[0] - from[0].length] + from[0];
    for (let c = 1; c < columns; c++) text += pads[widths[c] - from[c].length + 2] + from[c];
    return `${text}  ${file}\n`;
  };
  // Written in pieces of about TABLE_PIECE characters: few writes, and no string of the
  // whole table kept alive (what the garbage collector would copy again and again).
  let text = '';
  if (count > 0) {
    text += line(header, 'FILE');
    for (let i = 0; i < count; i++) {
      const r = at(i);
      cellsOf(r);
      text += line(cells, showPath(r.path));
      if (r.strip !== undefined) text += `  [${r.strip}] ${r.cached}/${r.total}\n`;
      if (text.length >= TABLE_PIECE) {
        run.io.stdout.write(text);
        text = '';
      }
    }
  }
  run.io.stdout.write(text + statSummaryLine(run, summary));
}

/** The last line of stat's table: files, bytes, pages resident, cachestat counts, what was skipped, errors. */
export function statSummaryLine(run: StatOutputRun, summary: StatSummary): string {
  if (summary.files === 0) return `0 files${inDirectories(run)}${errorCount(run)}\n`;
  let text =
    `${plural(summary.files, 'file')}${inDirectories(run)}, ${formatBytes(run.range === undefined ? summary.size : summary.length)}` +
    `${run.range === undefined ? '' : ' in range'}: ${summary.cached}/${summary.total} pages resident` +
    ` (${formatPercent(summary.percent)}, ${formatBytes(summary.residentBytes)})`;
  if (summary.dirty !== null) {
    text += `; dirty ${summary.dirty}, writeback ${summary.writeback}, evicted ${summary.evicted}, recently evicted ${summary.recentlyEvicted}`;
  }
  return `${text}${errorCount(run)}\n`;
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
