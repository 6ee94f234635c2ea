// `pagewise stat` of whole files (no --range, -v or --pages), with no JavaScript object kept
// per file: the native walk (walkFiles, each file once) and batch (statFiles) take the counts,
// this file drops the rows that are not files to show (errors, not regular, over --max-size,
// seen before), and the rows go to the writer (lib/cli/stat/text.ts) one at a time.
// Anything this path does not do the same way (filters, --follow, --one-file-system, a
// cachestat error to explain, a tree past walkFiles' bound) goes to collectFiles + statCommand.
import { constants } from 'node:os';
import { errnoError } from '../../errors';
import type { PathFilter } from '../args';
import { type Failure, failureOf, notRegular, statArgument, walkFailures } from '../files';
import { type CliIO, EXIT_FAILED, EXIT_OK, reportFailure } from '../run';
import { CHUNK, FIELD, FIELDS, type NativeWalk, type StatNative, cachestatStage, stageSyscall } from './native';
import { StatSums, blankRow, rowOf, writeStat } from './text';

/** The files to show, as rows of statFiles (FIELDS doubles each) and their paths, each ended by a NUL. */
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
  native: StatNative,
  options: { follow?: boolean; oneFileSystem?: boolean; maxSize?: number },
  walked?: Map<string, NativeWalk>,
): Counted | undefined {
  if (!filter.empty || options.follow || options.oneFileSystem) return undefined;
  const { walkFiles, statFiles } = native;
  const STAGE_CACHESTAT = cachestatStage();
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
        failures.push(failureOf(names[i], errnoError(errno, stageSyscall(rows[at + FIELD.stage]))));
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

/**
 * Which writer makes the text of counted files: 'native' (native/cli/stat_text.cc, the
 * default) or 'js' (lib/cli/stat/text.ts, what every other stat uses). The native one is kept
 * because it is faster on bench/cli-vs-vmtouch.mjs (docs/CLI.md); PAGEWISE_STAT_TEXT=js runs
 * the other there, and test/cli-text.test.ts holds the two to the same bytes.
 */
export type StatWriter = 'native' | 'js';
const DEFAULT_WRITER: StatWriter = process.env.PAGEWISE_STAT_TEXT === 'js' ? 'js' : 'native';
const { EPIPE } = constants.errno;

/** stat's output for counted files: the table (or with `summaryOnly` its last line only), or the JSON document. */
export function statCounted(
  io: CliIO,
  native: StatNative,
  counted: Counted,
  options: { json: boolean; summaryOnly: boolean; writer?: StatWriter },
): number {
  const { rows, count } = counted;
  const { json, summaryOnly } = options;
  const { pageSize } = native;
  for (const f of counted.failures) reportFailure(io, f);
  const run = { io, directories: counted.directories, failures: counted.failures, range: undefined, summaryOnly, skippedLarge: counted.skippedLarge, skippedOtherFs: 0 };
  const context = { pageSize, kind: 'native' } as const;
  const row = blankRow();
  const sums = new StatSums();
  if ((options.writer ?? DEFAULT_WRITER) === 'js') {
    for (let at = 0; at < rows.length; at += FIELDS) sums.add(rowOf(rows, at, '', pageSize, row));
    const paths = count === 0 || (summaryOnly && !json) ? [] : splitPaths(counted.paths);
    writeStat(run, context, count, (i) => rowOf(rows, i * FIELDS, paths[i], pageSize, row), sums.summary(run, pageSize), json);
  } else {
    if (count > 0) {
      const [size, cached, total, dirty, writeback, evicted, recentlyEvicted] = native.statSums(rows, pageSize);
      Object.assign(sums, { files: count, size, length: size, cached, total, dirty, writeback, evicted, recentlyEvicted });
    }
    // Written straight to the descriptor when stdout is one (lib/cli/output.ts), else handed over as one buffer.
    const body = (asJson: boolean): void => {
      const fd = io.stdout.fd;
      if (fd === undefined) {
        io.stdout.write(native.statText(rows, counted.paths, pageSize, asJson) as Uint8Array);
        return;
      }
      const errno = native.statText(rows, counted.paths, pageSize, asJson, fd) as number;
      // `pagewise stat dir | head`: the reader is gone; end quietly, as lib/cli/output.ts does.
      if (errno === EPIPE) process.exit(process.exitCode ?? 0);
      if (errno !== 0) throw errnoError(errno, 'write');
    };
    writeStat(run, context, count, () => row, sums.summary(run, pageSize), json, body);
  }
  return counted.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}
