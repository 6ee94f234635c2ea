// Every madvise(2) advice pagewise exposes, with what it does to contents.
// Values are Linux's (include/uapi/asm-generic/mman-common.h, x86-64).
// MADV_HWPOISON (100) and MADV_SOFT_OFFLINE (101) are deliberately absent: they
// are kernel testing hooks that need CAP_SYS_ADMIN, and a poisoned page makes
// the next JavaScript access raise SIGBUS.

/** Advice that may destroy data in the range (or, for wipeonfork, in a child). */
export type DestructiveAdvice =
  | 'dontneed'
  | 'free'
  | 'remove'
  | 'dontneed-locked'
  | 'guard-install'
  | 'wipeonfork';

/** Advice that never changes what the range reads back in this process. */
export type SafeAdvice =
  | 'normal'
  | 'random'
  | 'sequential'
  | 'willneed'
  | 'dontfork'
  | 'dofork'
  | 'mergeable'
  | 'unmergeable'
  | 'hugepage'
  | 'nohugepage'
  | 'dontdump'
  | 'dodump'
  | 'keeponfork'
  | 'cold'
  | 'pageout'
  | 'populate-read'
  | 'populate-write'
  | 'collapse'
  | 'guard-remove';

export type Advice = SafeAdvice | DestructiveAdvice;

export interface AdviceInfo {
  /** The MADV_* number. */
  readonly value: number;
  /** The MADV_* name. */
  readonly constant: string;
  /** Destructive advice rounds a byte range inward to whole pages; the rest rounds outward. */
  readonly destructive: boolean;
  /** First Linux version that knows it. */
  readonly since: string;
  /** What it does, in one line. */
  readonly effect: string;
}

function info(value: number, constant: string, destructive: boolean, since: string, effect: string): AdviceInfo {
  return Object.freeze({ value, constant, destructive, since, effect });
}

export const ADVICE: Readonly<Record<Advice, AdviceInfo>> = Object.freeze({
  normal: info(0, 'MADV_NORMAL', false, '2.6', 'default readahead'),
  random: info(1, 'MADV_RANDOM', false, '2.6', 'expect random access: no readahead'),
  sequential: info(2, 'MADV_SEQUENTIAL', false, '2.6', 'expect sequential access: aggressive readahead'),
  willneed: info(3, 'MADV_WILLNEED', false, '2.6', 'start reading the range in (asynchronous)'),
  dontneed: info(4, 'MADV_DONTNEED', true, '2.6', 'drop pages now: private anonymous reads back zeros, private file re-reads the file (COW changes lost), shared re-reads the shared object'),
  free: info(8, 'MADV_FREE', true, '4.5', 'private anonymous only: the kernel may drop the pages under pressure (they then read zeros); a write to a page cancels it'),
  remove: info(9, 'MADV_REMOVE', true, '2.6.16', 'shared writable only: free the backing store (punches a hole in the file or shmem)'),
  dontfork: info(10, 'MADV_DONTFORK', false, '2.6.16', 'a child of fork() does not get the range'),
  dofork: info(11, 'MADV_DOFORK', false, '2.6.16', 'undo dontfork'),
  mergeable: info(12, 'MADV_MERGEABLE', false, '2.6.32', 'allow KSM to merge identical pages'),
  unmergeable: info(13, 'MADV_UNMERGEABLE', false, '2.6.32', 'undo mergeable'),
  hugepage: info(14, 'MADV_HUGEPAGE', false, '2.6.38', 'allow transparent huge pages'),
  nohugepage: info(15, 'MADV_NOHUGEPAGE', false, '2.6.38', 'forbid transparent huge pages'),
  dontdump: info(16, 'MADV_DONTDUMP', false, '3.4', 'leave the range out of core dumps'),
  dodump: info(17, 'MADV_DODUMP', false, '3.4', 'undo dontdump'),
  wipeonfork: info(18, 'MADV_WIPEONFORK', true, '4.14', 'private anonymous only: a child of fork() sees zeros'),
  keeponfork: info(19, 'MADV_KEEPONFORK', false, '4.14', 'undo wipeonfork'),
  cold: info(20, 'MADV_COLD', false, '5.4', 'deactivate: reclaim these pages first'),
  pageout: info(21, 'MADV_PAGEOUT', false, '5.4', 'reclaim now; contents kept, except clean lazy-free pages, which are discarded'),
  'populate-read': info(22, 'MADV_POPULATE_READ', false, '5.14', 'prefault readable (EFAULT instead of SIGBUS past end of file)'),
  'populate-write': info(23, 'MADV_POPULATE_WRITE', false, '5.14', 'prefault writable (breaks copy-on-write of private file pages)'),
  'dontneed-locked': info(24, 'MADV_DONTNEED_LOCKED', true, '5.18', 'dontneed that also works on mlocked pages'),
  collapse: info(25, 'MADV_COLLAPSE', false, '6.1', 'collapse into transparent huge pages now'),
  'guard-install': info(102, 'MADV_GUARD_INSTALL', true, '6.13', 'replace the pages by guard markers: any access faults'),
  'guard-remove': info(103, 'MADV_GUARD_REMOVE', false, '6.13', 'remove guard markers (zero-fill or file content on next access)'),
});

export const ADVICE_NAMES: readonly Advice[] = Object.freeze(Object.keys(ADVICE) as Advice[]);

export function isAdvice(value: unknown): value is Advice {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ADVICE, value);
}
