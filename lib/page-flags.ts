// Page flags and write tracking (issue 26): what the kernel did to every page of a
// mapping, read from PAGEMAP_SCAN / /proc/self/pagemap (native/pagemap.cc) or the
// simulator's model, and which pages were written since a checkpoint (userfaultfd
// asynchronous write-protect, native/userfaultfd.cc). docs/WRITE-TRACKING.md.
import type { BackendWriteTracker, RawPageFlags } from './backend';
import { type ErrnoError, kernelError, pagewiseError } from './errors';

/** A page flag as mapping.pageFlags() reports it. */
export type PageFlag = 'present' | 'swapped' | 'file' | 'zeroPage' | 'huge' | 'written' | 'softDirty';

/** The kernel's PAGE_IS_* bit of each flag (include/uapi/linux/fs.h). */
export const PAGE_CATEGORY: Readonly<Record<PageFlag, number>> = Object.freeze({
  written: 1 << 1,
  file: 1 << 2,
  present: 1 << 3,
  swapped: 1 << 4,
  zeroPage: 1 << 5,
  huge: 1 << 6,
  softDirty: 1 << 7,
});
export const PAGE_FLAGS = Object.freeze(['present', 'swapped', 'file', 'zeroPage', 'huge', 'written', 'softDirty'] as PageFlag[]);
const ALL_BITS = PAGE_FLAGS.reduce((bits, f) => bits | PAGE_CATEGORY[f], 0);

/** A run of pages with the same flags. */
export interface PageRun {
  /** Relative to the mapping's byte 0 (negative for the page before a file mapped at an unaligned offset). */
  offset: number;
  length: number;
  /** The flags set on every page of the run (frozen; runs with the same flags share one array). */
  flags: readonly PageFlag[];
}

export interface PageFlagsReport {
  runs: PageRun[];
  /** Pages with each flag set; undefined for a flag this source cannot tell (not in `known`). */
  counts: Record<PageFlag, number | undefined>;
  /** Pages covered. */
  pages: number;
  /** The flags this source reports: a flag not listed is unknown, not unset. */
  known: readonly PageFlag[];
  /**
   * 'pagemap-scan': the PAGEMAP_SCAN ioctl (Linux 6.7+), every flag but `written` outside a
   * tracked mapping. 'pagemap': /proc/self/pagemap entries (present, swapped, file, softDirty).
   * 'simulator': the reference simulator's model (present, zeroPage, file) — not this machine.
   */
  source: RawPageFlags['source'];
}

/** Flag-name arrays by bit pattern: runs share them, so a report of many runs allocates one object per run. */
const NAMES_BY_BITS: (readonly PageFlag[] | undefined)[] = [];
function namesOf(bits: number): readonly PageFlag[] {
  let names = NAMES_BY_BITS[bits];
  if (names === undefined) {
    names = Object.freeze(PAGE_FLAGS.filter((f) => (bits & PAGE_CATEGORY[f]) !== 0));
    NAMES_BY_BITS[bits] = names;
  }
  return names;
}

/**
 * The public report of a backend's answer. `knownMask` narrows what the source knows
 * (the written bit means something only inside a tracked mapping); `delta` moves region
 * offsets to mapping offsets.
 */
export function pageFlagsReport(raw: RawPageFlags, knownMask: number, delta: number, page: number): PageFlagsReport {
  const known = raw.known & knownMask & ALL_BITS;
  const src = raw.runs;
  const runs: PageRun[] = [];
  const pagesPerBit = new Float64Array(8);
  let pages = 0;
  let last: PageRun | undefined;
  let lastBits = -1;
  for (let i = 0; i < src.length; i += 3) {
    const bits = src[i + 2] & known;
    const length = src[i + 1];
    const n = length / page;
    pages += n;
    for (let b = 1; b < 8; b++) if (bits & (1 << b)) pagesPerBit[b] += n;
    // Bits masked off can make neighbouring runs equal: merge them.
    if (last !== undefined && bits === lastBits && last.offset + last.length === src[i] - delta) {
      last.length += length;
      continue;
    }
    last = { offset: src[i] - delta, length, flags: namesOf(bits) };
    lastBits = bits;
    runs.push(last);
  }
  const counts = {} as Record<PageFlag, number | undefined>;
  for (const f of PAGE_FLAGS) {
    const bit = PAGE_CATEGORY[f];
    counts[f] = known & bit ? pagesPerBit[Math.log2(bit)] : undefined;
  }
  return { runs, counts, pages, known: namesOf(known), source: raw.source };
}

/**
 * What pageFlags() reports for a backend error: ERR_NOT_SUPPORTED when neither PAGEMAP_SCAN nor
 * /proc/self/pagemap can be read (`undefined`: the caller asked for PAGEMAP_SCAN and the kernel has none).
 */
export function pageFlagsError(err: unknown): unknown {
  if (err === undefined) {
    return pagewiseError('ERR_NOT_SUPPORTED', "this kernel has no PAGEMAP_SCAN ioctl (Linux 6.7+): use source 'pagemap' or leave it out");
  }
  const code = (err as Partial<ErrnoError> | null)?.code;
  if (code !== undefined && code.startsWith('ERR_')) return err;
  const kernel = kernelError(err) as ErrnoError;
  if (['ENOENT', 'EACCES', 'EPERM', 'ENOTTY'].includes(kernel.code)) {
    return notSupported(`page flags need the PAGEMAP_SCAN ioctl (Linux 6.7+) or a readable /proc/self/pagemap (${kernel.code}, ${kernel.syscall})`, kernel);
  }
  return kernel;
}

/** Turns a backend error of write tracking into what the public API reports. */
export function writeTrackingError(err: unknown, kind: 'anonymous' | 'file', shared: boolean): unknown {
  const e = err as Partial<ErrnoError> | null;
  const code = e?.code;
  if (code !== undefined && code.startsWith('ERR_')) return err;
  const syscall = e?.syscall;
  const name = kernelError(err) as ErrnoError;
  if (syscall === 'userfaultfd' && (name.code === 'ENOSYS' || name.code === 'EPERM')) {
    return notSupported(`write tracking needs userfaultfd(2), which this system refuses (${name.code})`, err);
  }
  if (syscall === 'UFFDIO_API' && name.code === 'EINVAL') {
    return notSupported('write tracking needs userfaultfd with UFFD_FEATURE_WP_ASYNC and UFFD_FEATURE_WP_UNPOPULATED (Linux 6.7+)', err);
  }
  if (syscall === 'UFFDIO_REGISTER' && name.code === 'EINVAL' && kind === 'file' && !shared) {
    return notSupported('userfaultfd write-protect covers anonymous, shared (shmem) and hugetlbfs memory, not a private mapping of a regular file', err);
  }
  if (syscall === 'UFFDIO_REGISTER' && name.code === 'EINVAL' && kind === 'file') {
    return notSupported('userfaultfd write-protect covers anonymous, shmem (memfd, /dev/shm) and hugetlbfs memory, not a regular file', err);
  }
  if (syscall === 'PAGEMAP_SCAN' && (name.code === 'ENOTTY' || name.code === 'EINVAL')) {
    return notSupported('reading written pages needs the PAGEMAP_SCAN ioctl (Linux 6.7+)', err);
  }
  return kernelError(err, (c) =>
    c === 'EBUSY' && syscall === 'UFFDIO_REGISTER' ? 'another userfaultfd (another write tracker?) already covers this mapping' : undefined,
  );
}

function notSupported(message: string, cause: unknown): Error {
  const e = pagewiseError('ERR_NOT_SUPPORTED', message);
  (e as Error & { cause?: unknown }).cause = cause;
  return e;
}

/** Removes a closed tracker from its mapping's set. */
type Forget = (tracker: WriteTracker) => void;

/**
 * Pages written since the tracker started or was last reset, from mapping.trackWrites().
 * Writes proceed as before (the kernel records them; no signal, no thread). Release it
 * with close() or `using`; it also closes with its mapping.
 */
export class WriteTracker implements Disposable {
  #backend: BackendWriteTracker | undefined;
  readonly #range: (range: unknown) => [number, number, number];
  readonly #forget: Forget;
  readonly #kind: 'anonymous' | 'file';
  readonly #shared: boolean;

  /** @internal: made by Mapping.trackWrites(). `range` validates and rounds a range outward: [start, end, delta]. */
  constructor(backend: BackendWriteTracker, range: (range: unknown) => [number, number, number], forget: Forget, kind: 'anonymous' | 'file', shared: boolean) {
    this.#backend = backend;
    this.#range = range;
    this.#forget = forget;
    this.#kind = kind;
    this.#shared = shared;
  }

  get closed(): boolean {
    return this.#backend === undefined;
  }

  /**
   * Runs of pages (offset and length relative to the mapping, whole pages) of the range written
   * since the last reset(), in address order. After a resize() of the mapping, every page until the next reset().
   */
  written(range?: { offset?: number; length?: number }): { offset: number; length: number }[] {
    const backend = this.#open();
    const [start, end, delta] = this.#range(range);
    let raw: Float64Array;
    try {
      raw = backend.written(start, end - start);
    } catch (err) {
      throw writeTrackingError(err, this.#kind, this.#shared);
    }
    const runs: { offset: number; length: number }[] = [];
    for (let i = 0; i < raw.length; i += 2) runs.push({ offset: raw[i] - delta, length: raw[i + 1] });
    return runs;
  }

  /** Count every page as clean from now on. */
  reset(): void {
    const backend = this.#open();
    try {
      backend.reset();
    } catch (err) {
      throw writeTrackingError(err, this.#kind, this.#shared);
    }
  }

  /** Stop tracking: the userfaultfd is closed and the pages lose their write protection. Idempotent. */
  close(): void {
    const backend = this.#backend;
    if (backend === undefined) return;
    this.#backend = undefined;
    backend.close();
    this.#forget(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(): BackendWriteTracker {
    if (this.#backend === undefined) throw pagewiseError('ERR_WRITE_TRACKER_CLOSED', 'The write tracker is closed');
    return this.#backend;
  }
}
