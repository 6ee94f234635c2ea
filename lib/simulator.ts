// The reference simulator: a pure-TypeScript model of Linux memory management,
// used when the native addon cannot load (or PAGEWISE_BACKEND=simulator) and as
// the oracle of the differential tests. docs/SIMULATOR.md describes the model and
// lists every divergence from the kernel.
//
// Empirical facts (Linux 6.18, x86-64, no swap, THP enabled=madvise, no hugetlb
// pages reserved), checked with small C programs; the model follows them:
//  - madvise(NULL, 0, a) === 0 for a in 0-4, 8-25, 102, 103. HWPOISON (100) and
//    SOFT_OFFLINE (101) are EINVAL here; 5-7, 26-99 are EINVAL.
//  - Private anonymous: DONTNEED / DONTNEED_LOCKED / GUARD_INSTALL zero the pages and
//    mincore reports 0. WILLNEED, COLD, and PAGEOUT of dirty pages (no swap) change
//    nothing: the pages stay resident. POPULATE_READ on untouched pages maps the
//    zero page: resident, and FREE / PAGEOUT leave zero-page mappings resident.
//    FREE keeps the pages resident until reclaim; FREE then PAGEOUT discards them
//    (zeros, mincore 0); a write after FREE keeps that page; a read does not.
//    REMOVE -> EINVAL (no file). COLLAPSE on a 4-page mapping -> EINVAL; on a
//    2 MiB-aligned 2 MiB range -> 0 (even without MADV_HUGEPAGE).
//  - Shared anonymous (shmem): DONTNEED keeps contents and mincore stays 1 (mincore
//    reports the shmem page cache); REMOVE zeroes and mincore 0; FREE, WIPEONFORK,
//    COLLAPSE -> EINVAL; PAGEOUT keeps everything (no swap); GUARD_INSTALL keeps the
//    contents (visible again after GUARD_REMOVE) and mincore stays 1; POPULATE_READ
//    allocates pages (mincore 1); WILLNEED on holes does nothing.
//  - Private file: DONTNEED / GUARD_INSTALL drop COW copies, the file content shows
//    again; FREE, WIPEONFORK, COLLAPSE -> EINVAL; REMOVE -> EACCES.
//  - Shared file: DONTNEED keeps the data (dirty page cache); REMOVE punches a hole
//    (zeros in mapping and file, mincore 0); FREE, WIPEONFORK, COLLAPSE -> EINVAL.
//    mincore reports page-cache residency for pages never touched here, 0 past EOF.
//    PAGEOUT evicts clean pages mapped by this mapping (a page written and msync'ed
//    -> mincore 0), keeps dirty pages and pages not mapped (never touched, or after
//    DONTNEED). posix_fadvise(DONTNEED) evicts clean unmapped pages; WILLNEED reads in.
//  - POPULATE_READ / _WRITE over pages past EOF: EFAULT after populating the pages
//    before EOF (the page holding EOF is fine). On a guard page: EFAULT.
//  - PROT_READ: POPULATE_WRITE -> EINVAL. PROT_NONE: POPULATE_READ / _WRITE -> EINVAL.
//    Everything else behaves as with read-write (DONTNEED still zaps, etc.).
//  - mlock'ed (also MLOCK_ONFAULT): DONTNEED, FREE, REMOVE, COLD, PAGEOUT,
//    GUARD_INSTALL -> EINVAL; DONTNEED_LOCKED zaps; WILLNEED, POPULATE_* fine.
//  - madvise runs VMA by VMA: with a locked tail, DONTNEED zaps the head then EINVAL;
//    with a locked head nothing happens. POPULATE_READ over a PROT_NONE tail populates
//    the head, then EINVAL. The model walks pages in order, which is equivalent.
//  - mlock on PROT_NONE, over a guard page, or past EOF -> ENOMEM (pages before the
//    failure are populated, the lock flag stays). MLOCK_ONFAULT populates nothing.
//  - msync(MS_INVALIDATE) over mlock'ed pages -> EBUSY; msync on anonymous memory -> 0.
//  - mprotect(PROT_WRITE) on a shared mapping of a read-only descriptor -> EACCES;
//    mmap(PROT_WRITE, MAP_SHARED) of a read-only descriptor -> EACCES.
//  - mremap growing a mapping split into several VMAs (mprotect / mlock / flag advice
//    over part of it) -> EFAULT; shrinking always works; growing a locked mapping
//    populates and locks the new pages; guard pages do not split VMAs.
//  - MAP_HUGETLB with vm.nr_hugepages = 0 -> ENOMEM.
//  Found by test/differential.test.ts (and checked with C programs):
//  - POPULATE_WRITE on a shared file page dirties it (page_mkwrite) even if no byte changes:
//    PAGEOUT keeps it until msync.
//  - shmem: a read fault (POPULATE_READ, MAP_POPULATE, mlock) allocates a clean page; PAGEOUT
//    drops clean pages mapped here (mincore 0, a hole again), keeps written ones and ones not
//    mapped (after DONTNEED). The shmem object keeps its mmap-time size: mremap shrinking keeps
//    the pages cut off (they come back, resident, when the mapping grows); pages past the object:
//    POPULATE_* EFAULT, mlock ENOMEM, access SIGBUS.
//  - mprotect(PROT_WRITE) on a private VM_LOCKED (not LOCKONFAULT) range populates it.
//  - mlock populates private writable memory with write faults (real pages, not the zero page).
//  - POPULATE_* checks the VMA protection before the guard marker: PROT_NONE + guard -> EINVAL.
//  - munmap of a shared file mapping leaves dirty pages dirty behind guard markers too; they
//    reach the file.
//  - Not modelled (see docs/SIMULATOR.md): fault-around (a read fault maps cached neighbours
//    in a 64 KiB window), read-around on page-cache misses (read_ahead_kb), asynchronous
//    WILLNEED, large page-cache folios (PAGEOUT keeps a folio it covers only in part).

import * as fs from 'node:fs';
import type { Backend, BackendMapping, MapRequest, RawFileResidency } from './backend';
import { PROT_READ, PROT_WRITE } from './backend';
import { errnoError, mappingClosed, pagewiseError } from './errors';
import { ExtentStore, ZERO_HASH } from './simulator/extents';

const PAGE = 4096;
const HUGE_PAGES = (2 * 1024 * 1024) / PAGE;

// Page state bits.
const S_PRESENT = 1; // a PTE maps the page (anonymous: the page exists; shmem: in the shmem cache)
const S_LAZY = 2; // MADV_FREE'd, clean since (anonymous private only)
const S_ZERO = 4; // mapped to the shared zero page (read fault on untouched anonymous memory)
const S_COW = 8; // private file page replaced by an anonymous copy
const S_GUARD = 16; // guard marker (MADV_GUARD_INSTALL)
const S_DIRTY = 32; // shared file page dirtied by a write fault (POPULATE_WRITE) whatever its contents
const S_CLEAN = 64; // shmem page allocated by a read fault and never written: reclaim may drop it (a hole again)
const S_UNMAPPED = 128; // shmem page in the shmem cache but not mapped here (after DONTNEED / GUARD_INSTALL)

// Per-page VMA attributes; pages with different words sit in different VMAs.
const A_PROT = 7;
const A_LOCKED = 1 << 3;
const A_ONFAULT = 1 << 4;
const A_SEQ = 1 << 5;
const A_RAND = 1 << 6;
const A_DONTCOPY = 1 << 7;
const A_MERGEABLE = 1 << 8;
const A_HUGE = 1 << 9;
const A_NOHUGE = 1 << 10;
const A_DONTDUMP = 1 << 11;
const A_WIPE = 1 << 12;

const ADV = {
  NORMAL: 0, RANDOM: 1, SEQUENTIAL: 2, WILLNEED: 3, DONTNEED: 4, FREE: 8, REMOVE: 9,
  DONTFORK: 10, DOFORK: 11, MERGEABLE: 12, UNMERGEABLE: 13, HUGEPAGE: 14, NOHUGEPAGE: 15,
  DONTDUMP: 16, DODUMP: 17, WIPEONFORK: 18, KEEPONFORK: 19, COLD: 20, PAGEOUT: 21,
  POPULATE_READ: 22, POPULATE_WRITE: 23, DONTNEED_LOCKED: 24, COLLAPSE: 25,
  GUARD_INSTALL: 102, GUARD_REMOVE: 103,
} as const;

/** Exactly the advice madvise(NULL, 0, advice) accepts on the reference kernel (6.18). */
const SUPPORTED: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, ...range(8, 26), 102, 103]);

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

/** A page of zeros (read-only use). */
const ZEROS = new Uint8Array(PAGE);

function pagesOf(bytes: number): number {
  return Math.ceil(bytes / PAGE);
}

function rethrowFs(err: unknown, syscall: string): never {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
    try {
      throw errnoError(code, syscall);
    } catch (e) {
      if ((e as Error).message.startsWith('unknown errno code')) throw err;
      throw e;
    }
  }
  throw err;
}

/** The simulator's page cache of one file (dev:ino), shared by every mapping of it. */
interface FileCache {
  key: string;
  /**
   * Pages known to be out of the page cache. A file the simulator has not evicted
   * is assumed fully cached below EOF (true for a file just written, the common case).
   */
  evicted: Set<number>;
  /** Last-use clock per page for reclaim order (absent = older than anything seen). */
  stamps: Map<number, number>;
  mappings: Set<SimMapping>;
}

interface SimFile {
  fd: number;
  ownFd: boolean;
  cache: FileCache;
  /** First file page of the mapping. */
  pageOffset: number;
  /** The descriptor was opened for writing (VM_MAYWRITE for shared mappings). */
  writable: boolean;
  /** The caller owns or may write the file (mincore is honest, PAGEOUT acts). */
  canWrite: boolean;
}

export interface SimulatorOptions {
  /** Simulated memory limit in bytes (like a cgroup's memory.max); undefined = unlimited. */
  memoryLimit?: number;
}

export class SimulatorBackend implements Backend {
  readonly kind = 'simulator' as const;
  readonly pageSize = PAGE;
  /** Each mapping is one ArrayBuffer; a conservative ceiling for every engine. */
  readonly maxWindow = 2 ** 31;
  /** Simulated memory limit in bytes; touching pages beyond it reclaims, then fails with ERR_SIMULATED_OOM. */
  memoryLimit: number | undefined;

  /** @internal */ readonly live = new Set<SimMapping>();
  /** @internal */ readonly files = new Map<string, FileCache>();
  /** @internal */ clock = 1;
  private coldClock = -1e15;

  constructor(options: SimulatorOptions = {}) {
    this.memoryLimit = options.memoryLimit;
  }

  supports(advice: number): boolean {
    return SUPPORTED.has(advice);
  }

  /** The simulated kernel has CONFIG_ANON_VMA_NAME: private anonymous memory takes a name (shmem: EBADF). */
  supportsMappingNames(): boolean {
    return true;
  }
  nameMapping(region: BackendMapping): boolean {
    return (region as SimMapping).kindOf === 'anon';
  }

  /** Simulated RSS of all live mappings: present pages, not counting zero-page mappings. */
  get residentBytes(): number {
    for (const m of this.live) m.scan(0, m.pages);
    return this.residentPages() * PAGE;
  }

  /** @internal */
  residentPages(): number {
    let n = 0;
    for (const m of this.live) n += m.chargedPages();
    return n;
  }

  /** @internal */
  tick(): number {
    return this.clock++;
  }

  /** @internal */
  coldStamp(): number {
    return this.coldClock++;
  }

  /**
   * Discard reclaimable memory in least-recently-used order until at least `bytes`
   * were discarded or nothing is left: clean MADV_FREE'd anonymous pages (they read
   * back as zeros) and clean page-cache pages of files mapped by live mappings (they
   * read back from the file). Returns the bytes discarded.
   */
  reclaim(bytes: number): number {
    if (!(bytes > 0)) return 0;
    type Candidate = { stamp: number; m?: SimMapping; page: number; cache?: FileCache };
    const candidates: Candidate[] = [];
    const seen = new Map<FileCache, Set<number>>();
    for (const m of this.live) {
      if (m.kindOf === 'anon') {
        for (let p = 0; p < m.pages; p++) {
          if (!(m.state[p] & S_LAZY) || m.attr[p] & A_LOCKED) continue;
          if (m.lazyWritten(p)) continue;
          candidates.push({ stamp: m.stamp[p], m, page: p });
        }
      } else if (m.file) {
        const cache = m.file.cache;
        let done = seen.get(cache);
        if (!done) seen.set(cache, (done = new Set()));
        const eof = m.eofPages();
        for (let p = 0; p < m.pages; p++) {
          const fp = m.file.pageOffset + p;
          if (fp >= eof || done.has(fp)) continue;
          done.add(fp);
          if (cache.evicted.has(fp) || !fileClean(cache, fp)) continue;
          candidates.push({ stamp: cache.stamps.get(fp) ?? 0, page: fp, cache });
        }
      }
    }
    candidates.sort((a, b) => a.stamp - b.stamp);
    let freed = 0;
    for (const c of candidates) {
      if (freed >= bytes) break;
      if (c.m) c.m.discard(c.page);
      else if (c.cache) evictFilePage(c.cache, c.page);
      freed += PAGE;
    }
    return freed;
  }

  /** @internal Make room for `newPages` more resident pages under memoryLimit, or throw ERR_SIMULATED_OOM. */
  ensureRoom(newPages: number): void {
    const limit = this.memoryLimit;
    if (limit === undefined || newPages <= 0) return;
    const over = () => (this.residentPages() + newPages) * PAGE - limit;
    let need = over();
    if (need <= 0) return;
    this.reclaim(need);
    need = over();
    if (need <= 0) return;
    this.reclaim(Infinity);
    need = over();
    if (need <= 0) return;
    throw oom(limit, newPages, this.residentPages());
  }

  /** @internal After JavaScript writes were discovered: reclaim, and report a simulated OOM if still over. */
  afterWrites(newPages: number): void {
    const limit = this.memoryLimit;
    if (limit === undefined || newPages <= 0) return;
    let over = this.residentPages() * PAGE - limit;
    if (over <= 0) return;
    this.reclaim(over);
    over = this.residentPages() * PAGE - limit;
    if (over <= 0) return;
    this.reclaim(Infinity);
    over = this.residentPages() * PAGE - limit;
    if (over <= 0) return;
    throw oom(limit, newPages, this.residentPages() - newPages);
  }

  map(request: MapRequest): BackendMapping {
    const { length, protection, shared, file } = request;
    if (request.hugePageShift !== 0) {
      // hugetlbfs is not modelled: like a kernel with vm.nr_hugepages = 0.
      throw errnoError(file ? 'EINVAL' : 'ENOMEM', 'mmap');
    }
    const pages = pagesOf(length);
    if (pages * PAGE > this.maxWindow) throw errnoError('ENOMEM', 'mmap');
    let simFile: SimFile | undefined;
    if (file) simFile = this.openFile(file, shared, protection);
    let m: SimMapping;
    try {
      m = new SimMapping(this, length, protection, shared, simFile);
    } catch (err) {
      if (simFile?.ownFd) fs.closeSync(simFile.fd);
      throw err;
    }
    this.live.add(m);
    simFile?.cache.mappings.add(m);
    if (request.populate) m.mapPopulate();
    return m;
  }

  private openFile(file: NonNullable<MapRequest['file']>, shared: boolean, protection: number): SimFile {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(file.fd);
    } catch (err) {
      rethrowFs(err, 'mmap');
    }
    if (!st.isFile()) throw errnoError(st.isDirectory() ? 'ENODEV' : 'EACCES', 'mmap');
    const mode = this.accessModeOrUndefined(file.fd);
    if (mode === 'write') throw errnoError('EACCES', 'mmap');
    if (shared && protection & PROT_WRITE && !file.writable) throw errnoError('EACCES', 'mmap');
    // Keep our own open file description: /proc/self/fd/N reopens the same file
    // (works for deleted files too), else the path, else the caller's descriptor.
    const flags = file.writable ? 'r+' : 'r';
    let fd = -1;
    let ownFd = true;
    for (const candidate of [`/proc/self/fd/${file.fd}`, file.path]) {
      if (candidate === undefined) continue;
      try {
        const opened = fs.openSync(candidate, flags);
        const ost = fs.fstatSync(opened);
        if (ost.dev === st.dev && ost.ino === st.ino) {
          fd = opened;
          break;
        }
        fs.closeSync(opened);
      } catch {
        // try the next way
      }
    }
    if (fd < 0) {
      fd = file.fd;
      ownFd = false;
    }
    const key = `${st.dev}:${st.ino}`;
    let cache = this.files.get(key);
    if (!cache) {
      cache = { key, evicted: new Set(), stamps: new Map(), mappings: new Set() };
      this.files.set(key, cache);
    }
    let canWrite = typeof process.getuid === 'function' && (process.getuid() === 0 || process.getuid() === st.uid);
    if (!canWrite) {
      try {
        fs.accessSync(`/proc/self/fd/${fd}`, fs.constants.W_OK);
        canWrite = true;
      } catch {
        canWrite = false;
      }
    }
    return { fd, ownFd, cache, pageOffset: file.offset / PAGE, writable: file.writable, canWrite };
  }

  fileResidency(fd: number, offset: number, length: number, wantPages: boolean): RawFileResidency {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
    } catch (err) {
      rethrowFs(err, wantPages ? 'mmap' : 'cachestat');
    }
    const size = st.size;
    const first = Math.floor(offset / PAGE);
    const end = length === 0 ? Math.max(first, pagesOf(size)) : pagesOf(offset + length);
    const total = end - first;
    const eof = pagesOf(size);
    const cache = this.files.get(`${st.dev}:${st.ino}`);
    for (const m of cache?.mappings ?? []) m.scan(0, m.pages);
    const pages = new Uint8Array(total);
    let cached = 0;
    let dirty = 0;
    let evicted = 0;
    for (let i = 0; i < total; i++) {
      const fp = first + i;
      if (fp >= eof) continue;
      if (cache?.evicted.has(fp)) {
        evicted++;
        continue;
      }
      pages[i] = 1;
      cached++;
      if (cache && !fileClean(cache, fp, true)) dirty++;
    }
    if (wantPages) return { cached, total, source: 'mincore', pages };
    return { cached, total, dirty, writeback: 0, evicted, recentlyEvicted: evicted, source: 'cachestat' };
  }

  fadvise(fd: number, offset: number, length: number, advice: number): void {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
    } catch (err) {
      rethrowFs(err, 'posix_fadvise');
    }
    if (st.isFIFO() || st.isSocket()) throw errnoError('ESPIPE', 'posix_fadvise');
    if (!Number.isInteger(advice) || advice < 0 || advice > 5) throw errnoError('EINVAL', 'posix_fadvise');
    if (advice !== 3 && advice !== 4) return; // NORMAL, RANDOM, SEQUENTIAL, NOREUSE: readahead policy only
    const key = `${st.dev}:${st.ino}`;
    let cache = this.files.get(key);
    if (!cache) {
      cache = { key, evicted: new Set(), stamps: new Map(), mappings: new Set() };
      this.files.set(key, cache);
    }
    const eof = pagesOf(st.size);
    const first = Math.floor(offset / PAGE);
    const end = length === 0 ? eof : Math.min(eof, pagesOf(offset + length));
    for (const m of cache.mappings) m.scan(0, m.pages);
    for (let fp = first; fp < end; fp++) {
      if (advice === 3) {
        cache.evicted.delete(fp);
        cache.stamps.set(fp, this.tick());
      } else if (!cache.evicted.has(fp) && fileClean(cache, fp) && !fileMapped(cache, fp)) {
        // DONTNEED starts writeback of dirty pages and drops clean, unmapped ones.
        evictFilePage(cache, fp);
      }
    }
  }

  accessMode(fd: number): 'read' | 'write' | 'read-write' {
    const mode = this.accessModeOrUndefined(fd);
    if (mode) return mode;
    try {
      fs.fstatSync(fd);
    } catch (err) {
      rethrowFs(err, 'fcntl');
    }
    return 'read-write'; // no /proc (not Linux): the simulator cannot ask fcntl
  }

  private accessModeOrUndefined(fd: number): 'read' | 'write' | 'read-write' | undefined {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch (err) {
      if (process.platform !== 'linux') return undefined;
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw missing ? errnoError('EBADF', 'fcntl') : rethrowFs(err, 'fcntl');
    }
    const match = /^flags:\s*([0-7]+)/m.exec(text);
    if (!match) return undefined;
    const acc = parseInt(match[1], 8) & 3;
    return acc === 0 ? 'read' : acc === 1 ? 'write' : 'read-write';
  }
}

function oom(limit: number, newPages: number, resident: number): Error {
  return pagewiseError(
    'ERR_SIMULATED_OOM',
    `Simulated out of memory: touching ${newPages * PAGE} more bytes would exceed the simulated memory limit of ` +
      `${limit} bytes (${resident * PAGE} bytes resident) and nothing is left to reclaim`,
  );
}

/** No live mapping holds unflushed data for file page fp (and none has it locked). */
function fileClean(cache: FileCache, fp: number, ignoreLocks = false): boolean {
  for (const m of cache.mappings) {
    const p = fp - m.file!.pageOffset;
    if (p < 0 || p >= m.pages) continue;
    if (m.shared && m.isDirty(p)) return false;
    if (!ignoreLocks && m.attr[p] & A_LOCKED && !(m.state[p] & S_COW)) return false;
  }
  return true;
}

/** Some live mapping has a PTE for file page fp (not counting COW copies). */
function fileMapped(cache: FileCache, fp: number, except?: SimMapping): boolean {
  for (const m of cache.mappings) {
    if (m === except) continue;
    const p = fp - m.file!.pageOffset;
    if (p < 0 || p >= m.pages) continue;
    if ((m.state[p] & (S_PRESENT | S_COW)) === S_PRESENT) return true;
  }
  return false;
}

/** Drop file page fp from the page cache and unmap it everywhere; contents stay (they equal the file). */
function evictFilePage(cache: FileCache, fp: number): void {
  cache.evicted.add(fp);
  cache.stamps.delete(fp);
  for (const m of cache.mappings) {
    const p = fp - m.file!.pageOffset;
    if (p < 0 || p >= m.pages) continue;
    if (!(m.state[p] & S_COW)) m.state[p] &= ~S_PRESENT;
  }
}

type Work = () => void;

class SimMapping implements BackendMapping {
  length: number;
  closed = false;
  pages: number;
  readonly kindOf: 'anon' | 'shmem' | 'file';
  /**
   * shmem: pages of the shmem object (its size is fixed at mmap time). Pages a resize cut off
   * keep their contents and state there and come back when the mapping grows again; pages past
   * the object are like pages past EOF (SIGBUS on access, EFAULT for populate, ENOMEM for mlock).
   */
  readonly objectPages: number;
  private readonly shmemTail = new Map<number, { state: number; bytes: Uint8Array | undefined }>();
  /** The memory: disjoint page-aligned extents, each its own ArrayBuffer (lib/simulator/extents.ts). */
  store: ExtentStore;
  state: Uint8Array;
  attr: Uint16Array;
  /** Clean-content hash: file pages as last read / written back; lazy-free pages at FREE time. */
  hash: Uint32Array;
  stamp: Float64Array;

  constructor(
    readonly backend: SimulatorBackend,
    length: number,
    protection: number,
    readonly shared: boolean,
    readonly file: SimFile | undefined,
  ) {
    this.kindOf = file ? 'file' : shared ? 'shmem' : 'anon';
    this.objectPages = pagesOf(length);
    this.length = length;
    this.pages = pagesOf(length);
    this.store = new ExtentStore(this.pages);
    this.state = new Uint8Array(this.pages);
    this.attr = new Uint16Array(this.pages).fill(protection & A_PROT);
    this.hash = new Uint32Array(this.pages);
    this.stamp = new Float64Array(this.pages);
    // JavaScript reads cannot be trapped, so file contents are read eagerly (into one extent).
    if (file) {
      try {
        this.store.materialise(0, this.pages);
      } catch {
        throw errnoError('ENOMEM', 'mmap');
      }
      for (let p = 0; p < this.pages; p++) this.loadFilePage(p);
    }
  }

  // ---- helpers ------------------------------------------------------------

  private check(operation: string): void {
    if (this.closed) throw mappingClosed(operation);
  }

  eofPages(): number {
    try {
      return pagesOf(fs.fstatSync(this.file!.fd).size);
    } catch {
      return 0;
    }
  }

  chargedPages(): number {
    let n = 0;
    for (let p = 0; p < this.pages; p++) if ((this.state[p] & (S_PRESENT | S_ZERO)) === S_PRESENT) n++;
    return n;
  }

  isDirty(p: number): boolean {
    return (this.state[p] & S_DIRTY) !== 0 || this.store.hash(p) !== this.hash[p];
  }

  lazyWritten(p: number): boolean {
    if (this.store.hash(p) === this.hash[p]) return false;
    this.state[p] &= ~S_LAZY; // a write after FREE cancels the free for that page
    this.stamp[p] = this.backend.tick();
    return true;
  }

  /** Throw away a clean lazy-free page (reclaim / PAGEOUT). */
  discard(p: number): void {
    this.store.zero(p);
    this.state[p] &= S_GUARD;
  }

  /** Fill page p from the file's page cache: a shared mapping's unflushed data, else the file. */
  private loadFilePage(p: number): void {
    const file = this.file!;
    const fp = file.pageOffset + p;
    let done = false;
    for (const other of file.cache.mappings) {
      if (other === this || !other.shared || other.closed) continue;
      const q = fp - other.file!.pageOffset;
      if (q < 0 || q >= other.pages || !other.isDirty(q)) continue;
      this.store.set(p, other.store.page(q));
      done = true;
      break;
    }
    if (!done) {
      const into = this.store.pageForWrite(p);
      let got = 0;
      try {
        while (got < PAGE) {
          const n = fs.readSync(file.fd, into, got, PAGE - got, fp * PAGE + got);
          if (n <= 0) break;
          got += n;
        }
      } catch (err) {
        rethrowFs(err, 'read');
      }
      into.fill(0, got, PAGE);
    }
    this.hash[p] = this.store.hash(p);
  }

  /** Write page p back to the file (bytes below EOF) and show it to the other mappings of the file. */
  private writeBack(p: number): void {
    const file = this.file!;
    const fp = file.pageOffset + p;
    let size: number;
    try {
      size = fs.fstatSync(file.fd).size;
    } catch (err) {
      rethrowFs(err, 'msync');
    }
    const start = fp * PAGE;
    if (start < size) {
      const n = Math.min(PAGE, size - start);
      try {
        let put = 0;
        const bytes = this.store.page(p) ?? ZEROS;
        while (put < n) put += fs.writeSync(file.fd, bytes, put, n - put, start + put);
      } catch (err) {
        rethrowFs(err, 'msync');
      }
    }
    this.hash[p] = this.store.hash(p);
    this.state[p] &= ~S_DIRTY;
    this.propagate(p);
  }

  /** The file page under p changed (write-back, hole punch): refresh clean copies in other mappings. */
  private propagate(p: number): void {
    const file = this.file!;
    const fp = file.pageOffset + p;
    for (const other of file.cache.mappings) {
      if (other === this || other.closed) continue;
      const q = fp - other.file!.pageOffset;
      if (q < 0 || q >= other.pages) continue;
      if (other.shared ? other.isDirty(q) : other.state[q] & S_COW) continue;
      other.store.set(q, this.store.page(p));
      other.hash[q] = this.hash[p];
    }
  }

  private cacheFilePage(p: number): void {
    const cache = this.file!.cache;
    const fp = this.file!.pageOffset + p;
    cache.evicted.delete(fp);
    cache.stamps.set(fp, this.backend.tick());
  }

  /**
   * Detect JavaScript writes in pages [first, end): the simulator cannot trap them, so it
   * compares contents (anonymous: non-zero means written; lazy-free and file pages: hash
   * differs from the clean hash). Returns the number of pages that became resident.
   */
  scan(first: number, end: number): number {
    if (this.closed) return 0;
    let fresh = 0;
    const { state, store } = this;
    for (let p = first; p < end; p++) {
      const s = state[p];
      if (s & S_GUARD) continue;
      switch (this.kindOf) {
        case 'anon':
          if (s & S_LAZY) this.lazyWritten(p);
          else if ((s & (S_PRESENT | S_ZERO)) !== S_PRESENT && !store.isZero(p)) {
            state[p] = (s & ~S_ZERO) | S_PRESENT;
            this.stamp[p] = this.backend.tick();
            fresh++;
          }
          break;
        case 'shmem':
          if (!(s & S_PRESENT) && !store.isZero(p)) {
            state[p] = s | S_PRESENT;
            fresh++;
          } else if (s & S_CLEAN && !store.isZero(p)) {
            state[p] = s & ~(S_CLEAN | S_UNMAPPED); // written: dirty, and mapped by the write fault
          }
          break;
        case 'file':
          if (this.shared) {
            if (store.hash(p) !== this.hash[p]) {
              if (!(s & S_PRESENT)) fresh++;
              state[p] = s | S_PRESENT;
              this.cacheFilePage(p);
            }
          } else if (!(s & S_COW) && store.hash(p) !== this.hash[p]) {
            if (!(s & S_PRESENT)) fresh++;
            state[p] = s | S_PRESENT | S_COW;
            this.stamp[p] = this.backend.tick();
            // The copy-on-write fault copied from the file page: it is in the page cache again.
            this.cacheFilePage(p);
          }
          break;
      }
    }
    return fresh;
  }

  /** Scan a range and enforce the memory limit for the writes found. */
  private observe(first: number, end: number): void {
    const fresh = this.scan(first, end);
    this.backend.afterWrites(fresh);
  }

  /** Pages a fault would newly charge. */
  private wouldCharge(p: number, write: boolean): boolean {
    const s = this.state[p];
    if (s & S_GUARD) return false;
    if (this.kindOf === 'anon') {
      if (!write) return false; // read faults map the zero page (or keep the page)
      return (s & (S_PRESENT | S_ZERO)) !== S_PRESENT;
    }
    if (this.kindOf === 'file' && !this.shared && write) return !(s & S_COW) || !(s & S_PRESENT);
    return !(s & S_PRESENT);
  }

  private chargeRange(first: number, end: number, write: (p: number) => boolean): void {
    let n = 0;
    for (let p = first; p < end; p++) if (this.wouldCharge(p, write(p))) n++;
    this.backend.ensureRoom(n);
  }

  /** Why page p cannot be faulted in (kernel error code), or undefined. */
  private faultError(p: number, write: boolean, eof: number): 'EFAULT' | 'EINVAL' | undefined {
    // The VMA's protection is checked before the page is faulted (PROT_NONE over a guard: EINVAL).
    const prot = this.attr[p] & A_PROT;
    if (prot === 0 || (write && !(prot & PROT_WRITE))) return 'EINVAL';
    if (this.state[p] & S_GUARD) return 'EFAULT';
    if (this.kindOf === 'shmem' && p >= this.objectPages) return 'EFAULT';
    if (this.file && this.file.pageOffset + p >= eof) return 'EFAULT';
    return undefined;
  }

  private fault(p: number, write: boolean): void {
    const s = this.state[p];
    switch (this.kindOf) {
      case 'anon':
        if (write) this.state[p] = (s & ~(S_ZERO | S_LAZY)) | S_PRESENT;
        else if (!(s & S_PRESENT)) this.state[p] = s | S_PRESENT | S_ZERO;
        break;
      case 'shmem':
        // A read fault on a hole allocates a clean page; a write fault dirties it.
        this.state[p] = (s & ~(S_UNMAPPED | S_CLEAN)) | S_PRESENT | (write ? 0 : s & S_PRESENT ? s & S_CLEAN : S_CLEAN);
        break;
      case 'file':
        // A write fault makes a private page a COW copy and dirties a shared one (page_mkwrite).
        this.state[p] = s | S_PRESENT | (write ? (this.shared ? S_DIRTY : S_COW) : 0);
        this.cacheFilePage(p);
        break;
    }
    this.stamp[p] = this.backend.tick();
  }

  /** The write flag mm_populate uses (FOLL_WRITE for private writable memory). */
  private populateWrites(p: number): boolean {
    return !this.shared && (this.attr[p] & PROT_WRITE) !== 0;
  }

  /** MAP_POPULATE: populate until the first failure, ignoring errors. */
  mapPopulate(): void {
    this.chargeRange(0, this.pages, (p) => this.populateWrites(p));
    const eof = this.file ? this.eofPages() : 0;
    for (let p = 0; p < this.pages; p++) {
      const write = this.populateWrites(p);
      if (this.faultError(p, write, eof)) break;
      this.fault(p, write);
    }
  }

  private reloadFromFile(p: number): void {
    this.loadFilePage(p);
    this.state[p] &= ~(S_COW | S_PRESENT);
  }

  // ---- BackendMapping -----------------------------------------------------

  window(offset: number, length: number): Uint8Array {
    this.check('create a window');
    try {
      return this.store.window(offset, length);
    } catch (err) {
      if (err instanceof RangeError) throw errnoError('ENOMEM', 'mmap'); // ArrayBuffer allocation failed
      throw err;
    }
  }

  /**
   * Detach `view`: the extent behind it moves to a new ArrayBuffer (no copy), so every
   * window on that extent gets length 0 and windows over other extents stay valid.
   * Windows share an extent when one was made inside the other's pages (a documented
   * divergence: the native backend detaches only `view`). Contents and page states
   * are untouched; new windows see the same bytes.
   */
  detach(view: Uint8Array): boolean {
    if (this.closed) return false;
    return this.store.detach(view);
  }

  advise(offset: number, length: number, advice: number): void {
    this.check('advise');
    if (!SUPPORTED.has(advice)) throw errnoError('EINVAL', 'madvise');
    if (length === 0) return;
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    const fail = (code: string): never => {
      throw errnoError(code, 'madvise');
    };
    const locked = (p: number) => (this.attr[p] & A_LOCKED) !== 0;
    const anon = this.kindOf === 'anon';
    const { state, attr } = this;
    const setFlag = (set: number, clear: number) => {
      for (let p = first; p < end; p++) attr[p] = (attr[p] & ~clear) | set;
    };
    switch (advice) {
      case ADV.NORMAL:
        return setFlag(0, A_SEQ | A_RAND);
      case ADV.RANDOM:
        return setFlag(A_RAND, A_SEQ);
      case ADV.SEQUENTIAL:
        return setFlag(A_SEQ, A_RAND);
      case ADV.DONTFORK:
        return setFlag(A_DONTCOPY, 0);
      case ADV.DOFORK:
        return setFlag(0, A_DONTCOPY);
      case ADV.MERGEABLE:
        // KSM ignores shared mappings without error (no flag set).
        return this.shared ? undefined : setFlag(A_MERGEABLE, 0);
      case ADV.UNMERGEABLE:
        return setFlag(0, A_MERGEABLE);
      case ADV.HUGEPAGE:
        return setFlag(A_HUGE, A_NOHUGE);
      case ADV.NOHUGEPAGE:
        return setFlag(A_NOHUGE, A_HUGE);
      case ADV.DONTDUMP:
        return setFlag(A_DONTDUMP, 0);
      case ADV.DODUMP:
        return setFlag(0, A_DONTDUMP);
      case ADV.WIPEONFORK:
        if (!anon) fail('EINVAL');
        return setFlag(A_WIPE, 0);
      case ADV.KEEPONFORK:
        return setFlag(0, A_WIPE);
      case ADV.WILLNEED: {
        // Anonymous without swap: nothing to read in. Files: read into the page cache (not mapped).
        if (this.kindOf !== 'file') return;
        const eof = this.eofPages();
        for (let p = first; p < end; p++) if (this.file!.pageOffset + p < eof) this.cacheFilePage(p);
        return;
      }
      case ADV.DONTNEED:
      case ADV.DONTNEED_LOCKED:
        for (let p = first; p < end; p++) {
          if (advice === ADV.DONTNEED && locked(p)) fail('EINVAL');
          this.zap(p);
        }
        return;
      case ADV.FREE:
        for (let p = first; p < end; p++) {
          if (!anon || locked(p)) fail('EINVAL');
          const s = state[p];
          if ((s & (S_PRESENT | S_ZERO | S_LAZY)) === S_PRESENT) {
            state[p] = s | S_LAZY;
            this.hash[p] = this.store.hash(p);
            this.stamp[p] = this.backend.tick();
          }
        }
        return;
      case ADV.REMOVE:
        for (let p = first; p < end; p++) {
          if (locked(p) || anon) fail('EINVAL');
          if (!this.shared || (this.file && !this.file.writable)) fail('EACCES');
          this.punch(p);
        }
        return;
      case ADV.COLD:
        for (let p = first; p < end; p++) {
          if (locked(p)) fail('EINVAL');
          const s = state[p];
          if (s & S_LAZY || (anon && s & S_PRESENT)) this.stamp[p] = this.backend.coldStamp();
          if (this.file && (s & (S_PRESENT | S_COW)) === S_PRESENT) {
            this.file.cache.stamps.set(this.file.pageOffset + p, this.backend.coldStamp());
          }
        }
        return;
      case ADV.PAGEOUT:
        for (let p = first; p < end; p++) {
          if (locked(p)) fail('EINVAL');
          this.pageOut(p);
        }
        return;
      case ADV.POPULATE_READ:
      case ADV.POPULATE_WRITE: {
        const write = advice === ADV.POPULATE_WRITE;
        this.populateRange(first, end, write, (code) => fail(code));
        return;
      }
      case ADV.COLLAPSE: {
        if (!anon) fail('EINVAL');
        // Model: the mapping starts on a 2 MiB boundary (as large anonymous mappings do);
        // every huge page the range touches must lie inside the mapping.
        const firstHuge = Math.floor(first / HUGE_PAGES);
        const lastHuge = Math.floor((end - 1) / HUGE_PAGES);
        for (let h = firstHuge; h <= lastHuge; h++) {
          const hs = h * HUGE_PAGES;
          const he = hs + HUGE_PAGES;
          if (he > this.pages) fail('EINVAL');
          let n = 0;
          for (let p = hs; p < he; p++) if (this.wouldCharge(p, true)) n++;
          this.backend.ensureRoom(n);
          for (let p = hs; p < he; p++) if (!(state[p] & S_GUARD)) this.fault(p, true);
        }
        return;
      }
      case ADV.GUARD_INSTALL:
        for (let p = first; p < end; p++) {
          if (locked(p)) fail('EINVAL');
          this.installGuard(p);
        }
        return;
      case ADV.GUARD_REMOVE:
        for (let p = first; p < end; p++) state[p] &= ~S_GUARD;
        return;
      default:
        fail('EINVAL');
    }
  }

  /** MADV_DONTNEED on one page: drop the PTE. */
  private zap(p: number): void {
    const s = this.state[p];
    switch (this.kindOf) {
      case 'anon':
        this.store.zero(p);
        this.state[p] = s & S_GUARD;
        break;
      case 'shmem':
        if (s & S_PRESENT) this.state[p] = s | S_UNMAPPED; // stays in the shmem cache: contents and mincore unchanged
        break;
      case 'file':
        if (this.shared) this.state[p] = s & ~S_PRESENT; // dirty data stays in the page cache
        else this.reloadFromFile(p); // COW copy gone: the file shows again
        break;
    }
  }

  /** MADV_REMOVE on one page of a shared mapping: punch a hole. */
  private punch(p: number): void {
    this.store.zero(p);
    this.hash[p] = ZERO_HASH;
    this.state[p] &= S_GUARD;
    if (this.kindOf !== 'file') return;
    const file = this.file!;
    const fp = file.pageOffset + p;
    let size = 0;
    try {
      size = fs.fstatSync(file.fd).size;
      const start = fp * PAGE;
      if (start < size) fs.writeSync(file.fd, new Uint8Array(Math.min(PAGE, size - start)), 0, Math.min(PAGE, size - start), start);
    } catch (err) {
      rethrowFs(err, 'madvise');
    }
    this.propagate(p);
    evictFilePage(file.cache, fp);
  }

  private pageOut(p: number): void {
    const s = this.state[p];
    switch (this.kindOf) {
      case 'anon':
        // Clean lazy-free pages are discarded; anything else needs swap (there is none).
        if (s & S_LAZY && !this.lazyWritten(p)) this.discard(p);
        break;
      case 'shmem':
        // Dirty pages need swap (there is none); a clean page mapped here is dropped: a hole again.
        if ((s & (S_PRESENT | S_CLEAN | S_UNMAPPED)) === (S_PRESENT | S_CLEAN) && this.store.isZero(p)) {
          this.state[p] = s & S_GUARD;
        }
        break;
      case 'file': {
        const file = this.file!;
        if (!file.canWrite || (s & (S_PRESENT | S_COW)) !== S_PRESENT) break;
        const fp = file.pageOffset + p;
        if (this.shared && this.isDirty(p)) break; // dirty: kept
        if (!fileClean(file.cache, fp) || fileMapped(file.cache, fp, this)) break; // shared with another mapping
        evictFilePage(file.cache, fp);
        break;
      }
    }
  }

  private installGuard(p: number): void {
    switch (this.kindOf) {
      case 'anon':
        this.store.zero(p);
        this.state[p] = S_GUARD;
        break;
      case 'shmem':
        this.state[p] |= S_GUARD | (this.state[p] & S_PRESENT ? S_UNMAPPED : 0); // the shmem page survives behind the marker
        break;
      case 'file':
        if (!this.shared) this.reloadFromFile(p);
        this.state[p] = S_GUARD | (this.state[p] & S_DIRTY); // a dirty page-cache page stays dirty
        break;
    }
  }

  private populateRange(first: number, end: number, write: boolean | ((p: number) => boolean), fail: (code: string) => never): void {
    const writes = typeof write === 'function' ? write : () => write;
    this.chargeRange(first, end, writes);
    const eof = this.file ? this.eofPages() : 0;
    for (let p = first; p < end; p++) {
      const w = writes(p);
      const code = this.faultError(p, w, eof);
      if (code) fail(code);
      this.fault(p, w);
    }
  }

  residency(offset: number, length: number): Uint8Array {
    this.check('read residency');
    const first = offset / PAGE;
    const count = pagesOf(length);
    const end = Math.min(this.pages, first + count);
    this.observe(first, end);
    const out = new Uint8Array(count);
    const file = this.file;
    if (file && !file.canWrite) return out.fill(1); // mincore side-channel fix
    const eof = file ? this.eofPages() : 0;
    for (let p = first; p < end; p++) {
      const s = this.state[p];
      let v = s & S_PRESENT ? 1 : 0;
      if (!v && file) {
        const fp = file.pageOffset + p;
        v = fp < eof && !file.cache.evicted.has(fp) ? 1 : 0;
      }
      out[p - first] = v;
    }
    return out;
  }

  protect(offset: number, length: number, protection: number): void {
    this.check('protect');
    if (length === 0) return;
    if (this.file && this.shared && protection & PROT_WRITE && !this.file.writable) {
      throw errnoError('EACCES', 'mprotect');
    }
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    // A private VM_LOCKED VMA becoming writable is populated to break COW (mprotect_fixup),
    // not with MLOCK_ONFAULT (populate_vma_page_range skips VM_LOCKONFAULT) — and only a
    // VMA that was not writable before: pages already writable are left as they are.
    const populate: boolean[] = [];
    let any = false;
    for (let p = first; p < end; p++) {
      const old = this.attr[p];
      const becomesWritable = !this.shared && (old & (A_LOCKED | A_ONFAULT | PROT_WRITE)) === A_LOCKED && (protection & PROT_WRITE) !== 0;
      populate.push(becomesWritable);
      any ||= becomesWritable;
      this.attr[p] = (old & ~A_PROT) | (protection & A_PROT);
    }
    if (any) {
      // mprotect ignores populate errors; a failure ends that VMA's populate (its run of pages).
      const eof = this.file ? this.eofPages() : 0;
      for (let p = first; p < end; p++) {
        if (!populate[p - first]) continue;
        if (this.faultError(p, true, eof)) {
          while (p + 1 < end && populate[p + 1 - first]) p++;
          continue;
        }
        try {
          this.backend.ensureRoom(this.wouldCharge(p, true) ? 1 : 0);
        } catch {
          break;
        }
        this.fault(p, true);
      }
    }
  }

  lock(offset: number, length: number, onFault: boolean): Promise<void> {
    return this.later('lock', () => this.lockSync(offset, length, onFault));
  }

  private lockSync(offset: number, length: number, onFault: boolean): void {
    if (length === 0) return;
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    for (let p = first; p < end; p++) {
      this.attr[p] = (this.attr[p] & ~A_ONFAULT) | A_LOCKED | (onFault ? A_ONFAULT : 0);
    }
    if (onFault) return;
    // mm_populate: write faults for private writable memory (FOLL_WRITE breaks COW), read faults otherwise.
    this.populateRange(first, end, (p) => this.populateWrites(p), () => {
      throw errnoError('ENOMEM', 'mlock2');
    });
  }

  unlock(offset: number, length: number): void {
    this.check('unlock');
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    for (let p = first; p < end; p++) this.attr[p] &= ~(A_LOCKED | A_ONFAULT);
  }

  populate(offset: number, length: number, write: boolean): Promise<void> {
    return this.later('populate', () => {
      if (length === 0) return;
      const first = offset / PAGE;
      const end = Math.min(this.pages, first + pagesOf(length));
      this.observe(first, end);
      this.populateRange(first, end, write, (code) => {
        throw errnoError(code, 'madvise');
      });
    });
  }

  flush(offset: number, length: number, invalidate: boolean): Promise<void> {
    return this.later('flush', () => this.flushSync(offset, length, invalidate));
  }

  flushSync(offset: number, length: number, invalidate: boolean): void {
    this.check('flush');
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    if (invalidate) {
      for (let p = first; p < end; p++) if (this.attr[p] & A_LOCKED) throw errnoError('EBUSY', 'msync');
    }
    this.observe(first, end);
    if (this.kindOf !== 'file' || !this.shared) return;
    for (let p = first; p < end; p++) if (this.isDirty(p)) this.writeBack(p);
  }

  resize(newLength: number): void {
    this.check('resize');
    const newPages = pagesOf(newLength);
    const oldPages = this.pages;
    if (newPages > oldPages) {
      // mremap can only grow a range that is a single VMA.
      for (let p = 1; p < oldPages; p++) if (this.attr[p] !== this.attr[0]) throw errnoError('EFAULT', 'mremap');
      if (newPages * PAGE > this.backend.maxWindow) throw errnoError('ENOMEM', 'mremap');
    }
    this.scan(0, oldPages);
    if (this.kindOf === 'file' && this.shared) {
      // Pages cut off stay in the page cache: their data reaches the file.
      for (let p = newPages; p < oldPages; p++) if (this.isDirty(p)) this.writeBack(p);
    }
    const keep = Math.min(oldPages, newPages);
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(newPages);
      next.set(old.subarray(0, keep) as never);
      return next;
    };
    const tailAttr = oldPages > 0 ? this.attr[oldPages - 1] : PROT_READ | PROT_WRITE;
    if (this.kindOf === 'shmem') {
      // The shmem object keeps the pages cut off.
      for (let p = newPages; p < Math.min(oldPages, this.objectPages); p++) {
        const bytes = this.store.page(p);
        this.shmemTail.set(p, { state: this.state[p] & ~(S_GUARD | S_UNMAPPED), bytes: bytes && bytes.slice() });
      }
    }
    this.store.resize(newPages); // keeps the contents, detaches every window
    this.state = grow(this.state, (n) => new Uint8Array(n));
    this.attr = grow(this.attr, (n) => new Uint16Array(n));
    this.hash = grow(this.hash, (n) => new Uint32Array(n));
    this.stamp = grow(this.stamp, (n) => new Float64Array(n));
    this.pages = newPages;
    this.length = newLength;
    for (let p = keep; p < newPages; p++) {
      this.attr[p] = tailAttr;
      if (this.file) this.loadFilePage(p);
      const kept = this.shmemTail.get(p);
      if (kept) {
        this.shmemTail.delete(p);
        this.state[p] = kept.state | (kept.state & S_PRESENT ? S_UNMAPPED : 0);
        this.store.set(p, kept.bytes);
      }
    }
    if (newPages > keep && tailAttr & A_LOCKED && !(tailAttr & A_ONFAULT)) {
      // A locked mapping grows populated; errors are ignored, as mm_populate after mremap does.
      const eof = this.file ? this.eofPages() : 0;
      try {
        this.chargeRange(keep, newPages, (p) => this.populateWrites(p));
      } catch {
        return;
      }
      for (let p = keep; p < newPages; p++) {
        const write = this.populateWrites(p);
        if (this.faultError(p, write, eof)) break;
        this.fault(p, write);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.kindOf === 'file' && this.shared) {
      // munmap leaves dirty pages in the page cache; the simulator writes them back now.
      // Guard pages too: the data written before the guard was installed is still in the page cache.
      for (let p = 0; p < this.pages; p++) {
        if (this.isDirty(p)) {
          try {
            this.writeBack(p);
          } catch {
            // the file went away; nothing left to do
          }
        }
      }
    }
    this.closed = true;
    this.backend.live.delete(this);
    if (this.file) {
      this.file.cache.mappings.delete(this);
      if (this.file.ownFd) {
        try {
          fs.closeSync(this.file.fd);
        } catch {
          // already closed
        }
      }
    }
    this.store.close();
  }

  /** Run work on a later microtask, as the native backend runs it off the event loop. */
  private later(operation: string, work: Work): Promise<void> {
    if (this.closed) return Promise.reject(mappingClosed(operation));
    return Promise.resolve().then(() => {
      if (this.closed) throw mappingClosed(operation);
      work();
    });
  }
}
