// The simulator's page cache of files: one FileCache per file (dev:ino), shared by
// every mapping of that file, and the rules that decide whether a file page is
// clean, mapped, or can leave the cache.
import { errnoError } from '../errors';
import type { SimMapping } from './mapping';
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

/** The simulator's page cache of one file (dev:ino), shared by every mapping of it. */
export interface FileCache {
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

export interface SimFile {
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
export function fileMapped(cache: FileCache, fp: number, except?: SimMapping): boolean {
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
