// The addon's `cli` export (native/cli/): open + fstat (+ cachestat) of many files in one
// call, and the native directory walk, for `pagewise stat` over large trees. Not part of
// the library's Backend: only the command line loads it. Files are opened O_NONBLOCK, so a
// path that became a FIFO after the walk cannot block the command.
//
// Their rows are doubles, one per field; the layout is the addon's (native/cli/stat_row.h,
// exported as cli.rowFields): this file finds each field by name, it does not copy the order.
import { errnoError } from '../../errors';
import { loadNativeAddon } from '../../native';

/** The fields of a row this package reads (any order: their places come from the addon). */
const FIELD_NAMES = ['errno', 'stage', 'regular', 'dev', 'ino', 'size', 'cached', 'dirty', 'writeback', 'evicted', 'recentlyEvicted'] as const;
export type RowField = (typeof FIELD_NAMES)[number];

/** What walkFiles returns: the regular files under a directory, in depth-first name order. */
export interface NativeWalk {
  /** Paths, each followed by a NUL. */
  files: string;
  /** One row per path. */
  rows: Float64Array;
  /** Directories read. */
  directories: number;
  /** "path\0errno\0" for each directory that could not be read. */
  errors: string;
  /** Rows with an error, or of a file no longer regular. */
  unusual: number;
}

/** The addon's `cli` object (native/cli/cli.cc). */
interface CliAddon {
  statFiles(paths: string, wantCachestat: boolean): Float64Array;
  walkFiles(dir: string, wantCachestat: boolean, maxFiles?: number, unique?: boolean): NativeWalk;
  statText(rows: Float64Array, paths: string, pageSize: number, json: boolean, fd?: number): Uint8Array | number;
  statSums(rows: Float64Array, pageSize: number): Float64Array;
  readonly rowFields: readonly string[];
  readonly stages: readonly string[];
}

export interface StatNative {
  /**
   * Open (O_NONBLOCK) + fstat (+ cachestat of the whole file) of each path (`paths`: each
   * followed by a NUL; at most 2^20, else RangeError ERR_OUT_OF_RANGE): one row each, in order.
   */
  statFiles(paths: string, wantCachestat: boolean): Float64Array;
  /**
   * Walk a directory and statFiles() every regular file in it (RangeError ERR_OUT_OF_RANGE
   * past maxFiles, at most 2^20). `unique`: each file once (device + inode), at its first path.
   */
  walkFiles(dir: string, wantCachestat: boolean, maxFiles?: number, unique?: boolean): NativeWalk;
  /**
   * `pagewise stat`'s table lines (header included) or --json "files" entries for rows of
   * regular files with whole-file counts (native/cli/stat_text.cc), the same bytes as
   * lib/cli/stat/text.ts writes: a Buffer, or with `fd` written to it (then 0 or the errno of the failed write).
   */
  statText(rows: Float64Array, paths: string, pageSize: number, json: boolean, fd?: number): Uint8Array | number;
  /** [size, cached, total pages, dirty, writeback, evicted, recently evicted] summed over such rows. */
  statSums(rows: Float64Array, pageSize: number): Float64Array;
  /** The page size the addon was built for. */
  readonly pageSize: number;
}

/** The place of each field in a row, and the doubles per row. */
export const FIELD = {} as Readonly<Record<RowField, number>>;
export let FIELDS = 0;
/** The system call that failed, by the row's `stage`. */
let STAGES: readonly string[] = [];

let loaded: StatNative | undefined;

/**
 * The CLI's native calls (the addon loads once). Throws (code ERR_PAGEWISE_NATIVE_UNAVAILABLE)
 * when the addon cannot load; FIELD and FIELDS are filled in by the first call.
 */
export function statNative(): StatNative {
  if (loaded !== undefined) return loaded;
  const addon = loadNativeAddon();
  const cli = (addon as { cli?: CliAddon }).cli;
  if (cli === undefined) throw new Error('pagewise: internal error: the addon has no `cli` export');
  const places = Object.fromEntries(cli.rowFields.map((name, i) => [name, i]));
  for (const name of FIELD_NAMES) {
    if (typeof places[name] !== 'number') throw new Error(`pagewise: internal error: the addon's stat rows have no field '${name}'`);
  }
  Object.assign(FIELD, places);
  FIELDS = cli.rowFields.length;
  STAGES = cli.stages;
  loaded = { statFiles: cli.statFiles, walkFiles: cli.walkFiles, statText: cli.statText, statSums: cli.statSums, pageSize: addon.pageSize };
  return loaded;
}

/** The syscall a row's `stage` names ('open' for one it does not know). */
export const stageSyscall = (stage: number): string => STAGES[stage] || 'open';
/** The `stage` of a row whose cachestat failed. */
export const cachestatStage = (): number => STAGES.indexOf('cachestat');

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

/** Rows of statFiles() for every path, in order. */
export interface StatRows {
  rows: Float64Array;
  paths: readonly string[];
  /** The rows hold cachestat counts (asked for). */
  cachestat: boolean;
}

/** The error of row i as a Node-style errno error, or undefined. */
export function rowError(s: StatRows, i: number): NodeJS.ErrnoException | undefined {
  const errno = s.rows[i * FIELDS + FIELD.errno];
  if (errno === 0) return undefined;
  return errnoError(errno, stageSyscall(s.rows[i * FIELDS + FIELD.stage]));
}

/** One open + fstat (+ cachestat when `wantCachestat`) per path, in order, CHUNK paths per call. */
export function statPaths(native: StatNative, paths: readonly string[], wantCachestat: boolean): StatRows {
  const rows = new Float64Array(paths.length * FIELDS);
  for (let from = 0; from < paths.length; from += CHUNK) {
    const chunk = paths.slice(from, from + CHUNK);
    // NUL ends each path; a path holding a NUL cannot name a file: send '' (ENOENT) instead.
    const joined = `${chunk.map((p) => (p.includes('\0') ? '' : p)).join('\0')}\0`;
    rows.set(native.statFiles(joined, wantCachestat), from * FIELDS);
  }
  return { rows, paths, cachestat: wantCachestat };
}
