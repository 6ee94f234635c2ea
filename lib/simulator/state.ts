// Page and VMA state of the simulator's model, one word per page, and small
// helpers every part of the model shares. docs/SIMULATOR.md describes the model.
import { HUGE_PAGE_SIZE, SIMULATED_PAGE_SIZE } from '../constants';

export const PAGE = SIMULATED_PAGE_SIZE;
export const HUGE_PAGES = HUGE_PAGE_SIZE / PAGE;

// Page state bits.
export const S_PRESENT = 1; // a PTE maps the page (anonymous: the page exists; shmem: in the shmem cache)
export const S_LAZY = 2; // MADV_FREE'd, clean since (anonymous private only)
export const S_ZERO = 4; // mapped to the shared zero page (read fault on untouched anonymous memory)
export const S_COW = 8; // private file page replaced by an anonymous copy
export const S_GUARD = 16; // guard marker (MADV_GUARD_INSTALL)
export const S_DIRTY = 32; // shared file page dirtied by a write fault (POPULATE_WRITE) whatever its contents
export const S_CLEAN = 64; // shmem page allocated by a read fault and never written: reclaim may drop it (a hole again)
export const S_UNMAPPED = 128; // shmem page in the shmem cache but not mapped here (after DONTNEED / GUARD_INSTALL)

// Per-page VMA attributes; pages with different words sit in different VMAs.
export const A_PROT = 7;
export const A_LOCKED = 1 << 3;
export const A_ONFAULT = 1 << 4;
export const A_SEQ = 1 << 5;
export const A_RAND = 1 << 6;
export const A_DONTCOPY = 1 << 7;
export const A_MERGEABLE = 1 << 8;
export const A_HUGE = 1 << 9;
export const A_NOHUGE = 1 << 10;
export const A_DONTDUMP = 1 << 11;
export const A_WIPE = 1 << 12;

/** A page of zeros (read-only use). */
export const ZEROS = new Uint8Array(PAGE);

export function pagesOf(bytes: number): number {
  return Math.ceil(bytes / PAGE);
}
