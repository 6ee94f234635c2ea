// Readers of the kernel's per-process reports under /proc/self, one home for each:
// smaps (per VMA), smaps_rollup (LazyFree), status (process totals) and pagemap
// (per-page present / file / swapped bits). See proc_pid_smaps(5), proc_pid_status(5)
// and the kernel's Documentation/admin-guide/mm/pagemap.rst.
import * as fs from 'node:fs';

const KiB = 1024;

/** LazyFree of /proc/self/smaps_rollup in bytes, or undefined. */
export function readLazyFree(): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps_rollup', 'latin1');
  } catch {
    return undefined;
  }
  const m = /^LazyFree:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) * KiB : undefined;
}

/** One VMA of /proc/self/smaps. */
export interface SmapsVma {
  start: bigint;
  end: bigint;
  /** Inode != 0: backed by a file (shared memory included: see `pathname`). */
  inode: boolean;
  pathname: string;
  /** The VMA's fields in bytes (Rss, Anonymous, Private_Clean, LazyFree, ...). */
  fields: Map<string, number>;
}

/** /proc/self/smaps, parsed. Throws the fs error when it cannot be read. */
export function readSmaps(): SmapsVma[] {
  const text = fs.readFileSync('/proc/self/smaps', 'latin1');
  const vmas: SmapsVma[] = [];
  let current: SmapsVma | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      current = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), inode: head[3] !== '0', pathname: head[4], fields: new Map() };
      vmas.push(current);
      continue;
    }
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (field && current) current.fields.set(field[1], Number(field[2]) * KiB);
  }
  return vmas;
}

/** The "kB" fields of /proc/self/status (VmRSS, RssAnon, RssFile, ...) in bytes. Throws the fs error. */
export function readStatus(): Map<string, number> {
  const fields = new Map<string, number>();
  for (const m of fs.readFileSync('/proc/self/status', 'latin1').matchAll(/^(\w+):\s+(\d+) kB$/gm)) {
    fields.set(m[1], Number(m[2]) * KiB);
  }
  return fields;
}

/** Page counts of a range from /proc/self/pagemap. */
interface PagemapCounts {
  /** Present in RAM. */
  present: number;
  /** Present and anonymous (private: not a file page, not shared anonymous memory). */
  anonymous: number;
  /** Present file pages or shared anonymous memory. */
  file: number;
  /** Swapped out. */
  swapped: number;
  /**
   * Present anonymous pages marked MADV_FREE and not yet reclaimed (anonymous, not swap-backed:
   * what smaps counts as LazyFree), from /proc/kpageflags; undefined where the page-frame
   * numbers or /proc/kpageflags are hidden (without CAP_SYS_ADMIN).
   */
  lazyFree?: number;
}

const PRESENT = 0x8000_0000; // bit 63 of each 64-bit entry: its high 32 bits, little-endian
const SWAPPED = 0x4000_0000; // bit 62
const FILE_OR_SHARED = 0x2000_0000; // bit 61
const CHUNK_PAGES = 8192; // 64 KiB of entries per read

/**
 * Counts the pages of [start, start + pages * pageSize) by their pagemap bits, or undefined
 * when /proc/self/pagemap cannot be read. `wantLazyFree` false: the caller knows there is
 * none (lazyFree 0), and /proc/kpageflags is not read. Needs no privilege: only the page-frame numbers
 * are hidden from unprivileged readers, the flag bits are not.
 */
export function readPagemap(start: bigint, pages: number, pageSize: number, wantLazyFree = true): PagemapCounts | undefined {
  let fd: number;
  try {
    fd = fs.openSync('/proc/self/pagemap', 'r');
  } catch {
    return undefined;
  }
  const counts: PagemapCounts = { present: 0, anonymous: 0, file: 0, swapped: 0 };
  const buffer = Buffer.allocUnsafe(Math.min(pages, CHUNK_PAGES) * 8);
  const frames: number[] = []; // page-frame numbers of present anonymous pages, where shown
  try {
    let position = (start / BigInt(pageSize)) * 8n;
    for (let done = 0; done < pages; ) {
      const want = Math.min(pages - done, CHUNK_PAGES) * 8;
      const got = fs.readSync(fd, buffer, 0, want, position);
      if (got <= 0) return undefined;
      for (let i = 4; i < got; i += 8) {
        const high = buffer.readUInt32LE(i);
        if (high & PRESENT) {
          counts.present++;
          if (high & FILE_OR_SHARED) counts.file++;
          else {
            counts.anonymous++;
            if (wantLazyFree) {
              const frame = (high & 0x7f_ffff) * 2 ** 32 + buffer.readUInt32LE(i - 4);
              if (frame !== 0) frames.push(frame);
            }
          }
        } else if (high & SWAPPED) counts.swapped++;
      }
      done += got >>> 3;
      position += BigInt(got);
    }
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
  if (!wantLazyFree) counts.lazyFree = 0;
  else if (frames.length === counts.anonymous && frames.length > 0 && frames.length <= MAX_FLAG_FRAMES) {
    const lazyFree = countLazyFree(frames);
    if (lazyFree !== undefined) counts.lazyFree = lazyFree;
  } else if (counts.anonymous === 0) counts.lazyFree = 0;
  return counts;
}

// Page by page costs about a microsecond per scattered frame: beyond 64 MiB of anonymous pages
// in a shared VMA, the caller's proportional share is used instead.
const MAX_FLAG_FRAMES = 16384;
const KPF_ANON = 1 << 12;
const KPF_SWAPBACKED = 1 << 14;

/** How many of these page frames are anonymous and not swap-backed (MADV_FREE'd), from /proc/kpageflags. */
function countLazyFree(frames: number[]): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync('/proc/kpageflags', 'r');
  } catch {
    return undefined;
  }
  frames.sort((a, b) => a - b);
  const buffer = Buffer.allocUnsafe(CHUNK_PAGES * 8);
  let lazy = 0;
  try {
    // One read per run of nearby frames (gaps of at most 16 frames: a mapping's pages are often
    // physically close); the kernel's cost is per frame read, so a run never spans far.
    for (let i = 0; i < frames.length; ) {
      let j = i + 1;
      while (j < frames.length && frames[j] - frames[j - 1] <= 16 && frames[j] - frames[i] < CHUNK_PAGES) j++;
      const span = frames[j - 1] - frames[i] + 1;
      const got = fs.readSync(fd, buffer, 0, span * 8, frames[i] * 8);
      if (got !== span * 8) return undefined;
      for (let k = i; k < j; k++) {
        const flags = buffer.readUInt32LE((frames[k] - frames[i]) * 8);
        if ((flags & KPF_ANON) !== 0 && (flags & KPF_SWAPBACKED) === 0) lazy++;
      }
      i = j;
    }
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
  return lazy;
}
