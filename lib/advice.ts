// Every madvise(2) advice pagewise exposes, with what it does to contents.
// The numbers come from the one table of kernel constants (lib/constants.ts).
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

import { MADV, type MadviseName } from './constants';
import { closest, invalidArgValue } from './errors';
import { validateOneOf } from './validate';

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

function info(name: MadviseName, destructive: boolean, since: string, effect: string): AdviceInfo {
  return Object.freeze({ value: MADV[name], constant: `MADV_${name}`, destructive, since, effect });
}

export const ADVICE: Readonly<Record<Advice, AdviceInfo>> = Object.freeze({
  normal: info('NORMAL', false, '2.6', 'default readahead'),
  random: info('RANDOM', false, '2.6', 'expect random access: no readahead'),
  sequential: info('SEQUENTIAL', false, '2.6', 'expect sequential access: aggressive readahead'),
  willneed: info('WILLNEED', false, '2.6', 'start reading the range in (asynchronous)'),
  dontneed: info('DONTNEED', true, '2.6', 'drop pages now: private anonymous reads back zeros, private file re-reads the file (COW changes lost), shared re-reads the shared object'),
  free: info('FREE', true, '4.5', 'private anonymous only: the kernel may drop the pages under pressure (they then read zeros); a write to a page cancels it'),
  remove: info('REMOVE', true, '2.6.16', 'shared writable only: free the backing store (punches a hole in the file or shmem)'),
  dontfork: info('DONTFORK', false, '2.6.16', 'a child of fork() does not get the range'),
  dofork: info('DOFORK', false, '2.6.16', 'undo dontfork'),
  mergeable: info('MERGEABLE', false, '2.6.32', 'allow KSM to merge identical pages'),
  unmergeable: info('UNMERGEABLE', false, '2.6.32', 'undo mergeable'),
  hugepage: info('HUGEPAGE', false, '2.6.38', 'allow transparent huge pages'),
  nohugepage: info('NOHUGEPAGE', false, '2.6.38', 'forbid transparent huge pages'),
  dontdump: info('DONTDUMP', false, '3.4', 'leave the range out of core dumps'),
  dodump: info('DODUMP', false, '3.4', 'undo dontdump'),
  wipeonfork: info('WIPEONFORK', true, '4.14', 'private anonymous only: a child of fork() sees zeros'),
  keeponfork: info('KEEPONFORK', false, '4.14', 'undo wipeonfork'),
  cold: info('COLD', false, '5.4', 'deactivate: reclaim these pages first'),
  pageout: info('PAGEOUT', false, '5.4', 'reclaim now; contents kept, except clean lazy-free pages, which are discarded'),
  'populate-read': info('POPULATE_READ', false, '5.14', 'prefault readable (EFAULT instead of SIGBUS past end of file)'),
  'populate-write': info('POPULATE_WRITE', false, '5.14', 'prefault writable (breaks copy-on-write of private file pages)'),
  'dontneed-locked': info('DONTNEED_LOCKED', true, '5.18', 'dontneed that also works on mlocked pages'),
  collapse: info('COLLAPSE', false, '6.1', 'collapse into transparent huge pages now'),
  'guard-install': info('GUARD_INSTALL', true, '6.13', 'replace the pages by guard markers: any access faults'),
  'guard-remove': info('GUARD_REMOVE', false, '6.13', 'remove guard markers (zero-fill or file content on next access)'),
});

export const ADVICE_NAMES: readonly Advice[] = Object.freeze(Object.keys(ADVICE) as Advice[]);

/** The kernel's spelling of an advice, as in madvise(2): 'MADV_FREE' is accepted for 'free'. */
export type AdviceConstant = `MADV_${MadviseName}`;

const BY_CONSTANT: ReadonlyMap<string, AdviceInfo> = new Map(ADVICE_NAMES.map((name) => [ADVICE[name].constant, ADVICE[name]]));

/**
 * The table entry of an advice named as pagewise spells it ('free') or as the
 * kernel does ('MADV_FREE'). Anything else is ERR_INVALID_ARG_VALUE with the
 * closest name ('fre', 'FREE', 'dontneeed' -> did you mean 'free' / 'dontneed'?):
 * a guessed advice could destroy data, so other spellings are not accepted.
 */
export function adviceFromName(advice: unknown): AdviceInfo {
  if (typeof advice !== 'string') return ADVICE[validateOneOf('advice', advice, ADVICE_NAMES)];
  const known = (Object.prototype.hasOwnProperty.call(ADVICE, advice) ? ADVICE[advice as Advice] : undefined) ?? BY_CONSTANT.get(advice);
  if (known !== undefined) return known;
  // Compare in pagewise's spelling: 'MADV_POPULATE_WRTE' -> 'populate-wrte' -> 'populate-write'.
  const key = advice.replace(/^madv_/i, '').replace(/_/g, '-').toLowerCase();
  const guess = Object.prototype.hasOwnProperty.call(ADVICE, key) ? key : closest(key, ADVICE_NAMES);
  const names = ADVICE_NAMES.map((a) => `'${a}'`).join(', ');
  throw invalidArgValue('advice', advice, `must be one of: ${names}${guess !== undefined ? ` (did you mean '${guess}'?)` : ''}`);
}

/** What the library knows about a kernel error of madvise with this advice on this mapping. */
export function adviceHint(meta: AdviceInfo, code: string, kind: 'anonymous' | 'file', shared: boolean): string | undefined {
  if (meta.value === ADVICE.free.value && code === 'EINVAL' && (kind === 'file' || shared)) {
    return `${meta.constant} works only on private anonymous memory; use 'dontneed' on a file or shared mapping`;
  }
  if (meta.value === ADVICE.remove.value && (code === 'EINVAL' || code === 'EACCES') && !shared) {
    return `${meta.constant} works only on shared writable mappings (it punches a hole in the file or shared memory); use 'dontneed' on private memory`;
  }
  if (meta.value === ADVICE.wipeonfork.value && code === 'EINVAL' && (kind === 'file' || shared)) {
    return `${meta.constant} works only on private anonymous memory`;
  }
  return undefined;
}
