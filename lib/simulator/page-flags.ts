// The simulator's page flags and write tracking (BackendMapping.pageFlags /
// trackWrites). The model knows whether a PTE maps a page, whether that is the
// shared zero page, and whether the page is anonymous: it reports present,
// zeroPage and file, and says it cannot tell the rest (no swap, no huge pages,
// no soft-dirty bit). JavaScript writes cannot be trapped, so its tracker reports
// the pages whose contents changed since the last reset (docs/WRITE-TRACKING.md).
import type { BackendWriteTracker, RawPageFlags } from '../backend';
import { mappingClosed, pagewiseError } from '../errors';
import { PAGE_CATEGORY } from '../page-flags';
import { PAGE, S_COW, S_PRESENT, S_UNMAPPED, S_ZERO, pagesOf } from './state';

/** What this file reads of a SimMapping (declared here, so that mapping.ts can import this file without a circle). */
export interface SimMapping {
  readonly pages: number;
  readonly state: Uint8Array;
  readonly kindOf: string;
  readonly closed: boolean;
  readonly store: { hash(page: number): number };
  noticeWrites(first: number, end: number): void;
}

const KNOWN = PAGE_CATEGORY.present | PAGE_CATEGORY.zeroPage | PAGE_CATEGORY.file;

/** The open tracker of each mapping: pageFlags() reports its written pages, as the kernel does inside a tracked range. */
const trackers = new WeakMap<SimMapping, SimWriteTracker>();

/** Runs of pages [first, end) of `m` (already scanned for writes) as BackendMapping.pageFlags() returns them. */
export function pageFlags(m: SimMapping, first: number, end: number): RawPageFlags {
  const runs: number[] = [];
  const tracker = trackers.get(m);
  for (let p = first; p < end; p++) {
    const s = p < m.pages ? m.state[p] : 0;
    let bits = tracker?.wasWritten(m, p) ? PAGE_CATEGORY.written : 0;
    if (s & S_PRESENT && !(s & S_UNMAPPED)) {
      bits |= PAGE_CATEGORY.present;
      if (s & S_ZERO) bits |= PAGE_CATEGORY.zeroPage;
      // Page-cache and shmem pages are not anonymous; a private file page's copy-on-write copy is.
      else if (m.kindOf !== 'anon' && !(s & S_COW)) bits |= PAGE_CATEGORY.file;
    }
    const n = runs.length;
    if (n > 0 && runs[n - 1] === bits) runs[n - 2] += PAGE;
    else runs.push(p * PAGE, PAGE, bits);
  }
  return { runs: Float64Array.from(runs), known: tracker === undefined ? KNOWN : KNOWN | PAGE_CATEGORY.written, source: 'simulator' };
}

/** A tracker that compares each page's contents with a snapshot of its hash taken at reset(). */
export class SimWriteTracker implements BackendWriteTracker {
  #mapping: SimMapping | undefined;
  #snapshot: Uint32Array;

  constructor(mapping: SimMapping) {
    this.#mapping = mapping;
    this.#snapshot = this.#take(mapping);
    trackers.set(mapping, this);
  }

  /** Whether page p of `m` (already scanned for writes) differs from the snapshot. */
  wasWritten(m: SimMapping, p: number): boolean {
    return this.#snapshot.length !== m.pages || m.store.hash(p) !== this.#snapshot[p];
  }

  get closed(): boolean {
    return this.#mapping === undefined;
  }

  written(offset: number, length: number): Float64Array {
    const m = this.#live();
    const first = offset / PAGE;
    const end = Math.min(m.pages, first + pagesOf(length));
    const runs: number[] = [];
    if (this.#snapshot.length !== m.pages) {
      // Resized since the snapshot: every page may have been written.
      if (length > 0) runs.push(offset, length);
      return Float64Array.from(runs);
    }
    m.noticeWrites(first, end);
    for (let p = first; p < end; p++) {
      if (!this.wasWritten(m, p)) continue;
      const n = runs.length;
      if (n > 0 && runs[n - 2] + runs[n - 1] === p * PAGE) runs[n - 1] += PAGE;
      else runs.push(p * PAGE, PAGE);
    }
    return Float64Array.from(runs);
  }

  reset(): void {
    this.#snapshot = this.#take(this.#live());
  }

  close(): void {
    if (this.#mapping !== undefined && trackers.get(this.#mapping) === this) trackers.delete(this.#mapping);
    this.#mapping = undefined;
  }

  #live(): SimMapping {
    const m = this.#mapping;
    if (m === undefined) throw pagewiseError('ERR_WRITE_TRACKER_CLOSED', 'The write tracker is closed');
    if (m.closed) throw mappingClosed('track writes');
    return m;
  }

  #take(m: SimMapping): Uint32Array {
    m.noticeWrites(0, m.pages);
    const hashes = new Uint32Array(m.pages);
    for (let p = 0; p < m.pages; p++) hashes[p] = m.store.hash(p);
    return hashes;
  }
}
