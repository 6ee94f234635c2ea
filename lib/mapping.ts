// Mapping: one mmap'd region and everything pagewise can do to it. Validates and
// rounds every range, then calls the backend (native addon or simulator).
// Over 600 lines: one class holds every public method of a mapping, and the
// per-call paths read its private fields directly; the parts that can live apart
// do (mapping-options.ts, residency-vector.ts, safe-copy.ts, truncation-watch.ts,
// page-flags.ts, view-release.ts).
import { ADVICE, ADVICE_NAMES, type Advice, type AdviceConstant, type AdviceInfo, adviceFromName, adviceHint } from './advice';
import * as backend from './backend';
import type { Backend, BackendMapping } from './backend';
import { PROT } from './constants';
import {
  type ErrnoError,
  errnoError,
  illegalConstructor,
  invalidArgType,
  invalidArgValue,
  invalidThis,
  kernelError,
  mappingClosed,
  pagewiseError,
} from './errors';
import { whenViewReleased } from './view-release';
import * as validate from './validate';
import { RANGE_KEYS, type Range, validateBoolean, validateInteger, validateObject, validateOneOf, validateRange } from './validate';
import * as safeCopy from './safe-copy';
import { TruncationWatch } from './truncation-watch';
import { mappingChanged } from './memory-usage';
import { inwardEnd, inwardStart, outwardEnd, outwardStart, roundDown, roundUp } from './pages';
import { checkResidencyVector, residencyVector } from './residency-vector';
import {
  type AdvisedRange,
  FLUSH_KEYS,
  type FlushOptions,
  LOCK_KEYS,
  PAGE_FLAGS_KEYS,
  type PageFlagsOptions,
  type LockOptions,
  POPULATE_KEYS,
  type PopulateOptions,
  PROTECTION,
  PROTECTION_NAMES,
  type Protection,
  type Residency,
} from './mapping-options';

export { PROTECTION, PROTECTION_NAMES } from './mapping-options';
export type { AdvisedRange, FlushOptions, LockOptions, PageFlagsOptions, PopulateOptions, Protection, Residency } from './mapping-options';
export { checkResidencyVector } from './residency-vector';
import { PAGE_CATEGORY, type PageFlagsReport, WriteTracker, pageFlagsError, pageFlagsReport, writeTrackingError } from './page-flags';

/** Residency vectors up to this many pages are copied out of the scratch vector into an on-heap typed array (V8's limit is 64 bytes). */
const SMALL_VECTOR = 64;

/** Passed by Pagewise to the constructor so users cannot make a Mapping over arbitrary memory. */
export const CREATE = Symbol('pagewise.createMapping');
/** Internal: starts the truncation watch of a file mapping (mapFile { watch: true }, lib/truncation-watch.ts). */
export const WATCH = Symbol('pagewise.watchTruncation');
/** The volatile arena's view: one the backend does not keep reachable (BackendMapping.lendView). */
export const LEND_VIEW = Symbol('pagewise.lendView');

interface MappingInit {
  backend: Backend;
  region: BackendMapping;
  /** Bytes between the start of the region and the caller's offset 0 (unaligned file offsets). */
  delta: number;
  length: number;
  kind: 'anonymous' | 'file';
  shared: boolean;
  protection: Protection;
  /** The name the kernel accepted (map(length, { name })). */
  name?: string;
}

// The per-call validators as this module's own bindings: an imported name is read
// through the other module's exports object at every call, one more object (and,
// next to a syscall on this VM, one more cold page) per call (bench/call-overhead.mjs).
const rangeOffset = validate.rangeOffset;
const rangeLength = validate.rangeLength;
const RESIDENCY_BITS = backend.RESIDENCY_BITS;

/** Advice names to their table entries, for a lookup without a linear scan. */
const ADVICE_BY_NAME = new Map(Object.entries(ADVICE)) as Map<string, AdviceInfo>;

export class Mapping implements Disposable {
  readonly #backend: Backend;
  /** The backend's page size, kept here: the per-call paths then read only this object. */
  readonly #page: number;
  #region: BackendMapping;
  readonly #delta: number;
  #length: number;
  #buffer: Uint8Array | undefined;
  /** 'anonymous' or 'file'. */
  readonly kind: 'anonymous' | 'file';
  /** MAP_SHARED (true) or MAP_PRIVATE (false). */
  readonly shared: boolean;
  #protection: Protection;
  /** Mirrors the region's state without a call into the backend (the region checks again). */
  #closed = false;
  /** Shared anonymous memory lives in a shmem object of the size it was created with: resize() may not grow past it. */
  readonly #growLimit: number;
  /** The name given at map() time, if the kernel took it (PR_SET_VMA_ANON_NAME); else undefined. */
  readonly name: string | undefined;
  /** populate / lock / flush calls not yet settled: resize() must wait for them on every backend. */
  #inflight = 0;
  /**
   * The advice of the last advise() call and its table entry: loops advise with one advice,
   * and a comparison on this object touches nothing the call does not touch anyway (the
   * table lookup costs a builtin call and a hash table next to a syscall).
   */
  #lastAdvice: unknown = 'normal'; // a valid name: advise() with no advice must still be checked
  #lastAdviceInfo: AdviceInfo = ADVICE.normal;
  /** The backend's call arguments when the region takes its numbers from them (Backend.callArgs), else undefined. */
  readonly #args: Float64Array | undefined;

  constructor(token: typeof CREATE, init: MappingInit) {
    if (token !== CREATE) throw illegalConstructor('use map() or mapFile()');
    this.#backend = init.backend;
    this.#page = init.backend.pageSize;
    this.#region = init.region;
    this.#delta = init.delta;
    this.#length = init.length;
    this.kind = init.kind;
    this.shared = init.shared;
    this.#protection = init.protection;
    this.#growLimit = init.shared ? roundUp(init.delta + init.length, init.backend.pageSize) : Number.POSITIVE_INFINITY;
    this.name = init.name;
    const args = init.backend.callArgs;
    this.#args = args !== undefined && init.region.adviseArgs !== undefined && init.region.residencyBitsArgs !== undefined ? args : undefined;
  }

  /**
   * Address of byte 0 in this process (native backend), e.g. to find the mapping in
   * /proc/self/maps; undefined on the simulator and once closed. It changes on resize().
   */
  get address(): bigint | undefined {
    const self = Mapping.#self(this);
    const start = self.#closed ? undefined : self.#region.address;
    return start === undefined ? undefined : start + BigInt(self.#delta);
  }

  /** Bytes mapped (what the caller asked for; the kernel works in whole pages). */
  get length(): number {
    return Mapping.#self(this).#length;
  }

  get closed(): boolean {
    return Mapping.#self(this).#closed;
  }

  /** Protection last set by map() or protect() on the whole mapping. */
  get protection(): Protection {
    return Mapping.#self(this).#protection;
  }

  get pageSize(): number {
    return Mapping.#self(this).#backend.pageSize;
  }

  /**
   * The whole mapping as a Uint8Array. Detached (length 0) by close() and resize().
   * Mappings larger than the engine's ArrayBuffer limit have no single buffer: use view().
   */
  get buffer(): Uint8Array {
    Mapping.#open(this, 'access the buffer');
    if (this.#buffer === undefined || this.#buffer.byteLength !== this.#length) {
      if (this.#length > this.#backend.maxViewLength) {
        throw pagewiseError(
          'ERR_MAPPING_TOO_LARGE',
          `The mapping (${this.#length} bytes) is larger than the largest ArrayBuffer this engine can hold ` +
            `(${this.#backend.maxViewLength} bytes): use mapping.view(offset, length)`,
        );
      }
      this.#buffer = this.#region.view(this.#delta, this.#length);
    }
    return this.#buffer;
  }

  /** A Uint8Array over [offset, offset + length) — a view into mappings of any size. */
  view(offset = 0, length?: number): Uint8Array {
    Mapping.#open(this, 'create a view');
    validateInteger('offset', offset, 0, this.#length);
    const room = Math.min(this.#length - offset, this.#backend.maxViewLength);
    const len = length === undefined ? room : validateInteger('length', length, 0, room);
    return this.#region.view(this.#delta + offset, len);
  }

  /** @internal A view whose buffer only its holders keep reachable (offset and length already checked). */
  [LEND_VIEW](offset: number, length: number): Uint8Array {
    Mapping.#open(this, 'create a view');
    const r = this.#region;
    return r.lendView !== undefined ? r.lendView(this.#delta + offset, length) : r.view(this.#delta + offset, length);
  }

  /**
   * Detach a view made by view() or buffer: every Uint8Array over it then has
   * length 0, so code holding it can no longer see this memory. Nothing is unmapped.
   */
  detachView(view: Uint8Array): void {
    Mapping.#open(this, 'detach a view');
    if (!(view instanceof Uint8Array)) throw invalidArgType('view', 'an instance of Uint8Array', view);
    if (!this.#region.detachView(view)) throw invalidArgValue('view', view, 'is not a live view of this mapping');
    if (view === this.#buffer) this.#buffer = undefined;
  }

  /**
   * Resolves once the ArrayBuffer behind `view` is garbage-collected: from then on no
   * JavaScript and no Node async work (zlib, crypto, fs) can reach its memory, even
   * after detachView() or close(). See lib/view-release.ts.
   */
  whenViewReleased(view: Uint8Array): Promise<void> {
    Mapping.#self(this);
    return whenViewReleased(view);
  }

  /**
   * madvise(2). Destructive advice (see ADVICE[advice].destructive) rounds the range
   * inward to whole pages, so no byte outside it is touched; the rest rounds outward.
   * A range that ends at the end of the mapping includes its last partial page.
   * Returns the bytes actually advised (length 0 if inward rounding left no page).
   */
  advise(advice: Advice | AdviceConstant, range?: Range & object): AdvisedRange {
    // Called in loops: the range stays in locals (no [start, end] arrays) and each field is read once.
    Mapping.#open(this, 'advise');
    let meta = this.#lastAdviceInfo;
    if (advice !== this.#lastAdvice) {
      meta = ADVICE_BY_NAME.get(advice) ?? adviceFromName(advice);
      this.#lastAdvice = advice;
      this.#lastAdviceInfo = meta;
    }
    const size = this.#length;
    const offset = rangeOffset(range, size);
    const length = rangeLength(range, offset, size);
    const delta = this.#delta;
    const page = this.#page;
    const start = meta.destructive ? inwardStart(delta, offset, page) : outwardStart(delta, offset, page);
    const end = meta.destructive ? inwardEnd(delta, offset, length, size, page, start) : outwardEnd(delta, offset, length, page, start);
    if (end > start) {
      try {
        const args = this.#args;
        if (args !== undefined) {
          // No JavaScript runs between these stores and the call that reads them.
          args[0] = start;
          args[1] = end - start;
          args[2] = meta.value;
          this.#region.adviseArgs!();
        } else {
          this.#region.advise(start, end - start, meta.value);
        }
      } catch (err) {
        throw this.#adviseError(err, meta);
      }
    }
    return { offset: start - delta, length: end - start };
  }

  #adviseError(err: unknown, meta: AdviceInfo): unknown {
    return kernelError(
      err,
      (code) =>
        // The kernel answers EINVAL both for bad ranges and for advice it does not know: say which.
        code === 'EINVAL' && !this.#backend.supports(meta.value)
          ? `${meta.constant} is not supported by this kernel`
          : adviceHint(meta, code, this.kind, this.shared),
      meta.constant,
    );
  }

  /**
   * The same advice over many ranges in one call: process_madvise(2) on this process with
   * one iovec per range (up to IOV_MAX ranges a call; one TLB flush per batch) on the native
   * backend, one madvise per range where the kernel refuses it. Each range is validated
   * (named `ranges[i]`) and rounded as by advise(), all before anything is advised.
   * Returns the bytes advised per range, in order. On a kernel error the error says how far
   * it got: `rangesAdvised` ranges (the first ones, in order) were advised, the next one failed.
   */
  adviseRanges(advice: Advice | AdviceConstant, ranges: readonly (Range & object)[]): AdvisedRange[] {
    Mapping.#open(this, 'advise');
    const meta = ADVICE_BY_NAME.get(advice) ?? adviceFromName(advice);
    if (!Array.isArray(ranges)) throw invalidArgType('ranges', 'an instance of Array', ranges);
    const n = ranges.length;
    const runs = new Float64Array(2 * n);
    const advised = new Array<AdvisedRange>(n);
    const delta = this.#delta;
    const size = this.#length;
    const page = this.#page;
    for (let i = 0; i < n; i++) {
      const range = ranges[i];
      let offset: number;
      let length: number;
      try {
        offset = rangeOffset(range, size);
        length = rangeLength(range, offset, size);
      } catch {
        // Check again under the range's own name (built only now: a string per range costs more than the check).
        validateRange(range, size, `ranges[${i}]`);
        throw new Error('unreachable');
      }
      const start = meta.destructive ? inwardStart(delta, offset, page) : outwardStart(delta, offset, page);
      const end = meta.destructive ? inwardEnd(delta, offset, length, size, page, start) : outwardEnd(delta, offset, length, page, start);
      runs[2 * i] = start;
      runs[2 * i + 1] = end - start;
      advised[i] = { offset: start - delta, length: end - start };
    }
    try {
      this.#region.adviseRuns(runs, meta.value);
    } catch (err) {
      const e = this.#adviseError(err, meta);
      const done = (err as { runsAdvised?: unknown } | null)?.runsAdvised;
      if (typeof done === 'number' && e !== null && typeof e === 'object') (e as { rangesAdvised?: number }).rangesAdvised = done;
      throw e;
    }
    return advised;
  }

  /**
   * What the kernel did to each page of the range (rounded outward to pages): runs of pages
   * with equal flags and pages per flag — present, swapped, file, zeroPage, huge, written
   * (only while a write tracker is open, which hides swapped), softDirty — as far as the
   * source can tell (`known`). PAGEMAP_SCAN (Linux 6.7+), else /proc/self/pagemap; ERR_NOT_SUPPORTED without either.
   */
  pageFlags(options?: PageFlagsOptions & object): PageFlagsReport {
    Mapping.#open(this, 'read page flags');
    const o = validateObject<PageFlagsOptions>('options', options, PAGE_FLAGS_KEYS);
    const source = o.source === undefined ? undefined : validateOneOf('options.source', o.source, ['pagemap-scan', 'pagemap'] as const);
    const [start, end] = this.#outward(o, 'options', PAGE_FLAGS_KEYS);
    let raw;
    try {
      raw = this.#region.pageFlags(start, end - start, source === 'pagemap');
    } catch (err) {
      throw pageFlagsError(err);
    }
    if (source === 'pagemap-scan' && raw.source === 'pagemap') throw pageFlagsError(undefined);
    // Outside a tracked mapping the kernel's written bit only says "not write-protected"; inside
    // one, the write-protect markers on untouched pages read as swap entries (docs/WRITE-TRACKING.md).
    const knownMask = this.#trackers.size > 0 ? ~PAGE_CATEGORY.swapped : ~PAGE_CATEGORY.written;
    return pageFlagsReport(raw, knownMask, this.#delta, this.#page);
  }

  #trackers = new Set<WriteTracker>();

  /**
   * Track which pages get written from now on (userfaultfd in asynchronous write-protect
   * mode, Linux 6.7+; docs/WRITE-TRACKING.md): tracker.written() lists them, tracker.reset()
   * starts a new round. JavaScript's writes proceed as before. Close it (or `using`).
   */
  trackWrites(): WriteTracker {
    Mapping.#open(this, 'track writes');
    if (this.#trackers.size > 0) {
      // The kernel takes one userfaultfd per range (EBUSY); one tracker can serve any number of readers.
      throw pagewiseError('ERR_MAPPING_BUSY', 'A write tracker is already open on this mapping: close it first');
    }
    let backend;
    try {
      backend = this.#region.trackWrites();
    } catch (err) {
      throw writeTrackingError(err, this.kind, this.shared);
    }
    const tracker = new WriteTracker(
      backend,
      (range) => {
        Mapping.#open(this, 'read written pages');
        return [...this.#outward(range), this.#delta];
      },
      (t) => this.#trackers.delete(t),
      this.kind,
      this.shared,
    );
    this.#trackers.add(tracker);
    return tracker;
  }

  /** mincore(2) over the pages covering the range. Ranges whose vector (one byte per page) exceeds 2^32 bytes throw ERR_OUT_OF_RANGE: query them in parts. */
  residency(range?: Range & object): Residency {
    Mapping.#open(this, 'read residency');
    const size = this.#length;
    const offset = rangeOffset(range, size);
    const length = rangeLength(range, offset, size);
    const delta = this.#delta;
    const page = this.#page;
    const start = outwardStart(delta, offset, page);
    const end = outwardEnd(delta, offset, length, page, start);
    const count = (end - start) / page;
    const region = this.#region;
    if (count <= RESIDENCY_BITS && region.residencyBits !== undefined) {
      // Small ranges (called in loops): the backend answers with a number, one bit per page,
      // so no vector crosses into the addon and none is copied.
      let bits: number;
      try {
        const args = this.#args;
        if (args !== undefined) {
          args[0] = start;
          args[1] = end - start;
          bits = region.residencyBitsArgs!();
        } else {
          bits = region.residencyBits(start, end - start);
        }
      } catch (err) {
        throw kernelError(err);
      }
      const pages = new Uint8Array(count);
      let resident = 0;
      for (let i = 0; i < count; i++) resident += pages[i] = (bits >>> i) & 1;
      return { pages, resident, total: count, offset: start - delta };
    }
    return this.#residencyVector(region, start, end, count, page, delta);
  }

  /** residency() of more pages than fit in residencyBits (kept apart so that the small-range path stays small enough for V8 to inline into a caller's loop). */
  #residencyVector(region: BackendMapping, start: number, end: number, count: number, page: number, delta: number): Residency {
    checkResidencyVector(count, end - start, page);
    let pages: Uint8Array;
    let resident = 0;
    try {
      if (region.residencyInto !== undefined) {
        if (count <= SMALL_VECTOR) {
          // Small vectors: V8 keeps a typed array this small on its own heap, so copying
          // element by element (and counting on the way) costs far less than slice(),
          // which allocates an ArrayBuffer backing store.
          region.residencyInto(start, end - start, RESIDENCY_SCRATCH);
          pages = new Uint8Array(count);
          for (let i = 0; i < count; i++) resident += pages[i] = RESIDENCY_SCRATCH[i] & 1;
          return { pages, resident, total: count, offset: start - delta };
        }
        if (count <= RESIDENCY_SCRATCH.length) {
          region.residencyInto(start, end - start, RESIDENCY_SCRATCH);
          pages = RESIDENCY_SCRATCH.slice(0, count);
        } else {
          pages = residencyVector(count, end - start, page);
          region.residencyInto(start, end - start, pages);
        }
      } else {
        pages = region.residency(start, end - start);
      }
    } catch (err) {
      throw kernelError(err);
    }
    for (let i = 0; i < pages.length; i++) resident += pages[i] & 1;
    return { pages, resident, total: pages.length, offset: start - delta };
  }

  /** Prefault the range off the event loop (MADV_POPULATE_READ / _WRITE). Past the end of a truncated file it rejects with EFAULT instead of raising SIGBUS. */
  async populate(options?: PopulateOptions & object): Promise<void> {
    Mapping.#open(this, 'populate');
    const o = validateObject<PopulateOptions>('options', options, POPULATE_KEYS);
    const writableAnon = this.kind === 'anonymous' && (PROTECTION[this.#protection] & PROT.WRITE) !== 0;
    const mode = o.mode === undefined ? (writableAnon ? 'write' : 'read') : validateOneOf('options.mode', o.mode, ['read', 'write'] as const);
    const [start, end] = this.#outward(o, 'options', POPULATE_KEYS);
    const fileMapping = this.kind === 'file';
    await this.#async('populate', this.#region.populate(start, end - start, mode === 'write'), (code) =>
      code === 'EFAULT' && fileMapping
        ? 'the file is shorter than the mapping (truncated?): pages past its end cannot be populated'
        : undefined,
    );
  }

  /** msync(MS_SYNC) off the event loop: writes of a shared file mapping reach the file. */
  async flush(options?: FlushOptions & object): Promise<void> {
    Mapping.#open(this, 'flush');
    const o = validateObject<FlushOptions>('options', options, FLUSH_KEYS);
    const invalidate = o.invalidate === undefined ? false : validateBoolean('options.invalidate', o.invalidate);
    const [start, end] = this.#outward(o, 'options', FLUSH_KEYS);
    await this.#async('flush', this.#region.flush(start, end - start, invalidate));
  }

  /** msync(MS_SYNC) on the calling thread. */
  flushSync(options?: FlushOptions & object): void {
    Mapping.#open(this, 'flush');
    const o = validateObject<FlushOptions>('options', options, FLUSH_KEYS);
    const invalidate = o.invalidate === undefined ? false : validateBoolean('options.invalidate', o.invalidate);
    const [start, end] = this.#outward(o, 'options', FLUSH_KEYS);
    try {
      this.#region.flushSync(start, end - start, invalidate);
    } catch (err) {
      throw kernelError(err);
    }
  }

  /**
   * mprotect(2). The range must start on a page boundary and end on one (or at the
   * end of the mapping): rounding either way would change the protection of bytes
   * the caller did not name. A JavaScript access that the new protection forbids
   * raises SIGSEGV and ends the process — no library can catch that.
   */
  protect(protection: Protection, range?: Range & object): void {
    Mapping.#open(this, 'protect');
    const prot = validateOneOf('protection', protection, PROTECTION_NAMES);
    const [offset, length] = validateRange(range, this.#length);
    const page = this.#backend.pageSize;
    // The bytes before offset 0 of a file mapped at an unaligned offset are not the
    // caller's, so a range from 0 may start at the page boundary below it.
    const start = offset === 0 ? roundDown(this.#delta, page) : this.#delta + offset;
    const endsAtEnd = offset + length === this.#length;
    const end = endsAtEnd ? roundUp(this.#delta + offset + length, page) : this.#delta + offset + length;
    if (start % page !== 0 || end % page !== 0) {
      throw invalidArgValue('range', range, `must start and end on page boundaries (page size ${page}) for protect()`);
    }
    if (end > start) {
      try {
        this.#region.protect(start, end - start, PROTECTION[prot]);
      } catch (err) {
        throw kernelError(err);
      }
    }
    if (offset === 0 && endsAtEnd) this.#protection = prot;
  }

  /**
   * mlock2(2) off the event loop; with onFault, pages are locked as they are touched.
   * On a private (copy-on-write) file mapping this locks the file's page-cache pages
   * (MLOCK_ONFAULT + MADV_POPULATE_READ) rather than private copies of them.
   */
  async lock(options?: LockOptions & object): Promise<void> {
    Mapping.#open(this, 'lock');
    const o = validateObject<LockOptions>('options', options, LOCK_KEYS);
    const onFault = o.onFault === undefined ? false : validateBoolean('options.onFault', o.onFault);
    const [start, end] = this.#outward(o, 'options', LOCK_KEYS);
    if (!onFault && this.kind === 'file' && !this.shared && (PROTECTION[this.#protection] & PROT.WRITE) !== 0) {
      // mlock faults a writable private mapping in for writing, which would copy every
      // page of the file into anonymous memory. Lock on fault and populate for reading
      // instead: the page-cache pages themselves get mapped and locked.
      await this.#async('lock', this.#region.lock(start, end - start, true));
      try {
        await this.#async('lock', this.#region.populate(start, end - start, false));
      } catch (err) {
        // The populate step is how this lock faults pages in: report its failure
        // (a guard page, PROT_NONE, past the end of the file) as mlock(2) would.
        const code = (err as ErrnoError).code;
        if (code === 'EFAULT' || code === 'EINVAL') throw errnoError('ENOMEM', 'mlock2');
        throw err;
      }
      return;
    }
    await this.#async('lock', this.#region.lock(start, end - start, onFault));
  }

  /** munlock(2). */
  unlock(range?: Range & object): void {
    Mapping.#open(this, 'unlock');
    const [start, end] = this.#outward(range);
    try {
      this.#region.unlock(start, end - start);
    } catch (err) {
      throw kernelError(err);
    }
  }

  /**
   * mremap(2): grow or shrink an anonymous mapping (contents kept up to the shorter
   * length; the mapping may move). Every view handed out so far is detached.
   */
  resize(length: number): void {
    Mapping.#open(this, 'resize');
    validateInteger('length', length, 1);
    if (this.#inflight > 0) {
      // The async work runs over the current range; mremap would move or cut it under that work.
      throw pagewiseError('ERR_MAPPING_BUSY', 'Cannot resize: populate(), lock() or flush() is still in flight (await it first)');
    }
    if (this.kind !== 'anonymous') {
      throw pagewiseError('ERR_OPERATION_NOT_SUPPORTED', 'resize() is for anonymous mappings: close a file mapping and map it again');
    }
    if (roundUp(length, this.#backend.pageSize) > this.#growLimit) {
      // mremap would succeed, but the pages past the shmem object raise SIGBUS on access.
      throw pagewiseError(
        'ERR_OPERATION_NOT_SUPPORTED',
        `resize() cannot grow a shared anonymous mapping past the ${this.#growLimit} bytes it was created with ` +
          '(its shared memory object keeps that size): map a new one',
      );
    }
    try {
      this.#region.resize(length);
    } catch (err) {
      throw kernelError(err);
    }
    this.#length = length;
    this.#buffer = undefined;
    mappingChanged(this);
  }

  /**
   * Let go of the file and the physical memory at once; old views stay attached and read
   * zeros until they are collected (docs/RELIABILITY.md, "What close() guarantees").
   * Idempotent. Async work in flight settles: it resolves if it had finished, else rejects
   * with ERR_MAPPING_CLOSED.
   */
  close(): void {
    Mapping.#self(this);
    this.#closed = true;
    this.#truncation?.close();
    for (const tracker of this.#trackers) tracker.close();
    this.#region.close();
    this.#buffer = undefined;
    mappingChanged(this);
  }

  // ---- copies that never fault (issue 14; lib/safe-copy.ts) ----------------

  /**
   * Copy [offset, offset + length) out of the mapping into `target` (default: a new
   * Buffer) and return the bytes (a view of target). Unlike reading mapping.buffer, this
   * cannot raise SIGBUS or SIGSEGV: where a page cannot be read (the file was truncated
   * under the mapping, PROT_NONE, a guard page) it throws EFAULT with `bytesRead`, the
   * bytes copied before it. Runs on the calling thread.
   */
  readSync(offset: number, length: number, target?: Uint8Array): Uint8Array {
    Mapping.#open(this, 'read');
    const [start, len, into] = safeCopy.readArgs(offset, length, target, this.#length);
    return safeCopy.readSync(this.#region, this.#delta + start, len, into);
  }

  /**
   * readSync() as a Promise: copies of 1 MiB or more run on the threadpool (through a
   * private buffer, copied into `target` when done), smaller ones on the calling thread.
   */
  async read(offset: number, length: number, target?: Uint8Array): Promise<Uint8Array> {
    Mapping.#open(this, 'read');
    const [start, len, into] = safeCopy.readArgs(offset, length, target, this.#length);
    this.#inflight++; // resize() refuses meanwhile, as for populate()
    try {
      return await safeCopy.read(this.#region, this.#delta + start, len, into);
    } finally {
      this.#inflight--;
    }
  }

  /**
   * Copy all of `source` into the mapping at `offset`; returns the bytes written. Where a
   * page cannot be written (past the end of a truncated file, a protection without write,
   * a guard page) it throws EFAULT with `bytesWritten` instead of a signal.
   */
  writeSync(offset: number, source: Uint8Array): number {
    Mapping.#open(this, 'write');
    const [start, src] = safeCopy.writeArgs(offset, source, this.#length);
    return safeCopy.writeSync(this.#region, this.#delta + start, src);
  }

  /** writeSync() as a Promise: 1 MiB or more on the threadpool, from a private copy of `source` taken at the call. */
  async write(offset: number, source: Uint8Array): Promise<number> {
    Mapping.#open(this, 'write');
    const [start, src] = safeCopy.writeArgs(offset, source, this.#length);
    this.#inflight++;
    try {
      return await safeCopy.write(this.#region, this.#delta + start, src);
    } finally {
      this.#inflight--;
    }
  }

  // ---- noticing that the file shrank (issue 14; lib/truncation-watch.ts) ----

  #truncation: TruncationWatch | undefined;

  /**
   * For a file mapped with { watch: true }: emits 'truncate' when the file shrinks below
   * the end of the mapping, after detaching the views that reach past its new end.
   * Undefined otherwise. It narrows the SIGBUS window; it cannot close it.
   */
  get truncation(): TruncationWatch | undefined {
    return Mapping.#self(this).#truncation;
  }

  /** @internal fd: a descriptor of the file the watch owns; fileOffset: the file offset of the region's byte 0. */
  [WATCH](fd: number, fileOffset: number): void {
    const page = this.#backend.pageSize;
    this.#truncation = new TruncationWatch(fd, {
      shrunk: (size) => {
        // Pages from here on raise SIGBUS (the page holding the new end is still backed).
        const cut = Math.max(0, roundUp(size, page) - fileOffset);
        if (this.#closed || cut >= roundUp(this.#delta + this.#length, page)) return undefined;
        const detachedViews = this.#region.detachViewsPast(cut);
        if (this.#buffer !== undefined && this.#buffer.byteLength === 0) this.#buffer = undefined;
        const mappedBytes = Math.min(this.#length, Math.max(0, size - fileOffset - this.#delta));
        return { mappedBytes, detachedViews };
      },
    });
  }

  [Symbol.dispose](): void {
    Mapping.#self(this).close();
  }

  /** `this` must be a Mapping (Node's ERR_INVALID_THIS otherwise, e.g. a method called on another object). */
  static #self(m: unknown): Mapping {
    if (typeof m !== 'object' || m === null || !(#closed in m)) throw invalidThis('Mapping');
    return m as Mapping;
  }

  static #open(m: unknown, operation: string): void {
    if (Mapping.#self(m).#closed) throw mappingClosed(operation);
  }

  /** Await backend work, counted as in flight (resize() refuses meanwhile), with its errors as the public API reports them. */
  async #async(operation: string, work: Promise<void>, hint?: (code: string) => string | undefined): Promise<void> {
    this.#inflight++;
    try {
      await work;
    } catch (err) {
      if ((err as ErrnoError | undefined)?.code === 'ERR_MAPPING_CLOSED') throw mappingClosed(operation);
      throw kernelError(err, hint);
    } finally {
      this.#inflight--;
    }
  }

  /** [start, end) in region bytes, rounded outward to pages. */
  #outward(range: unknown, name = 'range', keys: readonly string[] = RANGE_KEYS): [number, number] {
    const [offset, length] = validateRange(range, this.#length, name, keys);
    const start = outwardStart(this.#delta, offset, this.#page);
    return [start, outwardEnd(this.#delta, offset, length, this.#page, start)];
  }

  /** [start, end) in region bytes, rounded inward to pages (the tail page counts when the range reaches the end). */
  #inward(range: unknown): [number, number] {
    const [offset, length] = validateRange(range, this.#length);
    const start = inwardStart(this.#delta, offset, this.#page);
    return [start, inwardEnd(this.#delta, offset, length, this.#length, this.#page, start)];
  }
}

/**
 * Where small residency vectors are written before being copied out: module-private,
 * so no user code can transfer or detach it (the addon also re-reads its length at
 * every call). 4096 pages = 16 MiB of mapping.
 */
const RESIDENCY_SCRATCH = new Uint8Array(4096);
