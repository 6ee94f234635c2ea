// SimMapping: one simulated mmap'd range — page and VMA state per page, the
// memory (lib/simulator/extents.ts), and what each operation does to them.
//
// Longer than ~600 lines on purpose: every method reads and writes the same per-page
// state arrays (state, attr, stamp, hash) under one set of invariants (a COW page has
// its own extent, a lazy-free page reads as zero once reclaimed, a locked page is never
// dropped), so the madvise, mprotect, mlock, msync and mremap models are kept side by
// side where those invariants can be checked in one reading. The parts without that
// state live beside it: copy.ts, extents.ts, page-cache.ts, advise-runs.ts, state.ts.
import * as fs from 'node:fs';
import type { BackendMapping, BackendWriteTracker, RawPageFlags } from '../backend';
import { KNOWN_MADVISE, MADV, PROT } from '../constants';
import { errnoError, mappingClosed } from '../errors';
import { adviseRuns as adviseRunsInOrder } from './advise-runs';
import { residencyBits as foldResidency } from './residency-bits';
import { SimWriteTracker, pageFlags as simPageFlags } from './page-flags';
import * as copy from './copy';
import { ExtentStore, ZERO_HASH } from './extents';
import { type FileCache as PageCacheOf, type SimFile as SimFileOf, evictFilePage, fileClean, fileMapped, rethrowFs } from './page-cache';
import {
  A_DONTCOPY, A_DONTDUMP, A_HUGE, A_LOCKED, A_MERGEABLE, A_NOHUGE, A_ONFAULT, A_PROT, A_RAND, A_SEQ, A_WIPE,
  HUGE_PAGES, PAGE, S_CLEAN, S_COW, S_DIRTY, S_GUARD, S_LAZY, S_PRESENT, S_UNMAPPED, S_ZERO, ZEROS, pagesOf,
} from './state';

type Work = () => void;

/** A file as the simulator's mappings hold it, and its page cache. */
export type SimFile = SimFileOf<SimMapping>;
export type FileCache = PageCacheOf<SimMapping>;

/**
 * What a mapping asks of the simulator backend that made it (SimulatorBackend; declared
 * here so that this module needs nothing from backend.ts).
 */
export interface SimulatorHost {
  /** Next value of the last-use clock. */
  tick(): number;
  /** A stamp older than any in use (for MADV_COLD / MADV_FREE). */
  coldStamp(): number;
  /** Make room for newPages more resident pages (reclaim), or throw the simulated OOM. */
  ensureRoom(newPages: number): void;
  /** After newPages were made resident. */
  afterWrites(newPages: number): void;
  readonly maxViewLength: number;
  readonly live: Set<SimMapping>;
}

export class SimMapping implements BackendMapping {
  length: number;
  closed = false;
  pages: number;
  readonly kindOf: 'anon' | 'shmem' | 'file';
  /**
   * shmem: pages of the shmem object (its size is fixed at mmap time). Pages a resize cut off
   * keep their contents and state there and come back when the mapping grows again; pages past
   * the object are like pages past EOF (SIGBUS on access, EFAULT for populate, ENOMEM for mlock).
   */
  readonly objectPages: number;
  private readonly shmemTail = new Map<number, { state: number; bytes: Uint8Array | undefined }>();
  /** The memory: disjoint page-aligned extents, each its own ArrayBuffer (lib/simulator/extents.ts). */
  store: ExtentStore;
  state: Uint8Array;
  attr: Uint16Array;
  /** Clean-content hash: file pages as last read / written back; lazy-free pages at FREE time. */
  hash: Uint32Array;
  stamp: Float64Array;

  constructor(
    readonly backend: SimulatorHost,
    length: number,
    protection: number,
    readonly shared: boolean,
    readonly file: SimFile | undefined,
  ) {
    this.kindOf = file ? 'file' : shared ? 'shmem' : 'anon';
    this.objectPages = pagesOf(length);
    this.length = length;
    this.pages = pagesOf(length);
    this.store = new ExtentStore(this.pages);
    this.state = new Uint8Array(this.pages);
    this.attr = new Uint16Array(this.pages).fill(protection & A_PROT);
    this.hash = new Uint32Array(this.pages);
    this.stamp = new Float64Array(this.pages);
    // JavaScript reads cannot be trapped, so file contents are read eagerly (into one extent).
    if (file) {
      try {
        this.store.materialise(0, this.pages);
      } catch {
        throw errnoError('ENOMEM', 'mmap');
      }
      for (let p = 0; p < this.pages; p++) this.loadFilePage(p);
    }
  }

  // ---- helpers ------------------------------------------------------------

  private check(operation: string): void {
    if (this.closed) throw mappingClosed(operation);
  }

  eofPages(): number {
    try {
      return pagesOf(fs.fstatSync(this.file!.fd).size);
    } catch {
      return 0;
    }
  }

  chargedPages(): number {
    let n = 0;
    for (let p = 0; p < this.pages; p++) if ((this.state[p] & (S_PRESENT | S_ZERO)) === S_PRESENT) n++;
    return n;
  }

  isDirty(p: number): boolean {
    return (this.state[p] & S_DIRTY) !== 0 || this.store.hash(p) !== this.hash[p];
  }

  lazyWritten(p: number): boolean {
    if (this.store.hash(p) === this.hash[p]) return false;
    // A write after FREE cancels the free for that page (and a write to the zero page
    // gave it a page of its own).
    this.state[p] &= ~(S_LAZY | S_ZERO);
    this.stamp[p] = this.backend.tick();
    return true;
  }

  /** Throw away a clean lazy-free page (reclaim / PAGEOUT). */
  discard(p: number): void {
    this.store.zero(p);
    this.state[p] &= S_GUARD;
  }

  /** Fill page p from the file's page cache: a shared mapping's unflushed data, else the file. */
  private loadFilePage(p: number): void {
    const file = this.file!;
    const fp = file.pageOffset + p;
    let done = false;
    for (const other of file.cache.mappings) {
      if (other === this || !other.shared || other.closed) continue;
      const q = fp - other.file!.pageOffset;
      if (q < 0 || q >= other.pages || !other.isDirty(q)) continue;
      this.store.set(p, other.store.page(q));
      done = true;
      break;
    }
    if (!done) {
      const into = this.store.pageForWrite(p);
      let got = 0;
      try {
        while (got < PAGE) {
          const n = fs.readSync(file.fd, into, got, PAGE - got, fp * PAGE + got);
          if (n <= 0) break;
          got += n;
        }
      } catch (err) {
        rethrowFs(err, 'read');
      }
      into.fill(0, got, PAGE);
    }
    this.hash[p] = this.store.hash(p);
  }

  /** Write page p back to the file (bytes below EOF) and show it to the other mappings of the file. */
  private writeBack(p: number): void {
    const file = this.file!;
    const fp = file.pageOffset + p;
    let size: number;
    try {
      size = fs.fstatSync(file.fd).size;
    } catch (err) {
      rethrowFs(err, 'msync');
    }
    const start = fp * PAGE;
    if (start < size) {
      const n = Math.min(PAGE, size - start);
      try {
        let put = 0;
        const bytes = this.store.page(p) ?? ZEROS;
        while (put < n) put += fs.writeSync(file.fd, bytes, put, n - put, start + put);
      } catch (err) {
        rethrowFs(err, 'msync');
      }
    }
    this.hash[p] = this.store.hash(p);
    this.state[p] &= ~S_DIRTY;
    this.propagate(p);
  }

  /** The file page under p changed (write-back, hole punch): refresh clean copies in other mappings. */
  private propagate(p: number): void {
    const file = this.file!;
    const fp = file.pageOffset + p;
    for (const other of file.cache.mappings) {
      if (other === this || other.closed) continue;
      const q = fp - other.file!.pageOffset;
      if (q < 0 || q >= other.pages) continue;
      if (other.shared ? other.isDirty(q) : other.state[q] & S_COW) continue;
      other.store.set(q, this.store.page(p));
      other.hash[q] = this.hash[p];
    }
  }

  private cacheFilePage(p: number): void {
    const cache = this.file!.cache;
    const fp = this.file!.pageOffset + p;
    cache.evicted.delete(fp);
    cache.stamps.set(fp, this.backend.tick());
  }

  /**
   * Detect JavaScript writes in pages [first, end): the simulator cannot trap them, so it
   * compares contents (anonymous: non-zero means written; lazy-free and file pages: hash
   * differs from the clean hash). Returns the number of pages that became resident.
   */
  scan(first: number, end: number): number {
    if (this.closed) return 0;
    let fresh = 0;
    const { state, store } = this;
    for (let p = first; p < end; p++) {
      const s = state[p];
      if (s & S_GUARD) continue;
      switch (this.kindOf) {
        case 'anon':
          if (s & S_LAZY) {
            if (this.lazyWritten(p) && s & S_ZERO) fresh++;
          } else if ((s & (S_PRESENT | S_ZERO)) !== S_PRESENT && !store.isZero(p)) {
            state[p] = (s & ~S_ZERO) | S_PRESENT;
            this.stamp[p] = this.backend.tick();
            fresh++;
          }
          break;
        case 'shmem':
          if (!(s & S_PRESENT) && !store.isZero(p)) {
            state[p] = s | S_PRESENT;
            fresh++;
          } else if (s & S_CLEAN && !store.isZero(p)) {
            state[p] = s & ~(S_CLEAN | S_UNMAPPED); // written: dirty, and mapped by the write fault
          }
          break;
        case 'file':
          if (this.shared) {
            if (store.hash(p) !== this.hash[p]) {
              if (!(s & S_PRESENT)) fresh++;
              state[p] = s | S_PRESENT;
              this.cacheFilePage(p);
            }
          } else if (!(s & S_COW) && store.hash(p) !== this.hash[p]) {
            if (!(s & S_PRESENT)) fresh++;
            state[p] = s | S_PRESENT | S_COW;
            this.stamp[p] = this.backend.tick();
            // The copy-on-write fault copied from the file page: it is in the page cache again.
            this.cacheFilePage(p);
          }
          break;
      }
    }
    return fresh;
  }

  /** Scan a range and enforce the memory limit for the writes found. */
  private observe(first: number, end: number): void {
    const fresh = this.scan(first, end);
    this.backend.afterWrites(fresh);
  }

  /** observe() for the page-flag and write-tracking model (lib/simulator/page-flags.ts). */
  noticeWrites(first: number, end: number): void {
    this.observe(first, end);
  }

  pageFlags(offset: number, length: number, _entriesOnly: boolean): RawPageFlags {
    this.check('read page flags');
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    return simPageFlags(this, first, end);
  }

  trackWrites(): BackendWriteTracker {
    this.check('track writes');
    return new SimWriteTracker(this);
  }

  /** Pages a fault would newly charge. */
  private wouldCharge(p: number, write: boolean): boolean {
    const s = this.state[p];
    if (s & S_GUARD) return false;
    if (this.kindOf === 'anon') {
      if (!write) return false; // read faults map the zero page (or keep the page)
      return (s & (S_PRESENT | S_ZERO)) !== S_PRESENT;
    }
    if (this.kindOf === 'file' && !this.shared && write) return !(s & S_COW) || !(s & S_PRESENT);
    return !(s & S_PRESENT);
  }

  private chargeRange(first: number, end: number, write: (p: number) => boolean): void {
    let n = 0;
    for (let p = first; p < end; p++) if (this.wouldCharge(p, write(p))) n++;
    this.backend.ensureRoom(n);
  }

  /** Why page p cannot be faulted in (kernel error code), or undefined. */
  private faultError(p: number, write: boolean, eof: number): 'EFAULT' | 'EINVAL' | undefined {
    // The VMA's protection is checked before the page is faulted (PROT_NONE over a guard: EINVAL).
    const prot = this.attr[p] & A_PROT;
    if (prot === 0 || (write && !(prot & PROT.WRITE))) return 'EINVAL';
    if (this.state[p] & S_GUARD) return 'EFAULT';
    if (this.kindOf === 'shmem' && p >= this.objectPages) return 'EFAULT';
    if (this.file && this.file.pageOffset + p >= eof) return 'EFAULT';
    return undefined;
  }

  private fault(p: number, write: boolean): void {
    const s = this.state[p];
    switch (this.kindOf) {
      case 'anon':
        if (write) this.state[p] = (s & ~(S_ZERO | S_LAZY)) | S_PRESENT;
        else if (!(s & S_PRESENT)) this.state[p] = s | S_PRESENT | S_ZERO;
        break;
      case 'shmem':
        // A read fault on a hole allocates a clean page; a write fault dirties it.
        this.state[p] = (s & ~(S_UNMAPPED | S_CLEAN)) | S_PRESENT | (write ? 0 : s & S_PRESENT ? s & S_CLEAN : S_CLEAN);
        break;
      case 'file':
        // A write fault makes a private page a COW copy and dirties a shared one (page_mkwrite).
        this.state[p] = s | S_PRESENT | (write ? (this.shared ? S_DIRTY : S_COW) : 0);
        this.cacheFilePage(p);
        break;
    }
    this.stamp[p] = this.backend.tick();
  }

  /** The write flag mm_populate uses (FOLL_WRITE for private writable memory). */
  private populateWrites(p: number): boolean {
    return !this.shared && (this.attr[p] & PROT.WRITE) !== 0;
  }

  /** MAP_POPULATE: populate until the first failure, ignoring errors. */
  mapPopulate(): void {
    this.chargeRange(0, this.pages, (p) => this.populateWrites(p));
    const eof = this.file ? this.eofPages() : 0;
    for (let p = 0; p < this.pages; p++) {
      const write = this.populateWrites(p);
      if (this.faultError(p, write, eof)) break;
      this.fault(p, write);
    }
  }

  private reloadFromFile(p: number): void {
    this.loadFilePage(p);
    this.state[p] &= ~(S_COW | S_PRESENT);
  }

  // ---- BackendMapping -----------------------------------------------------

  view(offset: number, length: number): Uint8Array {
    return this.newView(() => this.store.view(offset, length));
  }

  lendView(offset: number, length: number): Uint8Array {
    return this.newView(() => this.store.lend(offset, length));
  }

  private newView(make: () => Uint8Array): Uint8Array {
    this.check('create a view');
    try {
      return make();
    } catch (err) {
      if (err instanceof RangeError) throw errnoError('ENOMEM', 'mmap'); // ArrayBuffer allocation failed
      throw err;
    }
  }

  /**
   * Detach `view`: the extent behind it moves to a new ArrayBuffer (no copy), so every
   * view on that extent gets length 0 and views over other extents stay valid.
   * Views share an extent when one was made inside the other's pages (a documented
   * divergence: the native backend detaches only `view`). Contents and page states
   * are untouched; new views see the same bytes.
   */
  detachView(view: Uint8Array): boolean {
    if (this.closed) return false;
    return this.store.detachView(view);
  }

  adviseRuns(runs: Float64Array, advice: number): void {
    adviseRunsInOrder(this, runs, advice);
  }

  advise(offset: number, length: number, advice: number): void {
    this.check('advise');
    if (!KNOWN_MADVISE.has(advice)) throw errnoError('EINVAL', 'madvise');
    if (length === 0) return;
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    const fail = (code: string): never => {
      throw errnoError(code, 'madvise');
    };
    const locked = (p: number) => (this.attr[p] & A_LOCKED) !== 0;
    const anon = this.kindOf === 'anon';
    const { state, attr } = this;
    const setFlag = (set: number, clear: number) => {
      for (let p = first; p < end; p++) attr[p] = (attr[p] & ~clear) | set;
    };
    switch (advice) {
      case MADV.NORMAL:
        return setFlag(0, A_SEQ | A_RAND);
      case MADV.RANDOM:
        return setFlag(A_RAND, A_SEQ);
      case MADV.SEQUENTIAL:
        return setFlag(A_SEQ, A_RAND);
      case MADV.DONTFORK:
        return setFlag(A_DONTCOPY, 0);
      case MADV.DOFORK:
        return setFlag(0, A_DONTCOPY);
      case MADV.MERGEABLE:
        // KSM ignores shared mappings without error (no flag set).
        return this.shared ? undefined : setFlag(A_MERGEABLE, 0);
      case MADV.UNMERGEABLE:
        return setFlag(0, A_MERGEABLE);
      case MADV.HUGEPAGE:
        return setFlag(A_HUGE, A_NOHUGE);
      case MADV.NOHUGEPAGE:
        return setFlag(A_NOHUGE, A_HUGE);
      case MADV.DONTDUMP:
        return setFlag(A_DONTDUMP, 0);
      case MADV.DODUMP:
        return setFlag(0, A_DONTDUMP);
      case MADV.WIPEONFORK:
        if (!anon) fail('EINVAL');
        return setFlag(A_WIPE, 0);
      case MADV.KEEPONFORK:
        return setFlag(0, A_WIPE);
      case MADV.WILLNEED: {
        // Anonymous without swap: nothing to read in. Files: read into the page cache (not mapped).
        if (this.kindOf !== 'file') return;
        const eof = this.eofPages();
        for (let p = first; p < end; p++) if (this.file!.pageOffset + p < eof) this.cacheFilePage(p);
        return;
      }
      case MADV.DONTNEED:
      case MADV.DONTNEED_LOCKED:
        for (let p = first; p < end; p++) {
          if (advice === MADV.DONTNEED && locked(p)) fail('EINVAL');
          this.zap(p);
        }
        return;
      case MADV.FREE:
        for (let p = first; p < end; p++) {
          if (!anon || locked(p)) fail('EINVAL');
          const s = state[p];
          // A zero-page PTE is marked too: the kernel (6.18, measured) then lets PAGEOUT
          // unmap it, where PAGEOUT alone keeps it (docs/SIMULATOR.md).
          if ((s & (S_PRESENT | S_LAZY)) === S_PRESENT) {
            state[p] = s | S_LAZY;
            this.hash[p] = this.store.hash(p);
            this.stamp[p] = this.backend.tick();
          }
        }
        return;
      case MADV.REMOVE:
        for (let p = first; p < end; p++) {
          if (locked(p) || anon) fail('EINVAL');
          if (!this.shared || (this.file && !this.file.writable)) fail('EACCES');
          this.punch(p);
        }
        return;
      case MADV.COLD:
        for (let p = first; p < end; p++) {
          if (locked(p)) fail('EINVAL');
          const s = state[p];
          if (s & S_LAZY || (anon && s & S_PRESENT)) this.stamp[p] = this.backend.coldStamp();
          if (this.file && (s & (S_PRESENT | S_COW)) === S_PRESENT) {
            this.file.cache.stamps.set(this.file.pageOffset + p, this.backend.coldStamp());
          }
        }
        return;
      case MADV.PAGEOUT:
        for (let p = first; p < end; p++) {
          if (locked(p)) fail('EINVAL');
          this.pageOut(p);
        }
        return;
      case MADV.POPULATE_READ:
      case MADV.POPULATE_WRITE: {
        const write = advice === MADV.POPULATE_WRITE;
        this.populateRange(first, end, write, (code) => fail(code));
        return;
      }
      case MADV.COLLAPSE: {
        if (!anon) fail('EINVAL');
        // Model: the mapping starts on a 2 MiB boundary (as large anonymous mappings do);
        // every huge page the range touches must lie inside the mapping.
        const firstHuge = Math.floor(first / HUGE_PAGES);
        const lastHuge = Math.floor((end - 1) / HUGE_PAGES);
        for (let h = firstHuge; h <= lastHuge; h++) {
          const hs = h * HUGE_PAGES;
          const he = hs + HUGE_PAGES;
          if (he > this.pages) fail('EINVAL');
          let n = 0;
          for (let p = hs; p < he; p++) if (this.wouldCharge(p, true)) n++;
          this.backend.ensureRoom(n);
          for (let p = hs; p < he; p++) if (!(state[p] & S_GUARD)) this.fault(p, true);
        }
        return;
      }
      case MADV.GUARD_INSTALL:
        for (let p = first; p < end; p++) {
          if (locked(p)) fail('EINVAL');
          this.installGuard(p);
        }
        return;
      case MADV.GUARD_REMOVE:
        for (let p = first; p < end; p++) state[p] &= ~S_GUARD;
        return;
      default:
        fail('EINVAL');
    }
  }

  /** MADV_DONTNEED on one page: drop the PTE. */
  private zap(p: number): void {
    const s = this.state[p];
    switch (this.kindOf) {
      case 'anon':
        this.store.zero(p);
        this.state[p] = s & S_GUARD;
        break;
      case 'shmem':
        if (s & S_PRESENT) this.state[p] = s | S_UNMAPPED; // stays in the shmem cache: contents and mincore unchanged
        break;
      case 'file':
        if (this.shared) this.state[p] = s & ~S_PRESENT; // dirty data stays in the page cache
        else this.reloadFromFile(p); // COW copy gone: the file shows again
        break;
    }
  }

  /** MADV_REMOVE on one page of a shared mapping: punch a hole. */
  private punch(p: number): void {
    this.store.zero(p);
    this.hash[p] = ZERO_HASH;
    this.state[p] &= S_GUARD;
    if (this.kindOf !== 'file') return;
    const file = this.file!;
    const fp = file.pageOffset + p;
    let size = 0;
    try {
      size = fs.fstatSync(file.fd).size;
      const start = fp * PAGE;
      if (start < size) fs.writeSync(file.fd, new Uint8Array(Math.min(PAGE, size - start)), 0, Math.min(PAGE, size - start), start);
    } catch (err) {
      rethrowFs(err, 'madvise');
    }
    this.propagate(p);
    evictFilePage(file.cache, fp);
  }

  private pageOut(p: number): void {
    const s = this.state[p];
    switch (this.kindOf) {
      case 'anon':
        // Clean lazy-free pages are discarded; anything else needs swap (there is none).
        if (s & S_LAZY && !this.lazyWritten(p)) this.discard(p);
        break;
      case 'shmem':
        // Dirty pages need swap (there is none); a clean page mapped here is dropped: a hole again.
        if ((s & (S_PRESENT | S_CLEAN | S_UNMAPPED)) === (S_PRESENT | S_CLEAN) && this.store.isZero(p)) {
          this.state[p] = s & S_GUARD;
        }
        break;
      case 'file': {
        const file = this.file!;
        if (!file.canWrite || file.cache.unevictable || (s & (S_PRESENT | S_COW)) !== S_PRESENT) break;
        const fp = file.pageOffset + p;
        if (this.shared && this.isDirty(p)) break; // dirty: kept
        if (!fileClean(file.cache, fp) || fileMapped(file.cache, fp, this)) break; // shared with another mapping
        evictFilePage(file.cache, fp);
        break;
      }
    }
  }

  private installGuard(p: number): void {
    switch (this.kindOf) {
      case 'anon':
        this.store.zero(p);
        this.state[p] = S_GUARD;
        break;
      case 'shmem':
        this.state[p] |= S_GUARD | (this.state[p] & S_PRESENT ? S_UNMAPPED : 0); // the shmem page survives behind the marker
        break;
      case 'file':
        if (!this.shared) this.reloadFromFile(p);
        this.state[p] = S_GUARD | (this.state[p] & S_DIRTY); // a dirty page-cache page stays dirty
        break;
    }
  }

  private populateRange(first: number, end: number, write: boolean | ((p: number) => boolean), fail: (code: string) => never): void {
    const writes = typeof write === 'function' ? write : () => write;
    this.chargeRange(first, end, writes);
    const eof = this.file ? this.eofPages() : 0;
    for (let p = first; p < end; p++) {
      const w = writes(p);
      const code = this.faultError(p, w, eof);
      if (code) fail(code);
      this.fault(p, w);
    }
  }

  residencyBits(offset: number, length: number): number {
    return foldResidency(this, offset, length);
  }

  residency(offset: number, length: number): Uint8Array {
    this.check('read residency');
    const first = offset / PAGE;
    const count = pagesOf(length);
    const end = Math.min(this.pages, first + count);
    this.observe(first, end);
    const out = new Uint8Array(count);
    const file = this.file;
    if (file && !file.canWrite) return out.fill(1); // mincore side-channel fix
    const eof = file ? this.eofPages() : 0;
    for (let p = first; p < end; p++) {
      const s = this.state[p];
      let v = s & S_PRESENT ? 1 : 0;
      if (!v && file) {
        const fp = file.pageOffset + p;
        v = fp < eof && !file.cache.evicted.has(fp) ? 1 : 0;
      }
      out[p - first] = v;
    }
    return out;
  }

  protect(offset: number, length: number, protection: number): void {
    this.check('protect');
    if (length === 0) return;
    if (this.file && this.shared && protection & PROT.WRITE && !this.file.writable) {
      throw errnoError('EACCES', 'mprotect');
    }
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    // A private VM_LOCKED VMA becoming writable is populated to break COW (mprotect_fixup),
    // not with MLOCK_ONFAULT (populate_vma_page_range skips VM_LOCKONFAULT) — and only a
    // VMA that was not writable before: pages already writable are left as they are.
    const populate: boolean[] = [];
    let any = false;
    for (let p = first; p < end; p++) {
      const old = this.attr[p];
      const becomesWritable = !this.shared && (old & (A_LOCKED | A_ONFAULT | PROT.WRITE)) === A_LOCKED && (protection & PROT.WRITE) !== 0;
      populate.push(becomesWritable);
      any ||= becomesWritable;
      this.attr[p] = (old & ~A_PROT) | (protection & A_PROT);
    }
    if (any) {
      // mprotect ignores populate errors; a failure ends that VMA's populate (its run of pages).
      const eof = this.file ? this.eofPages() : 0;
      for (let p = first; p < end; p++) {
        if (!populate[p - first]) continue;
        if (this.faultError(p, true, eof)) {
          while (p + 1 < end && populate[p + 1 - first]) p++;
          continue;
        }
        try {
          this.backend.ensureRoom(this.wouldCharge(p, true) ? 1 : 0);
        } catch {
          break;
        }
        this.fault(p, true);
      }
    }
  }

  lock(offset: number, length: number, onFault: boolean): Promise<void> {
    return this.later('lock', () => this.lockSync(offset, length, onFault));
  }

  private lockSync(offset: number, length: number, onFault: boolean): void {
    if (length === 0) return;
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    this.observe(first, end);
    for (let p = first; p < end; p++) {
      this.attr[p] = (this.attr[p] & ~A_ONFAULT) | A_LOCKED | (onFault ? A_ONFAULT : 0);
    }
    if (onFault) return;
    // mm_populate: write faults for private writable memory (FOLL_WRITE breaks COW), read faults otherwise.
    this.populateRange(first, end, (p) => this.populateWrites(p), () => {
      throw errnoError('ENOMEM', 'mlock2');
    });
  }

  unlock(offset: number, length: number): void {
    this.check('unlock');
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    for (let p = first; p < end; p++) this.attr[p] &= ~(A_LOCKED | A_ONFAULT);
  }

  populate(offset: number, length: number, write: boolean): Promise<void> {
    return this.later('populate', () => {
      if (length === 0) return;
      const first = offset / PAGE;
      const end = Math.min(this.pages, first + pagesOf(length));
      this.observe(first, end);
      this.populateRange(first, end, write, (code) => {
        throw errnoError(code, 'madvise');
      });
    });
  }

  flush(offset: number, length: number, invalidate: boolean): Promise<void> {
    return this.later('flush', () => this.flushSync(offset, length, invalidate));
  }

  flushSync(offset: number, length: number, invalidate: boolean): void {
    this.check('flush');
    const first = offset / PAGE;
    const end = Math.min(this.pages, first + pagesOf(length));
    if (invalidate) {
      for (let p = first; p < end; p++) if (this.attr[p] & A_LOCKED) throw errnoError('EBUSY', 'msync');
    }
    this.observe(first, end);
    if (this.kindOf !== 'file' || !this.shared) return;
    for (let p = first; p < end; p++) if (this.isDirty(p)) this.writeBack(p);
  }

  resize(newLength: number): void {
    this.check('resize');
    const newPages = pagesOf(newLength);
    const oldPages = this.pages;
    if (newPages > oldPages) {
      // mremap can only grow a range that is a single VMA.
      for (let p = 1; p < oldPages; p++) if (this.attr[p] !== this.attr[0]) throw errnoError('EFAULT', 'mremap');
      if (newPages * PAGE > this.backend.maxViewLength) throw errnoError('ENOMEM', 'mremap');
    }
    this.scan(0, oldPages);
    if (this.kindOf === 'file' && this.shared) {
      // Pages cut off stay in the page cache: their data reaches the file.
      for (let p = newPages; p < oldPages; p++) if (this.isDirty(p)) this.writeBack(p);
    }
    const keep = Math.min(oldPages, newPages);
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(newPages);
      next.set(old.subarray(0, keep) as never);
      return next;
    };
    const tailAttr = oldPages > 0 ? this.attr[oldPages - 1] : PROT.READ | PROT.WRITE;
    if (this.kindOf === 'shmem') {
      // The shmem object keeps the pages cut off.
      for (let p = newPages; p < Math.min(oldPages, this.objectPages); p++) {
        const bytes = this.store.page(p);
        this.shmemTail.set(p, { state: this.state[p] & ~(S_GUARD | S_UNMAPPED), bytes: bytes && bytes.slice() });
      }
    }
    this.store.resize(newPages); // keeps the contents, detaches every view
    this.state = grow(this.state, (n) => new Uint8Array(n));
    this.attr = grow(this.attr, (n) => new Uint16Array(n));
    this.hash = grow(this.hash, (n) => new Uint32Array(n));
    this.stamp = grow(this.stamp, (n) => new Float64Array(n));
    this.pages = newPages;
    this.length = newLength;
    for (let p = keep; p < newPages; p++) {
      this.attr[p] = tailAttr;
      if (this.file) this.loadFilePage(p);
      const kept = this.shmemTail.get(p);
      if (kept) {
        this.shmemTail.delete(p);
        this.state[p] = kept.state | (kept.state & S_PRESENT ? S_UNMAPPED : 0);
        this.store.set(p, kept.bytes);
      }
    }
    if (newPages > keep && tailAttr & A_LOCKED && !(tailAttr & A_ONFAULT)) {
      // A locked mapping grows populated; errors are ignored, as mm_populate after mremap does.
      const eof = this.file ? this.eofPages() : 0;
      try {
        this.chargeRange(keep, newPages, (p) => this.populateWrites(p));
      } catch {
        return;
      }
      for (let p = keep; p < newPages; p++) {
        const write = this.populateWrites(p);
        if (this.faultError(p, write, eof)) break;
        this.fault(p, write);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.kindOf === 'file' && this.shared) {
      // munmap leaves dirty pages in the page cache; the simulator writes them back now.
      // Guard pages too: the data written before the guard was installed is still in the page cache.
      for (let p = 0; p < this.pages; p++) {
        if (this.isDirty(p)) {
          try {
            this.writeBack(p);
          } catch {
            // the file went away; nothing left to do
          }
        }
      }
    }
    this.closed = true;
    this.backend.live.delete(this);
    if (this.file) {
      this.file.cache.mappings.delete(this);
      if (this.file.ownFd) {
        try {
          fs.closeSync(this.file.fd);
        } catch {
          // already closed
        }
      }
    }
    this.store.close();
  }

  // Copies that never fault (lib/simulator/copy.ts).
  readInto(offset: number, length: number, target: Uint8Array): number {
    return copy.readInto(this, offset, length, target);
  }
  readIntoAsync(offset: number, length: number, target: Uint8Array): Promise<number> {
    return copy.later(this, 'read', () => copy.readInto(this, offset, length, target));
  }
  writeFrom(offset: number, source: Uint8Array): number {
    return copy.writeFrom(this, offset, source);
  }
  writeFromAsync(offset: number, source: Uint8Array): Promise<number> {
    return copy.later(this, 'write', () => copy.writeFrom(this, offset, source));
  }
  detachViewsPast(offset: number): number {
    if (this.closed) throw mappingClosed('detach views');
    return this.store.detachViewsFrom(Math.ceil(offset / PAGE));
  }
  /** Fault pages [first, end) in order until one cannot be; returns the pages reached. */
  reach(first: number, end: number, write: boolean): number {
    this.observe(first, end);
    this.chargeRange(first, end, () => write);
    const eof = this.file ? this.eofPages() : 0;
    let p = first;
    for (; p < end && !this.faultError(p, write, eof); p++) this.fault(p, write);
    return p - first;
  }

  /** Run work on a later microtask, as the native backend runs it off the event loop. */
  private later(operation: string, work: Work): Promise<void> {
    if (this.closed) return Promise.reject(mappingClosed(operation));
    return Promise.resolve().then(() => {
      if (this.closed) throw mappingClosed(operation);
      work();
    });
  }
}
