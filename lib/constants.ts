// The kernel's numbers, in one table: Linux's x86-64 values of the madvise(2),
// posix_fadvise(2) and mmap/mprotect(2) constants pagewise passes to the kernel
// (include/uapi/asm-generic/mman-common.h, include/uapi/linux/fadvise.h). The
// advice table (lib/advice.ts), the public API and the simulator all read them
// from here.

/** MADV_* advice numbers, exactly the set pagewise exposes. HWPOISON (100) and SOFT_OFFLINE (101) are left out on purpose (see lib/advice.ts). */
export const MADV = Object.freeze({
  NORMAL: 0,
  RANDOM: 1,
  SEQUENTIAL: 2,
  WILLNEED: 3,
  DONTNEED: 4,
  FREE: 8,
  REMOVE: 9,
  DONTFORK: 10,
  DOFORK: 11,
  MERGEABLE: 12,
  UNMERGEABLE: 13,
  HUGEPAGE: 14,
  NOHUGEPAGE: 15,
  DONTDUMP: 16,
  DODUMP: 17,
  WIPEONFORK: 18,
  KEEPONFORK: 19,
  COLD: 20,
  PAGEOUT: 21,
  POPULATE_READ: 22,
  POPULATE_WRITE: 23,
  DONTNEED_LOCKED: 24,
  COLLAPSE: 25,
  GUARD_INSTALL: 102,
  GUARD_REMOVE: 103,
} as const);
export type MadviseName = keyof typeof MADV;

/** POSIX_FADV_* advice numbers (Linux values; NOREUSE is 5 on x86-64). */
export const FADV = Object.freeze({
  NORMAL: 0,
  RANDOM: 1,
  SEQUENTIAL: 2,
  WILLNEED: 3,
  DONTNEED: 4,
  NOREUSE: 5,
} as const);

/** PROT_* bits. */
export const PROT = Object.freeze({ NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const);

/** The page size the simulator models (x86-64's base page); the native backend reports the real one. */
export const SIMULATED_PAGE_SIZE = 4096;
/** x86-64's transparent / default huge page: 2 MiB. */
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;

/** Every MADV_* number pagewise knows: what `supports()` can answer yes to. */
export const KNOWN_MADVISE: ReadonlySet<number> = new Set(Object.values(MADV));
