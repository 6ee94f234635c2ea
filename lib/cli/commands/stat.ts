// `pagewise stat`: residency per file (cachestat where the kernel has it, else mincore), as
// a table, the summary line alone, or JSON; -v adds vmtouch's strip, --pages the runs of
// resident pages (a snapshot for `touch --from`).
import { type ByteRange, clipRange, formatBytes, formatPercent } from '../args';
import { FIELD } from '../batch';
import type { Target } from '../files';
import { type PageRuns, residentRuns } from '../snapshot';
import { EXIT_FAILED, EXIT_OK, type Run, errorCount, fail, inDirectories, plural, showPath, withOpenFile } from '../run';
import { residency } from './residency';

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
