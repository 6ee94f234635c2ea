// The simulator's page cache of files: one FileCache per file (dev:ino), shared by
// every mapping of that file, and the rules that decide whether a file page is
// clean, mapped, or can leave the cache.
import * as fs from 'node:fs';
import { errnoError } from '../errors';
import { A_LOCKED, S_COW, S_PRESENT } from './state';

/** Rethrow a Node fs error as the errno error `syscall` would give. */
export function rethrowFs(err: unknown, syscall: string): never {
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

/**
 * What the page cache reads of a mapping of its file (lib/simulator/mapping.ts's SimMapping;
 * declared here so that this module needs nothing from mapping.ts).
 */
interface CachedMapping {
  readonly file: SimFile<CachedMapping> | undefined;
  readonly pages: number;
  readonly shared: boolean;
  readonly state: Uint8Array;
  readonly attr: Uint16Array;
  isDirty(p: number): boolean;
}

/** The simulator's page cache of one file (dev:ino), shared by every mapping of it. */
export interface FileCache<M extends CachedMapping = CachedMapping> {
  key: string;
  /**
   * Pages known to be out of the page cache. A file the simulator has not evicted
   * is assumed fully cached below EOF (true for a file just written, the common case).
   */
  evicted: Set<number>;
  /** Last-use clock per page for reclaim order (absent = older than anything seen). */
  stamps: Map<number, number>;
  mappings: Set<M>;
  /**
   * tmpfs / shmem without swap: the page cache is the file's only copy, so neither
   * fadvise(DONTNEED), PAGEOUT nor reclaim can drop its pages (MADV_REMOVE still punches holes).
   */
  unevictable: boolean;
}

/** statfs f_type of tmpfs (and of the shmem behind /dev/shm and memfd). */
const TMPFS_MAGIC = 0x01021994;
let swapOn: boolean | undefined;

/** Whether any swap area is active (/proc/swaps lists one below its header line). */
function haveSwap(): boolean {
  if (swapOn === undefined) {
    try {
      swapOn = fs.readFileSync('/proc/swaps', 'utf8').trim().split('\n').length > 1;
    } catch {
      swapOn = false;
    }
  }
  return swapOn;
}

/** A FileCache for the file open on fd (key dev:ino). */
export function newFileCache<M extends CachedMapping>(key: string, fd: number): FileCache<M> {
  let tmpfs = false;
  try {
    tmpfs = Number(fs.statfsSync(`/proc/self/fd/${fd}`).type) === TMPFS_MAGIC;
  } catch {
    tmpfs = false; // no /proc (not Linux): ordinary files
  }
  return { key, evicted: new Set(), stamps: new Map(), mappings: new Set(), unevictable: tmpfs && !haveSwap() };
}

/** Whether the caller owns the file open on fd or may write it: the kernel's test for cachestat(2) and an honest mincore(2). */
export function callerMayWrite(fd: number, uid: number): boolean {
  if (typeof process.getuid === 'function' && (process.getuid() === 0 || process.getuid() === uid)) return true;
  try {
    fs.accessSync(`/proc/self/fd/${fd}`, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export interface SimFile<M extends CachedMapping = CachedMapping> {
  fd: number;
  ownFd: boolean;
  cache: FileCache<M>;
  /** First file page of the mapping. */
  pageOffset: number;
  /** The descriptor was opened for writing (VM_MAYWRITE for shared mappings). */
  writable: boolean;
  /** The caller owns or may write the file (mincore is honest, PAGEOUT acts). */
  canWrite: boolean;
}

/** No live mapping holds unflushed data for file page fp (and none has it locked). */
export function fileClean(cache: FileCache, fp: number, ignoreLocks = false): boolean {
  for (const m of cache.mappings) {
    const p = fp - m.file!.pageOffset;
    if (p < 0 || p >= m.pages) continue;
    if (m.shared && m.isDirty(p)) return false;
    if (!ignoreLocks && m.attr[p] & A_LOCKED && !(m.state[p] & S_COW)) return false;
  }
  return true;
}

/** Some live mapping has a PTE for file page fp (not counting COW copies). */
export function fileMapped(cache: FileCache, fp: number, except?: CachedMapping): boolean {
  for (const m of cache.mappings) {
    if (m === except) continue;
    const p = fp - m.file!.pageOffset;
    if (p < 0 || p >= m.pages) continue;
    if ((m.state[p] & (S_PRESENT | S_COW)) === S_PRESENT) return true;
  }
  return false;
}

/** Drop file page fp from the page cache and unmap it everywhere; contents stay (they equal the file). */
export function evictFilePage(cache: FileCache, fp: number): void {
  cache.evicted.add(fp);
  cache.stamps.delete(fp);
  for (const m of cache.mappings) {
    const p = fp - m.file!.pageOffset;
    if (p < 0 || p >= m.pages) continue;
    if (!(m.state[p] & S_COW)) m.state[p] &= ~S_PRESENT;
  }
}
