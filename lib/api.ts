// Pagewise: the public entry points bound to one backend. The package's default
// export binds the selected backend (lib/index.ts); tests bind both side by side.
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADVICE, ADVICE_NAMES, type Advice } from './advice';
import type { Backend, RawFileResidency } from './backend';
import { invalidArgType, invalidArgValue, outOfRange } from './errors';
import { trackMapping } from './memory-usage';
import { CREATE, Mapping, PROTECTION, PROTECTION_NAMES, type Protection, roundDown, roundUp } from './mapping';
import { type Range, validateBoolean, validateInteger, validateObject, validateOneOf } from './validate';

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
}

export interface FileResidencyOptions extends Range {
  /** Also return the per-page vector (uses mmap + mincore instead of cachestat). */
  pages?: boolean;
}

export interface FileResidency extends RawFileResidency {
  /** File size in bytes. */
  size: number;
  /** cached / total as a percentage (100 for an empty range). */
  percent: number;
}

export type FileArgument = string | URL | Buffer | number;

const HUGE_SHIFT = { '2MiB': 21, '1GiB': 30 } as const;
/** posix_fadvise(2) values. */
const FADV_DONTNEED = 4;
const FADV_WILLNEED = 3;

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
  supports(advice: Advice): boolean {
    return this.backend.supports(ADVICE[validateOneOf('advice', advice, ADVICE_NAMES)].value);
  }

  /** Anonymous memory: zero-filled pages that exist only in this process (and its children if shared). */
  map(length: number, options?: MapOptions): Mapping {
    validateInteger('length', length, 1);
    const o = validateObject<MapOptions>('options', options);
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
    const region = this.backend.map({
      length,
      protection: PROTECTION[protection],
      shared,
      populate,
      noreserve,
      hugePageShift,
    });
    const named = name !== undefined && this.backend.nameMapping?.(region, name) === true;
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
    return this.backend.supportsMappingNames?.() === true;
  }

  /** Map a file (path, file: URL, or open descriptor). The descriptor is not closed. */
  mapFile(file: FileArgument, options?: MapFileOptions): Mapping {
    const o = validateObject<MapFileOptions>('options', options);
    const mode = o.mode === undefined ? 'private' : validateOneOf('options.mode', o.mode, ['private', 'shared'] as const);
    const populate = o.populate === undefined ? false : validateBoolean('options.populate', o.populate);
    const shared = mode === 'shared';
    return withFile(file, shared ? 'r+' : 'r', (fd, path) => {
      const size = regularFileSize(fd, file);
      const offset = o.offset === undefined ? 0 : validateInteger('options.offset', o.offset, 0, size);
      const room = size - offset;
      const length = o.length === undefined ? room : validateInteger('options.length', o.length, 0, room);
      if (length === 0) throw outOfRange('options.length', `>= 1 (the file has ${room} bytes from offset ${offset})`, length);
      let writable = path !== undefined ? shared : false;
      if (path === undefined) {
        const access = this.backend.accessMode(fd);
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
      const region = this.backend.map({
        length: delta + length,
        // Private file mappings are writable copy-on-write, so a JavaScript write can never fault.
        protection: PROTECTION['read-write'],
        shared,
        file: { fd, path, offset: aligned, writable },
        populate,
        noreserve: false,
        hugePageShift: 0,
      });
      const mapping = new Mapping(CREATE, { backend: this.backend, region, delta, length, kind: 'file', shared, protection: 'read-write' });
      trackMapping(mapping);
      return mapping;
    });
  }

  /** Page-cache residency of a file without mapping it into the caller's view: cachestat(2), or mmap + mincore. */
  fileResidency(file: FileArgument, options?: FileResidencyOptions): FileResidency {
    const o = validateObject<FileResidencyOptions>('options', options);
    const wantPages = o.pages === undefined ? false : validateBoolean('options.pages', o.pages);
    return withFile(file, 'r', (fd) => {
      const size = regularFileSize(fd, file);
      const [start, end] = fileRange(o, size, this.backend.pageSize);
      const raw = this.backend.fileResidency(fd, start, end - start, wantPages);
      const percent = raw.total === 0 ? 100 : (100 * raw.cached) / raw.total;
      return { ...raw, size, percent };
    });
  }

  /** Drop a file's clean pages from the page cache (posix_fadvise POSIX_FADV_DONTNEED). Dirty pages stay until written back. */
  evict(file: FileArgument, range?: Range): void {
    withFile(file, 'r', (fd) => {
      const [start, end] = fileRange(validateObject<Range>('range', range), regularFileSize(fd, file), this.backend.pageSize);
      this.backend.fadvise(fd, start, end - start, FADV_DONTNEED);
    });
  }

  /** Ask the kernel to start reading a file into the page cache (POSIX_FADV_WILLNEED); returns at once. */
  prefetch(file: FileArgument, range?: Range): void {
    withFile(file, 'r', (fd) => {
      const [start, end] = fileRange(validateObject<Range>('range', range), regularFileSize(fd, file), this.backend.pageSize);
      this.backend.fadvise(fd, start, end - start, FADV_WILLNEED);
    });
  }
}

/** Open a path (closing it afterwards) or use a caller's descriptor as is. */
function withFile<T>(file: FileArgument, flags: 'r' | 'r+', use: (fd: number, path: string | undefined) => T): T {
  if (typeof file === 'number') {
    validateInteger('file', file, 0, 0x7fffffff);
    return use(file, undefined);
  }
  let path: string;
  if (typeof file === 'string') path = file;
  else if (file instanceof URL) path = fileURLToPath(file);
  else if (Buffer.isBuffer(file)) path = file.toString();
  else throw invalidArgType('file', 'of type string or an instance of Buffer or URL, or a file descriptor', file);
  if (path.includes('\u0000')) throw invalidArgValue('file', file, 'must be a string without null bytes');
  const fd = fs.openSync(path, flags);
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

function regularFileSize(fd: number, file: FileArgument): number {
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) throw invalidArgValue('file', file, 'is not a regular file');
  return stat.size;
}

/** A byte range of a file, rounded outward to pages and clipped to the file. */
function fileRange(range: Range, size: number, page: number): [number, number] {
  const offset = range.offset === undefined ? 0 : validateInteger('range.offset', range.offset, 0);
  const length = range.length === undefined ? Math.max(0, size - offset) : validateInteger('range.length', range.length, 0);
  // A range that starts at or past the end of the file is empty (not the file's last partial page).
  const start = offset >= size ? roundUp(size, page) : roundDown(offset, page);
  const end = Math.min(roundUp(offset + length, page), roundUp(size, page));
  return [start, Math.max(start, end)];
}
