// What `pagewise stat` prints: the table (a header, a line per file, the summary line) or
// the JSON document. One writer for both ways files come: StatFile rows made through the
// library's API (lib/cli/commands/stat.ts) and whole-file rows of the native batch, read
// into one reused StatFile at a time (rowOf; lib/cli/stat/counted.ts): no object per file
// is kept for a table. Tens of thousands of lines are common, and in a short-lived process
// this code runs cold: each line is built from strings formatted once per distinct value.
import { formatBytes, formatPercent } from '../args';
import type { Run } from '../run';
import { errorCount, inDirectories, plural, showPath } from '../run';
import type { PageRuns } from '../snapshot';
import { FIELD } from './native';

/** cachestat(2) counts in pages; null when the kernel has no cachestat (mincore was used). */
export interface CacheCounts {
  dirty: number | null;
  writeback: number | null;
  evicted: number | null;
  recentlyEvicted: number | null;
}

/** One file of stat's output (the members of a "files" entry of --json, in this order). */
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

/** What stat's output needs besides the rows: the page size and the backend's name. */
export interface StatContext {
  pageSize: number;
  kind: 'native' | 'simulator';
}

/** The parts of a Run that printing the result of stat needs. */
export type StatOutputRun = Pick<Run, 'io' | 'directories' | 'failures' | 'range' | 'summaryOnly' | 'skippedLarge' | 'skippedOtherFs'>;

/** A StatFile to be filled by rowOf. */
export const blankRow = (): StatFile => ({
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

/** The StatFile of the whole-file row at `at` of a native batch (lib/cli/stat/native.ts), written into `row`. */
export function rowOf(rows: Float64Array, at: number, path: string, pageSize: number, row: StatFile): StatFile {
  const size = rows[at + FIELD.size];
  const total = Math.ceil(size / pageSize);
  const cached = rows[at + FIELD.cached];
  row.path = path;
  row.size = size;
  row.offset = 0;
  row.length = size;
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

  add(r: StatFile): void {
    this.files++;
    this.size += r.size;
    this.length += r.length;
    this.cached += r.cached;
    this.total += r.total;
    if (r.dirty !== null) this.dirty = (this.dirty ?? 0) + r.dirty;
    if (r.writeback !== null) this.writeback = (this.writeback ?? 0) + r.writeback;
    if (r.evicted !== null) this.evicted = (this.evicted ?? 0) + r.evicted;
    if (r.recentlyEvicted !== null) this.recentlyEvicted = (this.recentlyEvicted ?? 0) + r.recentlyEvicted;
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

/** Text is written in pieces of about this many characters: few writes, and no string of the whole output kept alive. */
const PIECE = 1 << 16;

/**
 * Writes the table's header and lines (json false) or the "files" entries, joined by ",\n"
 * (json true), of `count` files in place of the loop over at(i) below: the native writer
 * (lib/cli/stat/counted.ts).
 */
export type StatBody = (json: boolean) => void;

/**
 * stat's output: the JSON document, or the table (its lines unless `summaryOnly`, then the
 * summary line). The files are at(0) ... at(count - 1), asked for in order (a table asks
 * twice: widths, then lines), or written by `body`.
 */
export function writeStat(
  run: StatOutputRun,
  context: StatContext,
  count: number,
  at: (i: number) => StatFile,
  summary: StatSummary,
  json: boolean,
  body?: StatBody,
): void {
  if (json) writeJson(run, context, count, at, summary, body);
  else writeTable(run, run.summaryOnly ? 0 : count, at, summary, body);
}

/** Characters of String(n) for an integer 0 <= n < 1e21. */
function digits(n: number): number {
  let d = 1;
  for (let p = 10; n >= p && d < 21; p *= 10) d++;
  return d;
}

const HEADER = ['RESIDENT', 'PAGES', 'SIZE', 'PERCENT', 'DIRTY', 'WRITEBACK', 'EVICTED', 'RECENT'];

function writeTable(run: StatOutputRun, count: number, at: (i: number) => StatFile, summary: StatSummary, body?: StatBody): void {
  if (body !== undefined) {
    if (count > 0) body(false);
    run.io.stdout.write(statSummaryLine(run, summary));
    return;
  }
  const withCachestat = summary.dirty !== null;
  // Sizes and percentages repeat across a tree: each value is formatted once.
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
  const countWidth = (v: number | null): number => (v === null ? 1 : digits(v));
  // Two passes over rows made on the fly (column widths, then lines): nothing per row
  // outlives its line. Widths start at the header's.
  let [w0, w1, w2, w3, w4, w5, w6, w7] = HEADER.map((h) => h.length);
  let l: number;
  for (let i = 0; i < count; i++) {
    const r = at(i);
    if ((l = bytesOf(r.residentBytes).length) > w0) w0 = l;
    if ((l = digits(r.cached) + 1 + digits(r.total)) > w1) w1 = l;
    if ((l = bytesOf(r.size).length) > w2) w2 = l;
    if ((l = percentOf(r.percent).length) > w3) w3 = l;
    if (withCachestat) {
      if ((l = countWidth(r.dirty)) > w4) w4 = l;
      if ((l = countWidth(r.writeback)) > w5) w5 = l;
      if ((l = countWidth(r.evicted)) > w6) w6 = l;
      if ((l = countWidth(r.recentlyEvicted)) > w7) w7 = l;
    }
  }
  // Padding strings made once: a line is then built from existing strings only. Each
  // column after the first is two spaces wider (the gap before it).
  const pads: string[] = [];
  for (let n = 0, p = ''; n <= Math.max(w0, w1, w2, w3, w4, w5, w6, w7) + 2; n++, p += ' ') pads.push(p);
  w1 += 2;
  w2 += 2;
  w3 += 2;
  w4 += 2;
  w5 += 2;
  w6 += 2;
  w7 += 2;
  let text = '';
  if (count > 0) {
    const widths = [w0, w1, w2, w3, w4, w5, w6, w7];
    for (let c = 0; c < (withCachestat ? 8 : 4); c++) text += pads[widths[c] - HEADER[c].length] + HEADER[c];
    text += '  FILE\n';
    for (let i = 0; i < count; i++) {
      const r = at(i);
      const resident = bytesOf(r.residentBytes);
      const pages = `${r.cached}/${r.total}`;
      const size = bytesOf(r.size);
      const percent = percentOf(r.percent);
      text += pads[w0 - resident.length] + resident + pads[w1 - pages.length] + pages + pads[w2 - size.length] + size + pads[w3 - percent.length] + percent;
      if (withCachestat) {
        const dirty = `${r.dirty ?? '-'}`;
        const writeback = `${r.writeback ?? '-'}`;
        const evicted = `${r.evicted ?? '-'}`;
        const recent = `${r.recentlyEvicted ?? '-'}`;
        text += pads[w4 - dirty.length] + dirty + pads[w5 - writeback.length] + writeback + pads[w6 - evicted.length] + evicted + pads[w7 - recent.length] + recent;
      }
      text += `  ${showPath(r.path)}\n`;
      if (r.strip !== undefined) text += `  [${r.strip}] ${r.cached}/${r.total}\n`;
      if (text.length >= PIECE) {
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

/** The "files" member of the JSON document while it has no entries: where the entries go. */
const FILES_EMPTY = '\n  "files": [],\n';

/**
 * The document JSON.stringify(doc, null, 2) would write, with the "files" entries written
 * one at a time (fileJson): no array of every file, no string of the whole document.
 */
function writeJson(run: StatOutputRun, context: StatContext, count: number, at: (i: number) => StatFile, summary: StatSummary, body?: StatBody): void {
  const doc = {
    backend: context.kind,
    pageSize: context.pageSize,
    range: run.range === undefined ? null : { start: run.range.start, end: run.range.end ?? null },
    files: [],
    summary,
    errors: run.failures.map((f) => ({ path: f.path, code: f.code, message: f.reason })),
  };
  const whole = JSON.stringify(doc, null, 2);
  const split = whole.indexOf(FILES_EMPTY);
  if (count === 0) {
    run.io.stdout.write(`${whole}\n`);
    return;
  }
  if (split < 0) throw new Error('pagewise: internal error: no "files" member in the JSON document');
  let text = `${whole.slice(0, split)}\n  "files": [\n`;
  if (body !== undefined) {
    run.io.stdout.write(text);
    body(true);
    text = '';
  } else for (let i = 0; i < count; i++) {
    text += (i === 0 ? '' : ',\n') + fileJson(at(i));
    if (text.length >= PIECE) {
      run.io.stdout.write(text);
      text = '';
    }
  }
  run.io.stdout.write(`${text}\n  ],\n${whole.slice(split + FILES_EMPTY.length)}\n`);
}

/**
 * A "files" entry as JSON.stringify(doc, null, 2) writes it (members in StatFile's order;
 * a number as Number#toString writes it, null as null). Entries with a strip or resident
 * runs are rare (-v, --pages): JSON.stringify writes those.
 */
export function fileJson(r: StatFile): string {
  if (r.strip !== undefined || r.resident !== undefined) return `    ${JSON.stringify(r, null, 2).replace(/\n/g, '\n    ')}`;
  return (
    `    {\n      "path": ${JSON.stringify(r.path)},\n      "size": ${r.size},\n      "offset": ${r.offset},\n      "length": ${r.length},` +
    `\n      "cached": ${r.cached},\n      "total": ${r.total},\n      "percent": ${r.percent},\n      "residentBytes": ${r.residentBytes},` +
    `\n      "dirty": ${r.dirty},\n      "writeback": ${r.writeback},\n      "evicted": ${r.evicted},\n      "recentlyEvicted": ${r.recentlyEvicted},` +
    `\n      "source": "${r.source}"\n    }`
  );
}
