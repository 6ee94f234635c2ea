// The simulator's process_vm_readv / process_vm_writev on the calling process
// (lib/safe-copy.ts): fault the pages in order as the kernel's copy does, stop
// at the first one that cannot be faulted (past the end of the file, PROT_NONE,
// a guard page, a write without PROT_WRITE, past a shmem object) and report the
// bytes copied up to there.
// Divergences: the simulator reads a file when it maps it, so after another process
// truncates the file, bytes past the new end inside its last page still show the
// old contents (the kernel zeroes them), and a copy racing a truncation never sees
// the zeros the kernel can show.
import { mappingClosed } from '../errors';

const PAGE = 4096;

/** What the copies need of a simulated mapping (SimMapping in lib/simulator.ts). */
interface CopyableMapping {
  readonly closed: boolean;
  readonly store: {
    page(p: number): Uint8Array | undefined;
    pageForWrite(p: number): Uint8Array;
  };
  /** Fault pages [first, end) in order, as a kernel copy would; returns how many were reached. */
  reach(first: number, end: number, write: boolean): number;
}

/** Bytes of [offset, offset + length) the copy can reach, as [first page, end byte]. */
function reachable(m: CopyableMapping, offset: number, length: number, write: boolean): [number, number] {
  const first = Math.floor(offset / PAGE);
  const end = Math.ceil((offset + length) / PAGE);
  const reached = m.reach(first, end, write);
  return [first, Math.min(offset + length, (first + reached) * PAGE)];
}

export function readInto(m: CopyableMapping, offset: number, length: number, target: Uint8Array): number {
  if (m.closed) throw mappingClosed('read');
  if (length === 0) return 0;
  const [first, stop] = reachable(m, offset, length, false);
  for (let p = first, at = offset; at < stop; p++) {
    const to = Math.min(stop, (p + 1) * PAGE);
    const bytes = m.store.page(p);
    const into = target.subarray(at - offset, to - offset);
    if (bytes === undefined) into.fill(0);
    else into.set(bytes.subarray(at - p * PAGE, to - p * PAGE));
    at = to;
  }
  return Math.max(0, stop - offset);
}

export function writeFrom(m: CopyableMapping, offset: number, source: Uint8Array): number {
  if (m.closed) throw mappingClosed('write');
  const length = source.byteLength;
  if (length === 0) return 0;
  const [first, stop] = reachable(m, offset, length, true);
  for (let p = first, at = offset; at < stop; p++) {
    const to = Math.min(stop, (p + 1) * PAGE);
    m.store.pageForWrite(p).set(source.subarray(at - offset, to - offset), at - p * PAGE);
    at = to;
  }
  return Math.max(0, stop - offset);
}

/** The copy on a later microtask, as the native backend runs it off the event loop. */
export function later(m: CopyableMapping, operation: string, copy: () => number): Promise<number> {
  if (m.closed) return Promise.reject(mappingClosed(operation));
  return Promise.resolve().then(() => {
    if (m.closed) throw mappingClosed(operation);
    return copy();
  });
}
