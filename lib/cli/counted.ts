// `pagewise stat` of whole files (no --range, -v or --pages) on the native backend, with no
// JavaScript object or string per file: the native walk (walkFiles, each file once) and
// batch (statFiles) take the counts, this file drops the rows that are not files to show
// (errors, not regular, over --max-size, seen before), sums them, and the table or the
// JSON entries are written by native/stat_text.cc in one pass. In a short-lived process
// per-file JavaScript runs cold; for a tree of 20,000 files it was most of the time.
// Anything this path does not do the same way (filters, --follow, --one-file-system, a
// cachestat error to explain, a tree past walkFiles' bound) goes to collectFiles + statCommand.
import { constants } from 'node:os';
import type { Backend } from '../backend';
import type { PathFilter } from './args';
import { errnoError } from '../errors';
import { CHUNK, FIELD, FIELDS, STAGE_SYSCALL } from './batch';
import { type CliIO, EXIT_FAILED, EXIT_OK, reportFailure } from './run';
import { StatSums, statSummaryLine } from './commands/stat';
import { type Failure, type NativeWalk, failureOf, notRegular, statArgument, walkFailures } from './files';

/** The files to show, as rows of Backend.statFiles (FIELDS doubles each) and their paths, each ended by a NUL. */
export interface Counted {
  rows: Float64Array;
  paths: string;
  count: number;
  directories: number;
  failures: Failure[];
  skippedLarge: number;
}

interface Segment {
  paths: string;
  rows: Float64Array;
  /** Each file once already (walkFiles with `unique`). */
  unique: boolean;
  /** Rows with an error or of a file no longer regular (undefined: not counted). */
  unusual?: number;
}

/** The "files" member of stat's JSON document with no files, where the native entries go. */
const FILES_EMPTY = '\n  "files": [],\n';
const { EPIPE } = constants.errno;

const STAGE_CACHESTAT = STAGE_SYSCALL.indexOf('cachestat');

/** Paths of a segment, split only when a row is dropped or fails. */
const splitPaths = (paths: string): string[] => paths.split('\0');

/**
 * The files of `args` with their counts, or undefined when this path cannot answer as
 * collectFiles + statCommand would (see the top of the file). The directories walked by
 * then are in `walked`, for collectFiles (CollectOptions.walked): no tree is walked twice.
 */
export function collectCounted(
  args: readonly string[],
  filter: PathFilter,
  backend: Backend,
  options: { follow?: boolean; oneFileSystem?: boolean; maxSize?: number },
  walked?: Map<string, NativeWalk>,
): Counted | undefined {
  const { walkFiles, statFiles } = backend;
  if (!filter.empty || options.follow || options.oneFileSystem || walkFiles === undefined || statFiles === undefined || backend.statText === undefined || backend.statSums === undefined) {
    return undefined;
  }
  const failures: Failure[] = [];
  const segments: Segment[] = [];
  let named: string[] = [];
  let directories = 0;
  // Files named on the command line, in batches of CHUNK, in their place among the directories.
  const statNamed = (): void => {
    for (let from = 0; from < named.length; from += CHUNK) {
      const paths = `${named.slice(from, from + CHUNK).join('\0')}\0`;
      segments.push({ paths, rows: statFiles(paths, true), unique: false });
    }
    named = [];
  };
  for (const arg of args) {
    const st = statArgument(arg, failures);
    if (st === undefined) continue;
    if (st.isDirectory()) {
      statNamed();
      let walk: NativeWalk;
      try {
        walk = walkFiles(arg, true, undefined, true);
      } catch (err) {
        if ((err as { code?: unknown }).code === 'ERR_OUT_OF_RANGE') return undefined; // past 2^20 files: walked in chunks there
        throw err;
      }
      walked?.set(arg, walk);
      directories += walk.directories;
      walkFailures(walk, failures);
      segments.push({ paths: walk.files, rows: walk.rows, unique: true, unusual: walk.unusual });
    } else if (st.isFile()) {
      if (arg.includes('\0')) return undefined;
      named.push(arg);
    } else failures.push(notRegular(arg));
  }
  statNamed();

  // The same checks, in the same order, as collectFiles' loop over its rows.
  const seen = segments.length > 1 || segments.some((s) => !s.unique) ? new Map<number, Set<number>>() : undefined;
  let skippedLarge = 0;
  const kept: Segment[] = [];
  for (const seg of segments) {
    const { rows } = seg;
    const n = rows.length / FIELDS;
    // The common case, a single walk: nothing to drop, and no row to look at here.
    if (seen === undefined && seg.unusual === 0 && options.maxSize === undefined) {
      kept.push(seg);
      continue;
    }
    let names: string[] | undefined;
    let keep: Uint8Array | undefined;
    for (let i = 0, at = 0; i < n; i++, at += FIELDS) {
      let drop = true;
      const errno = rows[at + FIELD.errno];
      if (errno !== 0) {
        // cachestat refused (EPERM: a file neither owned nor writable): statCommand explains it per file.
        if (rows[at + FIELD.stage] === STAGE_CACHESTAT) return undefined;
        names ??= splitPaths(seg.paths);
        failures.push(failureOf(names[i], errnoError(errno, STAGE_SYSCALL[rows[at + FIELD.stage]] ?? 'open')));
      } else if (rows[at + FIELD.regular] !== 1) {
        names ??= splitPaths(seg.paths);
        failures.push(notRegular(names[i]));
      } else if (seen !== undefined && !firstSight(seen, rows[at + FIELD.dev], rows[at + FIELD.ino])) {
        // a hard link or a path named twice: shown once
      } else if (options.maxSize !== undefined && rows[at + FIELD.size] > options.maxSize) {
        skippedLarge++;
      } else drop = false;
      if (drop) (keep ??= new Uint8Array(n).fill(1))[i] = 0;
    }
    if (keep === undefined) {
      kept.push(seg);
      continue;
    }
    names ??= splitPaths(seg.paths);
    let paths = '';
    const out = new Float64Array(keep.reduce((a, b) => a + b, 0) * FIELDS);
    for (let i = 0, o = 0; i < n; i++) {
      if (keep[i] === 0) continue;
      paths += `${names[i]}\0`;
      out.set(rows.subarray(i * FIELDS, (i + 1) * FIELDS), o);
      o += FIELDS;
    }
    kept.push({ paths, rows: out, unique: true });
  }
  let rows: Float64Array;
  let paths: string;
  if (kept.length === 1) ({ rows, paths } = kept[0]);
  else {
    rows = new Float64Array(kept.reduce((a, s) => a + s.rows.length, 0));
    let o = 0;
    for (const s of kept) {
      rows.set(s.rows, o);
      o += s.rows.length;
    }
    paths = kept.map((s) => s.paths).join('');
  }
  return { rows, paths, count: rows.length / FIELDS, directories, failures, skippedLarge };
}

function firstSight(seen: Map<number, Set<number>>, dev: number, ino: number): boolean {
  let inodes = seen.get(dev);
  if (inodes === undefined) seen.set(dev, (inodes = new Set()));
  if (inodes.has(ino)) return false;
  inodes.add(ino);
  return true;
}

/** stat's output for counted files: the table (or with `summaryOnly` its last line only), or the JSON document. */
export function statCounted(io: CliIO, backend: Backend, counted: Counted, json: boolean, summaryOnly: boolean): number {
  const { rows, count } = counted;
  const pageSize = backend.pageSize;
  for (const f of counted.failures) reportFailure(io, f);
  const sums = new StatSums();
  if (count > 0) {
    const [size, cached, total, dirty, writeback, evicted, recentlyEvicted] = backend.statSums!(rows, pageSize);
    Object.assign(sums, { files: count, size, length: size, cached, total, dirty, writeback, evicted, recentlyEvicted });
  }
  const run = { io, directories: counted.directories, failures: counted.failures, range: undefined, skippedLarge: counted.skippedLarge, skippedOtherFs: 0 };
  const summary = sums.summary(run, pageSize);
  // The table lines or JSON entries, from native/stat_text.cc: written straight to the
  // descriptor when stdout is one (lib/cli/output.ts), else handed over as one buffer.
  const body = (asJson: boolean): void => {
    if (count === 0) return;
    const fd = io.stdout.fd;
    if (fd === undefined) {
      io.stdout.write(backend.statText!(rows, counted.paths, pageSize, asJson) as Uint8Array);
      return;
    }
    const errno = backend.statText!(rows, counted.paths, pageSize, asJson, fd) as number;
    // `pagewise stat dir | head`: the reader is gone; end quietly, as lib/cli/output.ts does.
    if (errno === EPIPE) process.exit(process.exitCode ?? 0);
    if (errno !== 0) throw errnoError(errno, 'write');
  };
  if (json) {
    const doc = {
      backend: backend.kind,
      pageSize,
      range: null,
      files: [],
      summary,
      errors: counted.failures.map((f) => ({ path: f.path, code: f.code, message: f.reason })),
    };
    const text = JSON.stringify(doc, null, 2);
    const at = text.indexOf(FILES_EMPTY);
    if (count === 0) io.stdout.write(`${text}\n`);
    else if (at < 0) throw new Error('pagewise: internal error: no "files" member in the JSON document');
    else {
      io.stdout.write(`${text.slice(0, at)}\n  "files": [\n`);
      body(true);
      io.stdout.write(`\n  ],\n${text.slice(at + FILES_EMPTY.length)}\n`);
    }
  } else {
    if (!summaryOnly) body(false);
    io.stdout.write(statSummaryLine(run, summary));
  }
  return counted.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}
