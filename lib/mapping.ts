// Mapping: one mmap'd region and everything pagewise can do to it. Validates and
// rounds every range, then calls the backend (native addon or simulator).
import { ADVICE, ADVICE_NAMES, type Advice, type AdviceConstant, type AdviceInfo, adviceFromName } from './advice';
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
  outOfRange,
  pagewiseError,
} from './errors';
import { whenViewReleased } from './view-release';
import * as validate from './validate';
import { RANGE_KEYS, type Range, validateBoolean, validateInteger, validateObject, validateOneOf, validateRange } from './validate';
import * as safeCopy from './safe-copy';
import { TruncationWatch } from './truncation-watch';
import { mappingChanged } from './memory-usage';

export type Protection = 'none' | 'read' | 'read-write' | 'read-exec' | 'read-write-exec';

export const PROTECTION: Readonly<Record<Protection, number>> = Object.freeze({
  none: PROT.NONE,
  read: PROT.READ,
  'read-write': PROT.READ | PROT.WRITE,
  'read-exec': PROT.READ | PROT.EXEC,
  'read-write-exec': PROT.READ | PROT.WRITE | PROT.EXEC,
});
export const PROTECTION_NAMES = Object.freeze(Object.keys(PROTECTION) as Protection[]);

/** The bytes an operation actually covered, relative to the start of the mapping. */
export interface AdvisedRange {
  offset: number;
  length: number;
}

export interface Residency {
  /** One byte per page covered (bit 0 set = resident). */
  pages: Uint8Array;
  /** Pages resident. */
  resident: number;
  /** Pages covered. */
  total: number;
  /** Offset of the first covered page, relative to the mapping (a multiple of the page size, or negative for a file mapped at an unaligned offset). */
  offset: number;
}

export interface PopulateOptions extends Range {
  /** 'read' (MADV_POPULATE_READ) or 'write' (MADV_POPULATE_WRITE). Default: 'write' for writable anonymous memory, 'read' otherwise. */
  mode?: 'read' | 'write';
}
export interface FlushOptions extends Range {
  /** Add MS_INVALIDATE. */
  invalidate?: boolean;
}
export interface LockOptions extends Range {
  /** mlock2(MLOCK_ONFAULT): lock pages as they are touched instead of faulting them all in now. */
  onFault?: boolean;
}

/** Residency vectors up to this many pages are copied out of the scratch vector into an on-heap typed array (V8's limit is 64 bytes). */
const SMALL_VECTOR = 64;

const POPULATE_KEYS = Object.freeze(['offset', 'length', 'mode']);
const FLUSH_KEYS = Object.freeze(['offset', 'length', 'invalidate']);
const LOCK_KEYS = Object.freeze(['offset', 'length', 'onFault']);

/** Passed by Pagewise to the constructor so users cannot make a Mapping over arbitrary memory. */
export const CREATE = Symbol('pagewise.createMapping');
/** Internal: starts the truncation watch of a file mapping (mapFile { watch: true }, lib/truncation-watch.ts). */
export const WATCH = Symbol('pagewise.watchTruncation');
/** The volatile arena's view: one the backend does not keep reachable (BackendMapping.lendView). */
export const LEND_VIEW = Symbol('pagewise.lendView');

export interface MappingInit {
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

/** What the library knows about a kernel error of madvise with this advice on this mapping. */
function adviceHint(meta: AdviceInfo, code: string, kind: 'anonymous' | 'file', shared: boolean): string | undefined {
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
  #lastAdvice: unknown = undefined;
  #lastAdviceInfo: AdviceInfo = ADVICE.normal;

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
        this.#region.advise(start, end - start, meta.value);
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
   * The same advice over several ranges in one call: process_madvise(2) with one
   * iovec per range on the native backend (one TLB flush for the batch; one
   * madvise per range where the kernel refuses it). Each range is rounded as by
   * advise(). Returns the bytes advised per range.
   */
  adviseRanges(advice: Advice | AdviceConstant, ranges: readonly (Range & object)[]): AdvisedRange[] {
    Mapping.#open(this, 'advise');
    const meta = ADVICE_BY_NAME.get(advice) ?? adviceFromName(advice);
    if (!Array.isArray(ranges)) throw invalidArgType('ranges', 'an instance of Array', ranges);
    const runs = new Float64Array(2 * ranges.length);
    const advised: AdvisedRange[] = [];
    for (let i = 0; i < ranges.length; i++) {
      const [start, end] = meta.destructive ? this.#inward(ranges[i]) : this.#outward(ranges[i]);
      runs[2 * i] = start;
      runs[2 * i + 1] = Math.max(0, end - start);
      advised.push({ offset: start - this.#delta, length: Math.max(0, end - start) });
    }
    try {
      if (this.#region.adviseRuns !== undefined) this.#region.adviseRuns(runs, meta.value);
      else for (let i = 0; i < runs.length; i += 2) if (runs[i + 1] > 0) this.#region.advise(runs[i], runs[i + 1], meta.value);
    } catch (err) {
      throw kernelError(err, (code) => adviceHint(meta, code, this.kind, this.shared), meta.constant);
    }
    return advised;
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
        bits = region.residencyBits(start, end - start);
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

// Rounding of a validated range [offset, offset + length) of a mapping of `size` bytes whose
// byte 0 is `delta` bytes into its region, to region bytes on page boundaries. Start and end
// are separate functions so that the per-call paths need no array.

/** Outward: the page holding the first byte. */
function outwardStart(delta: number, offset: number, page: number): number {
  return roundDown(delta + offset, page);
}

/** Outward: past the page holding the last byte (`start` when the range is empty). */
function outwardEnd(delta: number, offset: number, length: number, page: number, start: number): number {
  return length === 0 ? start : roundUp(delta + offset + length, page);
}

/** Inward: the first page boundary at or after the first byte. */
function inwardStart(delta: number, offset: number, page: number): number {
  return roundUp(delta + offset, page);
}

/** Inward: the last page boundary at or before the end, or the end of the tail page when the range reaches the end of the mapping; never before `start`. */
function inwardEnd(delta: number, offset: number, length: number, size: number, page: number, start: number): number {
  const rawEnd = delta + offset + length;
  const end = length > 0 && offset + length === size ? roundUp(rawEnd, page) : roundDown(rawEnd, page);
  return end > start ? end : start;
}

/**
 * Where small residency vectors are written before being copied out: module-private,
 * so no user code can transfer or detach it (the addon also re-reads its length at
 * every call). 4096 pages = 16 MiB of mapping.
 */
const RESIDENCY_SCRATCH = new Uint8Array(4096);
/** Largest residency vector: the largest typed array Node 20 can hold. */
const MAX_RESIDENCY_PAGES = 2 ** 32;

/** A coded RangeError when a residency vector of `count` pages (for `bytes` bytes) cannot exist. */
export function checkResidencyVector(count: number, bytes: number, page: number): void {
  if (count > MAX_RESIDENCY_PAGES) throw outOfRange('range.length', residencyLimit(page), bytes);
}

function residencyLimit(page: number): string {
  return `a range of at most ${MAX_RESIDENCY_PAGES * page} bytes (its residency vector, one byte per page, must fit in an ArrayBuffer): query larger ranges in parts`;
}

/** A zeroed vector of `count` pages, or a coded RangeError when it cannot exist. */
function residencyVector(count: number, bytes: number, page: number): Uint8Array {
  checkResidencyVector(count, bytes, page);
  try {
    return new Uint8Array(count);
  } catch {
    throw outOfRange('range.length', `${residencyLimit(page)}; ${count} bytes could not be allocated`, bytes);
  }
}

export function roundUp(n: number, page: number): number {
  return Math.ceil(n / page) * page;
}

export function roundDown(n: number, page: number): number {
  return Math.floor(n / page) * page;
}
