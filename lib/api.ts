// Pagewise: the public entry points bound to one backend. The package's default
// export binds the selected backend (lib/index.ts); tests bind both side by side.
import * as fs from 'node:fs';
import { type Advice, type AdviceConstant, adviceFromName } from './advice';
import type { Backend, RawFileResidency } from './backend';
import { FADV } from './constants';
import { openRegularFile, requireRegularFile } from './open-file';
import { errnoError, invalidArgType, invalidArgValue, kernelError, outOfRange } from './errors';
import { plural } from './plural';
import { trackMapping } from './memory-usage';
import { checkResidencyVector, CREATE, Mapping, WATCH, PROTECTION, PROTECTION_NAMES, type Protection } from './mapping';
import { inwardEnd, inwardStart, outwardEnd, outwardStart, roundDown, roundUp } from './pages';
import { optionKeys, RANGE_KEYS, type Range, validateBoolean, validateInteger, validateObject, validateOneOf } from './validate';
import { createSharedMemory, type SharedMemory, type SharedMemoryOptions } from './shared-memory';

export interface MapOptions {
  /** MAP_SHARED: the memory is shared with children after fork(). Default false (private). */
  shared?: boolean;
  /** Default 'read-write'. Any other protection makes a JavaScript access fault (SIGSEGV). */
  protection?: Protection;
  /** MAP_POPULATE: fault every page in now. */
  populate?: boolean;
  /** MAP_NORESERVE: do not reserve swap / commit charge (large sparse arenas). Not with hugePages (ERR_INVALID_ARG_VALUE): unreserved huge pages raise SIGBUS when the pool runs dry. */
  noreserve?: boolean;
  /** MAP_HUGETLB: true or '2MiB' for 2 MiB pages, '1GiB' for 1 GiB pages. Needs reserved huge pages (vm.nr_hugepages), else ENOMEM. */
  hugePages?: boolean | '2MiB' | '1GiB';
  /**
   * Name the memory: /proc/<pid>/maps shows `[anon:<name>]` (PR_SET_VMA_ANON_NAME, Linux 5.17+
   * with CONFIG_ANON_VMA_NAME). Up to 79 printable ASCII characters, none of \ ` $ [ ].
   * Best effort: where the kernel cannot (supportsMappingNames() is false, or shared memory)
   * the mapping is made unnamed and `mapping.name` is undefined.
   */
  name?: string;
}

export interface MapFileOptions {
  /**
   * 'private' (default): copy-on-write. JavaScript writes stay in this process and
   * never reach the file. 'shared': writes reach the file (flush() to force them
   * out); the file must be writable.
   */
  mode?: 'private' | 'shared';
  /** Byte offset into the file (any value; pagewise aligns the mapping itself). Default 0. */
  offset?: number;
  /** Bytes to map. Default: to the end of the file. Must not reach past the end of the file. */
  length?: number;
  /** MAP_POPULATE. */
  populate?: boolean;
  /**
   * Watch the file (inotify, does not keep the process alive): when it shrinks below the
   * mapping, detach the views reaching past its new end and emit 'truncate' on
   * mapping.truncation. Narrows the SIGBUS window, cannot close it (README "Hazards").
   */
  watch?: boolean;
}

export interface FileResidencyOptions extends Range {
  /** Also return the per-page vector (uses mmap + mincore instead of cachestat). */
  pages?: boolean;
}

export interface FileResidency extends Omit<RawFileResidency, 'source'> {
  /** File size in bytes. */
  size: number;
  /** cached / total as a percentage (100 for an empty range). */
  percent: number;
  /**
   * Which mechanism produced the numbers. 'simulator': the reference simulator's model of
   * a page cache (every file it has not evicted counts as cached), not this machine's.
   */
  source: RawFileResidency['source'] | 'simulator';
  /** True on the simulator backend: the counts are a model, not this machine's page cache. */
  simulated: boolean;
}

export type FileArgument = string | URL | Buffer | number;

const HUGE_SHIFT = { '2MiB': 21, '1GiB': 30 } as const;
const MAP_KEYS = optionKeys<MapOptions>()(['shared', 'protection', 'populate', 'noreserve', 'hugePages', 'name'] as const);
const MAP_FILE_KEYS = optionKeys<MapFileOptions>()(['mode', 'offset', 'length', 'populate', 'watch'] as const);
const FILE_RESIDENCY_KEYS = optionKeys<FileResidencyOptions>()(['offset', 'length', 'pages'] as const);

export class Pagewise {
  constructor(readonly backend: Backend) {}

  /** 'native' (the kernel, through the addon) or 'simulator'. */
  get kind(): 'native' | 'simulator' {
    return this.backend.kind;
  }

  get pageSize(): number {
    return this.backend.pageSize;
  }

  /** Whether this kernel knows the advice (madvise(NULL, 0, advice) == 0). */
  supports(advice: Advice | AdviceConstant): boolean {
    return this.backend.supports(adviceFromName(advice).value);
  }

  /** Longest Uint8Array view of a mapping this engine can hold (mapping.view() lengths are capped by it). */
  get maxViewLength(): number {
    return this.backend.maxViewLength;
  }

  /** Anonymous memory: zero-filled pages that exist only in this process (and its children if shared). */
  map(length: number, options?: MapOptions & object): Mapping {
    validateInteger('length', length, 1);
    const o = validateObject<MapOptions>('options', options, MAP_KEYS);
    const shared = o.shared === undefined ? false : validateBoolean('options.shared', o.shared);
    const protection = o.protection === undefined ? 'read-write' : validateOneOf('options.protection', o.protection, PROTECTION_NAMES);
    const populate = o.populate === undefined ? false : validateBoolean('options.populate', o.populate);
    const noreserve = o.noreserve === undefined ? false : validateBoolean('options.noreserve', o.noreserve);
    const name = o.name === undefined ? undefined : validateMappingName(o.name);
    let hugePageShift = 0;
    if (o.hugePages !== undefined && o.hugePages !== false) {
      // x86-64's default huge page size is 2 MiB.
      if (o.hugePages === true) hugePageShift = HUGE_SHIFT['2MiB'];
      else hugePageShift = HUGE_SHIFT[validateOneOf('options.hugePages', o.hugePages, ['2MiB', '1GiB'] as const)];
      if (noreserve) {
        // Without a reservation, mmap succeeds with an empty huge page pool and the
        // first touch of a page the pool cannot supply raises SIGBUS.
        throw invalidArgValue('options', o, 'cannot combine noreserve with hugePages: huge pages must be reserved at map() time');
      }
    }
    let region;
    try {
      region = this.backend.map({ length, protection: PROTECTION[protection], shared, populate, noreserve, hugePageShift });
    } catch (err) {
      throw kernelError(err, (code) =>
        code === 'ENOMEM' && hugePageShift !== 0
          ? 'no free huge pages of that size are reserved: raise vm.nr_hugepages (e.g. sysctl -w vm.nr_hugepages=N) or map without hugePages'
          : undefined,
      );
    }
    const named = name !== undefined && this.backend.nameMapping(region, name);
    const mapping = new Mapping(CREATE, {
      backend: this.backend,
      region,
      delta: 0,
      length,
      kind: 'anonymous',
      shared,
      protection,
      name: named ? name : undefined,
    });
    trackMapping(mapping);
    return mapping;
  }

  /** Whether map(length, { name }) can name memory on this kernel (PR_SET_VMA_ANON_NAME). */
  supportsMappingNames(): boolean {
    return this.backend.supportsMappingNames();
  }

  /** Map a file (path, file: URL, or open descriptor). The descriptor is not closed. */
  mapFile(file: FileArgument, options?: MapFileOptions & object): Mapping {
    const o = validateObject<MapFileOptions>('options', options, MAP_FILE_KEYS);
    const mode = o.mode === undefined ? 'private' : validateOneOf('options.mode', o.mode, ['private', 'shared'] as const);
    const populate = o.populate === undefined ? false : validateBoolean('options.populate', o.populate);
    const watch = o.watch === undefined ? false : validateBoolean('options.watch', o.watch);
    const shared = mode === 'shared';
    return withFile(file, shared ? 'r+' : 'r', (fd, path) => {
      const size = regularFileSize(fd, file);
      const offset = o.offset === undefined ? 0 : validateInteger('options.offset', o.offset, 0, size);
      const room = size - offset;
      // mmap(2) cannot map 0 bytes: say which of the caller's values left nothing to map.
      if (o.length === undefined && room === 0) {
        if (size === 0) throw invalidArgValue('file', file, 'is an empty file: mmap cannot map 0 bytes (give the file a size first, e.g. fs.truncateSync(path, 4096))');
        throw outOfRange('options.offset', `< ${size} (the file size: nothing is left to map from the end of the file)`, offset);
      }
      const length = o.length === undefined ? room : validateInteger('options.length', o.length, 0, room);
      if (length === 0) throw outOfRange('options.length', `>= 1 (the file has ${plural(room, 'byte')} from offset ${offset})`, length);
      let writable = path !== undefined ? shared : false;
      if (path === undefined) {
        let access: 'read' | 'write' | 'read-write';
        try {
          access = this.backend.accessMode(fd);
        } catch (err) {
          throw kernelError(err);
        }
        writable = access !== 'read';
        if (access === 'write') {
          // mmap needs read access to any file mapping: say so instead of EACCES from mmap.
          throw invalidArgValue('file', file, 'is a descriptor opened write-only: a mapping needs one opened for reading');
        }
        if (shared && access !== 'read-write') {
          throw invalidArgValue('file', file, `is a descriptor opened ${access}-only: a shared mapping needs one opened for reading and writing`);
        }
      }
      const page = this.backend.pageSize;
      const aligned = roundDown(offset, page);
      const delta = offset - aligned;
      let region;
      try {
        region = this.backend.map({
          length: delta + length,
          // Private file mappings are writable copy-on-write, so a JavaScript write can never fault.
          protection: PROTECTION['read-write'],
          shared,
          file: { fd, path, offset: aligned, writable },
          populate,
          noreserve: false,
          hugePageShift: 0,
        });
      } catch (err) {
        throw kernelError(err);
      }
      const mapping = new Mapping(CREATE, { backend: this.backend, region, delta, length, kind: 'file', shared, protection: 'read-write' });
      if (watch) startWatch(mapping, fd, aligned);
      trackMapping(mapping);
      return mapping;
    });
  }

  /**
   * Shared memory nobody can truncate: a memfd of `size` bytes sealed against shrinking
   * (F_SEAL_SHRINK), mapped shared. Hand `fd` to a child process or a worker, which maps
   * the same pages with mapFile(fd, { mode: 'shared' }). Native backend only.
   */
  createSharedMemory(size: number, options?: SharedMemoryOptions): SharedMemory {
    return createSharedMemory(this.backend, (fd) => this.mapFile(fd, { mode: 'shared' }), size, options);
  }

  /** Page-cache residency of a file without mapping it into the caller's view: cachestat(2), or mmap + mincore. */
  fileResidency(file: FileArgument, options?: FileResidencyOptions & object): FileResidency {
    const o = validateObject<FileResidencyOptions>('options', options, FILE_RESIDENCY_KEYS);
    const wantPages = o.pages === undefined ? false : validateBoolean('options.pages', o.pages);
    return withFile(file, 'r', (fd) => {
      const size = regularFileSize(fd, file);
      const [start, end] = fileRange(o, size, this.backend.pageSize, 'options', false);
      if (wantPages) checkResidencyVector((end - start) / this.backend.pageSize, end - start, this.backend.pageSize);
      let raw: RawFileResidency;
      try {
        raw = this.backend.fileResidency(fd, start, end - start, wantPages);
      } catch (err) {
        throw kernelError(err, (code) =>
          code === 'EPERM'
            ? 'cachestat(2) answers only to a caller who owns the file or may write it; pass { pages: true } to use mincore(2) instead'
            : undefined,
        );
      }
      const percent = raw.total === 0 ? 100 : (100 * raw.cached) / raw.total;
      // The simulator's counts come from its model: say so in the result itself, so that no
      // caller can take them for the page cache of this machine (docs/SIMULATOR.md).
      const simulated = this.backend.kind === 'simulator';
      return { ...raw, size, percent, source: simulated ? 'simulator' : raw.source, simulated };
    });
  }

  /** Drop a file's clean pages from the page cache (posix_fadvise POSIX_FADV.DONTNEED). Dirty pages stay until written back. */
  evict(file: FileArgument, range?: Range & object): void {
    const r = validateObject<Range>('range', range, RANGE_KEYS);
    withFile(file, 'r', (fd) => {
      // Inward, as posix_fadvise(DONTNEED) itself treats partial pages: no page the caller did not name is dropped.
      const [start, end] = fileRange(r, regularFileSize(fd, file), this.backend.pageSize, 'range', true);
      this.#fadvise(fd, start, end, FADV.DONTNEED);
    });
  }

  /** Ask the kernel to start reading a file into the page cache (POSIX_FADV.WILLNEED); returns at once. */
  prefetch(file: FileArgument, range?: Range & object): void {
    const r = validateObject<Range>('range', range, RANGE_KEYS);
    withFile(file, 'r', (fd) => {
      const [start, end] = fileRange(r, regularFileSize(fd, file), this.backend.pageSize, 'range', false);
      this.#fadvise(fd, start, end, FADV.WILLNEED);
    });
  }

  /** posix_fadvise over [start, end); an empty range is never passed (length 0 means "to the end of the file"). */
  #fadvise(fd: number, start: number, end: number, advice: number): void {
    if (end <= start) return;
    try {
      this.backend.fadvise(fd, start, end - start, advice);
    } catch (err) {
      throw kernelError(err);
    }
  }
}

/** mapFile { watch: true }: the watch gets its own descriptor of the file (the caller's may be closed). */
function startWatch(mapping: Mapping, fd: number, fileOffset: number): void {
  let own = -1;
  try {
    own = fs.openSync(`/proc/self/fd/${fd}`, 'r');
    mapping[WATCH](own, fileOffset);
  } catch (err) {
    if (own >= 0 && mapping.truncation === undefined) fs.closeSync(own);
    mapping.close();
    throw err;
  }
}

/** Open a path (closing it afterwards) or use a caller's descriptor as is. */
function withFile<T>(
  file: FileArgument,
  flags: 'r' | 'r+',
  use: (fd: number, path: string | Buffer | undefined) => T,
  check: (stat: fs.Stats, file: FileArgument) => void = requireRegularFile,
): T {
  if (typeof file === 'number') {
    validateInteger('file', file, 0, 0x7fffffff);
    return use(file, undefined);
  }
  // Byte-exact paths; special files refused before and after an open that never blocks (lib/open-file.ts).
  const { fd, path } = openRegularFile(file, flags, check);
  try {
    return use(fd, path);
  } finally {
    fs.closeSync(fd);
  }
}

/** The kernel's rule for anonymous VMA names (mm/madvise.c): printable ASCII except \ ` $ [ ], under 80 bytes. */
function validateMappingName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArgType('options.name', 'of type string', name);
  if (name.length === 0 || name.length > 79 || !/^[\x20-\x7e]+$/.test(name) || /[\\`$[\]]/.test(name)) {
    throw invalidArgValue('options.name', name, 'must be 1 to 79 printable ASCII characters, none of \\ ` $ [ ]');
  }
  return name;
}

// evict / prefetch refuse a pipe or socket as every file function does ("is not a regular
// file (it is a FIFO)"), not with posix_fadvise's ESPIPE: one answer for one mistake.
function regularFileSize(fd: number, file: FileArgument): number {
  const stat = fs.fstatSync(fd);
  requireRegularFile(stat, file);
  return stat.size;
}

/**
 * A byte range of a file clipped to the file, rounded to pages: outward, or inward
 * for destructive operations (the last partial page of the file counts when the
 * range reaches the end of the file, as posix_fadvise(DONTNEED) does). An empty
 * range stays empty.
 */
function fileRange(range: Partial<Range>, size: number, page: number, name: string, inward: boolean): [number, number] {
  const offset = range.offset === undefined ? 0 : validateInteger(`${name}.offset`, range.offset, 0);
  const length = range.length === undefined ? Math.max(0, size - offset) : validateInteger(`${name}.length`, range.length, 0);
  const to = Math.min(offset + length, size);
  // A range that starts at or past the end of the file, or has no bytes, is empty.
  if (offset >= size || to <= offset) {
    const at = offset >= size ? roundUp(size, page) : roundDown(offset, page);
    return [at, at];
  }
  if (inward) {
    const start = inwardStart(0, offset, page);
    return [start, inwardEnd(0, offset, to - offset, size, page, start)];
  }
  const start = outwardStart(0, offset, page);
  return [start, outwardEnd(0, offset, to - offset, page, start)];
}
