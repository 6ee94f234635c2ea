// SimulatorBackend: the Backend over the simulator's model (mappings, page cache,
// simulated memory limit). docs/SIMULATOR.md describes the model and lists every
// divergence from the kernel.
import * as fs from 'node:fs';
import type { Backend, BackendMapping, MapRequest, RawFileResidency } from '../backend';
import { FADV, KNOWN_MADVISE, PROT } from '../constants';
import { errnoError, pagewiseError } from '../errors';
import { type FileCache, type SimFile, SimMapping, type SimulatorHost } from './mapping';
import {
  callerMayWrite,
  evictFilePage,
  fileClean,
  fileMapped,
  newFileCache,
  rethrowFs,
} from './page-cache';
import { A_LOCKED, PAGE, S_LAZY, S_ZERO, pagesOf } from './state';

export interface SimulatorOptions {
  /** Simulated memory limit in bytes (like a cgroup's memory.max); undefined = unlimited. */
  memoryLimit?: number;
}

export class SimulatorBackend implements Backend, SimulatorHost {
  readonly kind = 'simulator' as const;
  readonly pageSize = PAGE;
  /** Each mapping is one ArrayBuffer; a conservative ceiling for every engine. */
  readonly maxViewLength = 2 ** 31;
  /** The simulator takes its numbers as arguments: no call-argument array. */
  readonly callArgs = undefined;
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
    return KNOWN_MADVISE.has(advice);
  }

  /** The simulated kernel has CONFIG_ANON_VMA_NAME: private anonymous memory takes a name (shmem: EBADF). */
  supportsMappingNames(): boolean {
    return true;
  }
  nameMapping(region: BackendMapping): boolean {
    return region instanceof SimMapping && region.kindOf === 'anon';
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
          // A freed zero-page PTE holds no memory: nothing to reclaim (only PAGEOUT unmaps it).
          if ((m.state[p] & (S_LAZY | S_ZERO)) !== S_LAZY || m.attr[p] & A_LOCKED) continue;
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
          if (fp >= eof || done.has(fp) || cache.unevictable) continue;
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
    if (pages * PAGE > this.maxViewLength) throw errnoError('ENOMEM', 'mmap');
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
    if (shared && protection & PROT.WRITE && !file.writable) throw errnoError('EACCES', 'mmap');
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
      cache = newFileCache(key, fd);
      this.files.set(key, cache);
    }
    const canWrite = callerMayWrite(fd, st.uid);
    return { fd, ownFd, cache, pageOffset: file.offset / PAGE, writable: file.writable, canWrite };
  }

  fileResidency(fd: number, offset: number, length: number, wantPages: boolean): RawFileResidency {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
    } catch (err) {
      rethrowFs(err, wantPages ? 'mmap' : 'cachestat');
    }
    // cachestat(2) answers only to a caller who owns the file or may write it (EPERM otherwise),
    // and mincore(2) then reports every page resident (it may not reveal the page cache).
    const mayWrite = callerMayWrite(fd, st.uid);
    if (!mayWrite && !wantPages) throw errnoError('EPERM', 'cachestat');
    const size = st.size;
    const first = Math.floor(offset / PAGE);
    const end = length === 0 ? first : pagesOf(offset + length);
    const total = end - first;
    const eof = pagesOf(size);
    const cache = this.files.get(`${st.dev}:${st.ino}`);
    for (const m of cache?.mappings ?? []) m.scan(0, m.pages);
    // Counts need no vector; pages past the end of the file are never cached (huge ranges cost what the file costs).
    const pages = wantPages ? new Uint8Array(total) : undefined;
    if (!mayWrite) return { cached: total, total, source: 'mincore', pages: pages?.fill(1) };
    let cached = 0;
    let dirty = 0;
    let evicted = 0;
    const scan = Math.max(0, Math.min(total, eof - first));
    for (let i = 0; i < scan; i++) {
      const fp = first + i;
      if (cache?.evicted.has(fp)) {
        evicted++;
        continue;
      }
      if (pages) pages[i] = 1;
      cached++;
      if (cache && !fileClean(cache, fp, true)) dirty++;
    }
    if (pages) return { cached, total, source: 'mincore', pages };
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
    if (!Number.isInteger(advice) || advice < FADV.NORMAL || advice > FADV.NOREUSE) throw errnoError('EINVAL', 'posix_fadvise');
    if (advice !== FADV.WILLNEED && advice !== FADV.DONTNEED) return; // NORMAL, RANDOM, SEQUENTIAL, NOREUSE: readahead policy only
    const key = `${st.dev}:${st.ino}`;
    let cache = this.files.get(key);
    if (!cache) {
      cache = newFileCache(key, fd);
      this.files.set(key, cache);
    }
    if (advice === FADV.DONTNEED && cache.unevictable) return; // tmpfs without swap: nothing to drop to
    const eof = pagesOf(st.size);
    const first = Math.floor(offset / PAGE);
    const end = length === 0 ? eof : Math.min(eof, pagesOf(offset + length));
    for (const m of cache.mappings) m.scan(0, m.pages);
    for (let fp = first; fp < end; fp++) {
      if (advice === FADV.WILLNEED) {
        cache.evicted.delete(fp);
        cache.stamps.set(fp, this.tick());
      } else if (!cache.evicted.has(fp) && fileClean(cache, fp) && !fileMapped(cache, fp)) {
        // DONTNEED starts writeback of dirty pages and drops clean, unmapped ones.
        evictFilePage(cache, fp);
      }
    }
  }

  /** memfd_create and file seals cannot be had without the kernel (lib/shared-memory.ts). */
  createMemfd(_name: string, _size: number, _sealGrow: boolean): number {
    throw pagewiseError('ERR_OPERATION_NOT_SUPPORTED', 'createSharedMemory() needs the native backend: the simulator cannot create a sealed memfd');
  }
  seals(_fd: number): number {
    return -1;
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
