// The file commands of the `pagewise` CLI: stat, touch, evict, lock. Each is
// built on the library's public API (fileResidency, evict, mapFile + populate /
// lock) and returns the process exit code.
import * as fs from 'node:fs';
import { SingleBar } from 'cli-progress';
import type { FileResidency, Pagewise } from '../api';
import type { Mapping } from '../mapping';
import { type ByteRange, clipRange, formatBytes, formatPercent } from './args';
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
}

const out = (run: Run, line: string): void => void run.io.stdout.write(`${line}\n`);

export function reportFailure(io: CliIO, f: Failure): void {
  io.stderr.write(`pagewise: ${f.path}: ${f.reason}\n`);
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
const errorCount = (run: Run): string => (run.failures.length > 0 ? `; ${plural(run.failures.length, 'error')}` : '');

/** [offset, length) for the file, rounded outward to pages and clipped to the file (as mapFile needs it). */
function alignedRange(run: Run, size: number): { offset: number; length: number } {
  const { offset, length } = clipRange(run.range, size);
  if (length === 0) return { offset, length: 0 };
  const page = run.pw.pageSize;
  const start = Math.floor(offset / page) * page;
  const end = Math.min(Math.ceil((offset + length) / page) * page, size);
  return { offset: start, length: end - start };
}

/** Current size of a file, for the range (the size found while collecting may be stale). */
function currentSize(file: string): number {
  return fs.statSync(file).size;
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

/** fileResidency, with a clear failure instead of an EPERM or an answer the kernel made up. */
function residency(run: Run, file: string, range: { offset: number; length: number } | undefined, pages = false): FileResidency {
  let r: FileResidency;
  try {
    r = range === undefined && !pages ? run.pw.fileResidency(file) : run.pw.fileResidency(file, { ...range, pages });
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

export function statCommand(run: Run, json: boolean): number {
  const { pw } = run;
  const rows: StatFile[] = [];
  for (const target of run.files) {
    try {
      const size = currentSize(target.path);
      const { offset, length } = clipRange(run.range, size);
      let r: { cached: number; total: number; percent: number; source: StatFile['source']; dirty?: number; writeback?: number; evicted?: number; recentlyEvicted?: number };
      if (length === 0 && run.range !== undefined) {
        // The range misses the file entirely (a zero-length range would mean "to the end" to cachestat).
        r = { cached: 0, total: 0, percent: 100, source: 'none' };
      } else {
        r = residency(run, target.path, run.range === undefined ? undefined : { offset, length });
      }
      const row: StatFile = {
        path: target.path,
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
      if (run.verbose) {
        const pages = length === 0 ? undefined : residency(run, target.path, { offset, length }, true).pages;
        row.strip = residencyStrip(pages ?? new Uint8Array(0));
      }
      rows.push(row);
    } catch (err) {
      fail(run, target.path, err);
    }
  }

  const sum = (key: 'dirty' | 'writeback' | 'evicted' | 'recentlyEvicted'): number | null => {
    const have = rows.filter((r) => r[key] !== null);
    return have.length === 0 ? null : have.reduce((a, r) => a + (r[key] as number), 0);
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

function printStatTable(run: Run, rows: StatFile[], summary: StatSummary): void {
  const withCachestat = rows.some((r) => r.dirty !== null);
  const num = (v: number | null): string => (v === null ? '-' : String(v));
  const header = ['RESIDENT', 'PAGES', 'SIZE', 'PERCENT'];
  if (withCachestat) header.push('DIRTY', 'WRITEBACK', 'EVICTED', 'RECENT');
  const table = rows.map((r) => {
    const cells = [formatBytes(r.residentBytes), `${r.cached}/${r.total}`, formatBytes(r.size), formatPercent(r.percent)];
    if (withCachestat) cells.push(num(r.dirty), num(r.writeback), num(r.evicted), num(r.recentlyEvicted));
    return cells;
  });
  if (rows.length > 0) {
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((cells) => cells[i].length)));
    const line = (cells: string[], file: string): string => `${cells.map((c, i) => c.padStart(widths[i])).join('  ')}  ${file}`;
    out(run, line(header, 'FILE'));
    rows.forEach((r, i) => {
      out(run, line(table[i], r.path));
      if (r.strip !== undefined) out(run, `  [${r.strip}] ${r.cached}/${r.total}`);
    });
  }
  if (summary.files === 0) {
    out(run, `0 files${inDirectories(run)}${errorCount(run)}`);
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
  out(run, text);
}

// ---------------------------------------------------------------------------
// touch

/** Bytes populated per call: the progress bar moves between calls. */
export const TOUCH_CHUNK = 64 * 2 ** 20;

export async function touchCommand(run: Run, progress: boolean): Promise<number> {
  const { pw, io } = run;
  const started = process.hrtime.bigint();
  const plan = run.files.map((t) => ({ target: t, ...alignedRange(run, t.size) }));
  const totalBytes = plan.reduce((a, p) => a + p.length, 0);
  const bar =
    progress && io.stdout.isTTY === true
      ? new SingleBar({
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
  let files = 0;
  const lines: string[] = [];
  const deferred: Failure[] = []; // failures met while the bar is drawn, reported once it is gone
  bar?.start(Math.max(totalBytes, 1), 0, payload(''));
  try {
    for (const p of plan) {
      let touched = 0;
      try {
        // Map what the file holds now: a file that shrank since it was listed must not be mapped past its end.
        const { offset, length } = alignedRange(run, currentSize(p.target.path));
        if (length > 0) {
          const m = pw.mapFile(p.target.path, { offset, length });
          try {
            for (let pos = 0; pos < length; pos += TOUCH_CHUNK) {
              const n = Math.min(TOUCH_CHUNK, length - pos);
              bar?.update(progressed, payload(p.target.path));
              await m.populate({ offset: pos, length: n, mode: 'read' });
              touched += n;
              progressed += n;
            }
          } finally {
            m.close();
          }
        }
        files++;
        touchedBytes += touched;
        if (run.verbose) lines.push(`touched ${p.target.path} (${formatBytes(touched)})`);
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
  out(run, `touched ${plural(files, 'file')}${inDirectories(run)}: ${formatBytes(touchedBytes)} in ${seconds.toFixed(2)} s${rate}${errorCount(run)}`);
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
      const size = currentSize(target.path);
      const { offset, length } = clipRange(run.range, size);
      if (run.range === undefined) pw.evict(target.path);
      else if (length > 0) pw.evict(target.path, { offset, length });
      files++;
      bytes += length;
      // What stayed: dirty pages (until written back), pages mapped or locked by some process.
      let after: FileResidency | undefined;
      if (length > 0) {
        try {
          after = residency(run, target.path, run.range === undefined ? undefined : { offset, length });
          cachedAfter += after.cached;
          totalAfter += after.total;
        } catch {
          unknownAfter++; // evicted, but this process may not see residency (files it neither owns nor can write)
        }
      }
      if (run.verbose) {
        const left = after === undefined ? (length > 0 ? 'residency unknown' : 'nothing to evict') : `${after.cached}/${after.total} pages still resident`;
        out(run, `evicted ${target.path} (${formatBytes(length)}): ${left}`);
      }
    } catch (err) {
      fail(run, target.path, err);
    }
  }
  out(
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

export async function lockCommand(run: Run): Promise<number> {
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
        const { offset, length } = alignedRange(run, currentSize(target.path));
        if (length === 0) {
          out(run, `skipped ${target.path} (nothing to lock: empty file or range)`);
          continue;
        }
        // Mapping.lock() locks the file's page-cache pages, not private copies.
        mapping = pw.mapFile(target.path, { offset, length });
        const entry = { path: target.path, mapping, locked: false };
        held.push(entry);
        // A signal does not wait for mlock of a large file: stop waiting, and close (below) abandons it.
        const done = await Promise.race([mapping.lock().then(() => true), stopped.then(() => false)]);
        if (!done || stopping) break;
        entry.locked = true;
        lockedBytes += length;
        out(run, `locked ${target.path} (${formatBytes(length)})`);
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
      out(
        run,
        `locked ${plural(count, 'file')}, ${formatBytes(lockedBytes)}` +
          (run.failures.length > 0 ? ` (${plural(run.failures.length, 'error')})` : '') +
          '; waiting for SIGINT or SIGTERM (Ctrl-C) to unlock and exit',
      );
      await stopped;
    }
    out(run, `unlocking ${plural(count, 'file')}`);
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
    io.signal?.removeEventListener('abort', stop);
  }
}
