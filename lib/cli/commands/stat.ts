// `pagewise stat`: residency per file (cachestat where the kernel has it, else mincore), as
// a table, the summary line alone, or JSON; -v adds vmtouch's strip, --pages the runs of
// resident pages (a snapshot for `touch --from`).
import { type ByteRange, clipRange } from '../args';
import type { Target } from '../files';
import { type PageRuns, residentRuns } from '../snapshot';
import { EXIT_FAILED, EXIT_OK, type Run, fail, withOpenFile } from '../run';
import { type StatContext, type StatFile, type StatOutputRun, StatSums, blankRow, rowOf, writeStat } from '../stat/text';
import { residency } from './residency';

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
  return rowOf(rows, at, t.path, pageSize, row);
}


/** `stat` from the counts taken while collecting (see statNeedsOnlyCounts): no per-file object is made for the table. */
export function statFromCounts(run: CountsRun, json: boolean): number {
  const { files, pageSize } = run;
  const sums = new StatSums();
  const row = blankRow();
  for (const t of files) sums.add(rowFromCounts(t, pageSize, row));
  writeStat(run, run, files.length, (i) => rowFromCounts(files[i], pageSize, row), sums.summary(run, pageSize), json);
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
      sums.add(rowFromCounts(target, pw.pageSize, scratch));
      if (keep) rows.push(target);
      continue;
    }
    try {
      const row = withOpenFile(target.path, (fd, size) => statOne(run, target.path, fd, size));
      sums.add(row);
      if (keep) rows.push(row);
    } catch (err) {
      fail(run, target.path, err);
    }
  }
  const at = (i: number): StatFile => {
    const r = rows[i];
    return 'source' in r ? r : rowFromCounts(r, pw.pageSize, scratch);
  };
  writeStat(run, context, rows.length, at, sums.summary(run, pw.pageSize), json);
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
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
