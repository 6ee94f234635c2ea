// The seam between the public API (lib/mapping.ts, lib/api.ts) and the two
// implementations: the native addon (lib/native.ts) and the pure-TypeScript
// reference simulator (lib/simulator/). Memory semantics only, every member
// implemented by both: what the command line needs besides is a separate native export
// (lib/cli/stat/native.ts).
//
// The public API validates every argument and rounds ranges before it calls a
// backend, so a backend receives:
//   - offsets that are page-aligned and relative to the start of the mapping,
//   - lengths >= 0 with offset + length <= mapping length rounded up to a page,
//   - advice / protection numbers with Linux's x86-64 values (lib/constants.ts).
// A backend reports kernel failures as errno errors (lib/errors.ts, errnoError):
// the same code, errno and syscall the kernel would give for the same call.


export interface MapRequest {
  /** Bytes to map (> 0). The kernel rounds up to whole pages. */
  length: number;
  /** PROT_* bits. */
  protection: number;
  /** MAP_SHARED when true, MAP_PRIVATE when false. */
  shared: boolean;
  /** File to map; absent for anonymous memory. */
  file?: {
    /** An open descriptor; the backend must not close it and may not keep it past map(). */
    fd: number;
    /** The path, when the caller named one (the simulator reopens it to keep access). */
    path?: string | Buffer;
    /** Page-aligned offset into the file. */
    offset: number;
    /** Whether fd was opened for writing (needed by shared writable mappings). */
    writable: boolean;
  };
  /** MAP_POPULATE. */
  populate: boolean;
  /** MAP_NORESERVE. */
  noreserve: boolean;
  /** MAP_HUGETLB with this page-size shift (21 = 2 MiB, 30 = 1 GiB); 0 = normal pages. */
  hugePageShift: number;
}

/** Raw counts from cachestat(2) or from mapping the file and calling mincore(2). */
export interface RawFileResidency {
  /** Pages of the range in the page cache. */
  cached: number;
  /** Pages in the range (rounded up). */
  total: number;
  /** cachestat only; undefined on the mincore path. */
  dirty?: number;
  writeback?: number;
  evicted?: number;
  recentlyEvicted?: number;
  /** Which mechanism produced the numbers. */
  source: 'cachestat' | 'mincore';
  /** Per-page vector (bit 0 = resident), only when requested and on the mincore path. */
  pages?: Uint8Array;
}

/** What BackendMapping.pageFlags() returns. */
export interface RawPageFlags {
  runs: Float64Array;
  known: number;
  source: 'pagemap-scan' | 'pagemap' | 'simulator';
}

/** A write tracker over one mapping (BackendMapping.trackWrites()). */
export interface BackendWriteTracker {
  readonly closed: boolean;
  /**
   * Runs of pages of [offset, offset + length) written since the tracker started or
   * was last reset: [offset, length, ...]. Every page once the mapping moved or changed
   * length (resize) until reset(). ERR_MAPPING_CLOSED once the mapping is closed.
   */
  written(offset: number, length: number): Float64Array;
  /** Every page counts as clean again (re-protects the pages written; after a resize, tracks the new range). */
  reset(): void;
  /** Stop tracking and release what the tracker holds (the userfaultfd). Idempotent. */
  close(): void;
}

export interface BackendMapping {
  /** Length of the mapping in bytes (as requested, not rounded). */
  readonly length: number;
  /** True once close() ran. */
  readonly closed: boolean;
  /** Start address in this process while mapped (native only): finds it in /proc/self/smaps. */
  readonly address?: bigint;
  /**
   * A Uint8Array over [offset, offset + length) of the mapping. offset is any
   * byte offset (not necessarily aligned); length <= backend.maxViewLength.
   * The backend tracks the memory of every view it hands out and detaches it
   * on close() and resize(), so every view then has length 0.
   */
  view(offset: number, length: number): Uint8Array;
  /**
   * Detach one view returned by view() (its length becomes 0) without
   * unmapping anything; the memory stays reachable through other views.
   * Returns false if the view is not a live view of this mapping.
   */
  detachView(view: Uint8Array): boolean;
  /**
   * A view the backend itself does not keep reachable, so its buffer can be collected
   * while the mapping lives (the volatile arena learns from that collection when Node is
   * done with it). Absent: view() already is such a view (native: weak references only).
   */
  lendView?(offset: number, length: number): Uint8Array;
  /** madvise(2). */
  advise(offset: number, length: number, advice: number): void;
  /**
   * The same advice over several ranges, `runs` = [offset, length, offset, length, ...]
   * (each page-aligned and inside the mapping): process_madvise(2) with one iovec per
   * range on the calling process, falling back to one madvise per range where the
   * kernel refuses. Runs of length 0 are skipped. A kernel error carries `runsAdvised`:
   * the runs before it (in order) were advised, the run at that index was not (fully).
   */
  adviseRuns(runs: Float64Array, advice: number): void;
  /**
   * Page flags of [offset, offset + length): PAGEMAP_SCAN (Linux 6.7+), or the
   * /proc/self/pagemap entries when the kernel lacks it or `entriesOnly`.
   * `runs` = [offset, length, categories, ...] with the kernel's PAGE_IS_* bits
   * (lib/page-flags.ts), adjacent runs with equal bits merged; `known` = the bits
   * the source can report (a bit outside it says nothing).
   */
  pageFlags(offset: number, length: number, entriesOnly: boolean): RawPageFlags;
  /**
   * Start tracking writes to the whole mapping (userfaultfd in asynchronous
   * write-protect mode on the native backend): every page counts as clean from now.
   */
  trackWrites(): BackendWriteTracker;
  /** mincore(2): one byte per page of [offset, offset + length), bit 0 = resident. */
  residency(offset: number, length: number): Uint8Array;
  /**
   * Optional fast path of residency(): the vector goes into `out` (at least one
   * byte per page; the caller's own array, so nothing is allocated per call).
   */
  residencyInto?(offset: number, length: number, out: Uint8Array): void;
  /**
   * Optional fast path of residency() for at most RESIDENCY_BITS pages: bit i of the
   * result (an unsigned 32-bit integer) is bit 0 of page i. ERR_OUT_OF_RANGE for longer ranges.
   */
  residencyBits?(offset: number, length: number): number;
  /**
   * Optional fast paths of advise() and residencyBits() taking their numbers from
   * Backend.callArgs ([offset, length, advice] / [offset, length]), filled just before
   * the call: no argument crosses into the addon (bench/call-overhead.mjs).
   */
  adviseArgs?(): void;
  residencyBitsArgs?(): number;
  /** mprotect(2). */
  protect(offset: number, length: number, protection: number): void;
  /** mlock2(2) (MLOCK_ONFAULT when onFault) off the event loop. */
  lock(offset: number, length: number, onFault: boolean): Promise<void>;
  /** munlock(2). */
  unlock(offset: number, length: number): void;
  /** MADV_POPULATE_READ / _WRITE off the event loop. */
  populate(offset: number, length: number, write: boolean): Promise<void>;
  /** msync(MS_SYNC [| MS_INVALIDATE]) off the event loop. */
  flush(offset: number, length: number, invalidate: boolean): Promise<void>;
  /** msync(MS_SYNC [| MS_INVALIDATE]) on the calling thread. */
  flushSync(offset: number, length: number, invalidate: boolean): void;
  /** mremap(2) with MREMAP_MAYMOVE; detaches every view handed out so far. */
  resize(newLength: number): void;
  // Copies that never fault (lib/safe-copy.ts). Unlike the calls above, offsets are any
  // byte offset; offset + length <= length (checked again by the backend). They return
  // the bytes copied: fewer than asked where a page cannot be reached (past the end of
  // a truncated file, PROT_NONE, a guard page, a write the protection forbids).
  /** process_vm_readv(2) into target[0, length) on the calling thread. */
  readInto(offset: number, length: number, target: Uint8Array): number;
  /** The same off the event loop. Only ever given a buffer no JavaScript can reach (lib/safe-copy.ts). */
  readIntoAsync(offset: number, length: number, target: Uint8Array): Promise<number>;
  /** process_vm_writev(2) of all of source at offset, on the calling thread. */
  writeFrom(offset: number, source: Uint8Array): number;
  /** The same off the event loop. */
  writeFromAsync(offset: number, source: Uint8Array): Promise<number>;
  /**
   * Detach every view whose bytes reach past `offset` (page-aligned: where a file that
   * shrank now ends); views wholly before it stay. Returns how many were detached (the
   * simulator counts extents: views on one extent share fate).
   */
  detachViewsPast(offset: number): number;
  /**
   * Detach every view and unmap. Idempotent. If async work (populate, flush,
   * lock) is in flight, the address range stays mapped until that work ends,
   * and work not yet finished settles (resolves if it completed, otherwise
   * rejects with ERR_MAPPING_CLOSED); JavaScript can no longer reach the memory.
   */
  close(): void;
}

export interface Backend {
  readonly kind: 'native' | 'simulator';
  readonly pageSize: number;
  /** Largest ArrayBuffer view this engine can hold. */
  readonly maxViewLength: number;
  /**
   * Where BackendMapping.adviseArgs() / residencyBitsArgs() read their numbers (never handed to
   * users); undefined where the backend takes its numbers as arguments (the simulator).
   */
  readonly callArgs: Float64Array | undefined;
  /** madvise(NULL, 0, advice) === 0. */
  supports(advice: number): boolean;
  map(request: MapRequest): BackendMapping;
  /** cachestat(2) when the kernel has it (and pages are not wanted), else mmap + mincore. */
  fileResidency(fd: number, offset: number, length: number, wantPages: boolean): RawFileResidency;
  /** posix_fadvise(2) (POSIX_FADV_DONTNEED = 4, WILLNEED = 3, ...). */
  fadvise(fd: number, offset: number, length: number, advice: number): void;
  /** O_ACCMODE of an open descriptor. */
  accessMode(fd: number): 'read' | 'write' | 'read-write';
  /** Whether anonymous mappings can be named (PR_SET_VMA_ANON_NAME; probed once). */
  supportsMappingNames(): boolean;
  /** Name an anonymous mapping ([anon:<name>] in /proc/self/maps); false when the kernel cannot. Never throws. */
  nameMapping(region: BackendMapping, name: string): boolean;
  /**
   * memfd_create(2) of `size` bytes sealed with F_SEAL_SHRINK | F_SEAL_SEAL (and F_SEAL_GROW
   * when sealGrow); returns the descriptor (close-on-exec), which the caller owns.
   */
  createMemfd(name: string, size: number, sealGrow: boolean): number;
  /** fcntl(F_GET_SEALS) bits, or -1 for a file that cannot carry seals. */
  seals(fd: number): number;
}

/** Most pages BackendMapping.residencyBits() answers for (one bit each in an unsigned 32-bit integer; native/mincore.cc kResidencyBits). */
export const RESIDENCY_BITS = 32;
