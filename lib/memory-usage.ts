// memoryUsage(): what this process's RSS holds, from /proc/self/status and /proc/self/smaps,
// and how much of it the kernel can take back without losing data (LazyFree pages and clean
// file pages). Also per-mapping figures for the live mappings pagewise made (found by address).
//
// The figures are always this process's, read from the kernel: on the simulator backend they
// are still real (the simulator's mappings are ordinary JavaScript memory, counted in the
// process figures), and simulator mappings are not listed per mapping, only counted in
// `simulatedMappings`: pagewise never presents a simulated figure as this machine's.
import { pagewiseError } from './errors';
import { readPagemap, readSmaps, readStatus, type SmapsVma } from './proc';

/** Figures for one range of memory, in bytes. */
export interface MemoryFigures {
  /** Resident (in RAM), LazyFree included. */
  rss: number;
  /** Resident anonymous pages (LazyFree included). */
  anonymous: number;
  /** Pages marked MADV_FREE and not yet reclaimed: resident and counted in rss, but the kernel takes them back without I/O whenever it needs memory. */
  lazyFree: number;
  /** Resident file pages not modified since read (droppable: the file has them). */
  cleanFile: number;
  /** Anonymous pages in transparent huge pages. */
  anonHugePages: number;
  /** Swapped out (not in rss). */
  swap: number;
  /** Locked (mlock). */
  locked: number;
  /** rss - lazyFree - cleanFile: what the kernel cannot take back without losing data or writing it out. */
  effective: number;
}

/** One of pagewise's own live mappings (native backend). */
export interface MappingMemoryUsage extends MemoryFigures {
  /** The mapping's name (map(length, { name })), if the kernel took it. */
  name: string | undefined;
  kind: 'anonymous' | 'file';
  /** Address of byte 0 in this process. */
  address: bigint;
  /** Bytes mapped. */
  length: number;
  /** Kernel VMAs the mapping is made of (advice and protection split it). */
  vmas: number;
}

export interface ProcessMemoryUsage extends MemoryFigures {
  /** Always true: where the figures cannot be read, memoryUsage() throws ERR_MEMORY_USAGE_UNSUPPORTED. Kept for code written against the earlier union type. */
  supported: true;
  /** Resident file-backed pages (RssFile), clean or dirty. */
  file: number;
  /** Resident shared memory (RssShmem: MAP_SHARED anonymous, memfd, tmpfs): not droppable without swap. */
  shmem: number;
  /**
   * Live native mappings made by pagewise, with their share of the figures. Where the kernel
   * merged a mapping's VMA with a neighbour (adjacent mappings with the same flags), the
   * mapping's rss, anonymous and swap are its own pages (from /proc/self/pagemap), and so is
   * lazyFree where the process may read /proc/kpageflags (CAP_SYS_ADMIN) and the mapping has at
   * most 64 MiB of anonymous pages in that VMA; otherwise lazyFree,
   * and always cleanFile, anonHugePages and locked, are the VMA's figures shared out in
   * proportion. `vmas` counts a merged VMA once for each mapping in it.
   */
  mappings: MappingMemoryUsage[];
  /** Live simulator mappings: ordinary JavaScript memory, inside the process figures, not listed. */
  simulatedMappings: number;
}

/** What memoryUsage() returns. */
export type MemoryUsage = ProcessMemoryUsage;

// Live mappings made through Pagewise.map()/mapFile(), as plain records that do not
// reference the Mapping: a WeakRef would keep every mapping made in one synchronous
// stretch alive until that job ends (ECMAScript's KeepDuringJob), and a closed mapping
// keeps its address range until it is collected; a FinalizationRegistry entry per
// mapping measurably grows the heap of a program that maps in a loop (soak test).
// Mapping updates its record on resize() and drops it on close(). A native mapping that
// is collected unclosed is unmapped by the addon: its record is replaced when a new
// mapping gets the address, or pruned by memoryUsage() when no VMA is left there.
// Simulator mappings have no address: they are only counted, and the FinalizationRegistry
// keeps that count right (the simulator is not the hot path of a service).
interface MappingRecord {
  address: bigint | undefined;
  length: number;
  readonly name: string | undefined;
  readonly kind: MappingMemoryUsage['kind'];
  readonly pageSize: number;
}
/** What this module reads of a Mapping (structurally: mapping.ts imports this module, not the reverse). */
interface TrackedMapping {
  readonly address: bigint | undefined;
  readonly length: number;
  readonly name: string | undefined;
  readonly kind: MappingMemoryUsage['kind'];
  readonly pageSize: number;
  readonly closed: boolean;
}
const native = new Map<bigint, MappingRecord>();
const simulated = new Set<MappingRecord>();
const recordOf = new WeakMap<TrackedMapping, MappingRecord>();
const collected = new FinalizationRegistry<MappingRecord>((record) => simulated.delete(record));

function forget(record: MappingRecord): void {
  if (record.address === undefined) simulated.delete(record);
  else if (native.get(record.address) === record) native.delete(record.address);
}

/** @internal Called by Pagewise for every mapping it makes. */
export function trackMapping(mapping: TrackedMapping): void {
  const record: MappingRecord = {
    address: mapping.address,
    length: mapping.length,
    name: mapping.name,
    kind: mapping.kind,
    pageSize: mapping.pageSize,
  };
  recordOf.set(mapping, record);
  if (record.address !== undefined) {
    native.set(record.address, record);
  } else {
    simulated.add(record);
    collected.register(mapping, record, record);
  }
}

/** @internal Called by Mapping after resize() and close(). */
export function mappingChanged(mapping: TrackedMapping): void {
  const record = recordOf.get(mapping);
  if (record === undefined) return;
  forget(record);
  if (mapping.closed) {
    recordOf.delete(mapping);
    if (record.address === undefined) collected.unregister(record);
    return;
  }
  record.address = mapping.address;
  record.length = mapping.length;
  if (record.address !== undefined) native.set(record.address, record);
  else simulated.add(record);
}

// Pathnames of shared-memory VMAs: their clean pages are not droppable file pages.
const SHMEM_PATH = /^\/(dev\/zero|dev\/shm\/|memfd:|SYSV|drm mm object)/;

function emptyFigures(): MemoryFigures {
  return { rss: 0, anonymous: 0, lazyFree: 0, cleanFile: 0, anonHugePages: 0, swap: 0, locked: 0, effective: 0 };
}

/** One VMA's figures from its smaps fields. */
function vmaFigures(vma: SmapsVma): MemoryFigures {
  const f = (key: string) => vma.fields.get(key) ?? 0;
  const anonymous = f('Anonymous');
  let cleanFile = 0;
  if (vma.inode && vma.pathname.startsWith('/') && !SHMEM_PATH.test(vma.pathname)) {
    // Private_Clean / Shared_Clean count the file pages and any clean anonymous ones (an
    // anonymous page is clean only while a swap copy backs it): those are the anonymous
    // pages beyond the dirty ones. Copy-on-write copies are dirty and never in Private_Clean.
    const clean = f('Shared_Clean') + f('Private_Clean');
    const cleanAnonymous = Math.max(0, anonymous - f('Shared_Dirty') - f('Private_Dirty'));
    cleanFile = clean - Math.min(cleanAnonymous, clean);
  }
  return {
    rss: f('Rss'),
    anonymous,
    lazyFree: f('LazyFree'),
    cleanFile,
    anonHugePages: f('AnonHugePages'),
    swap: f('Swap'),
    locked: f('Locked'),
    effective: 0,
  };
}

function add(into: MemoryFigures, figures: MemoryFigures): void {
  into.rss += figures.rss;
  into.anonymous += figures.anonymous;
  into.lazyFree += figures.lazyFree;
  into.cleanFile += figures.cleanFile;
  into.anonHugePages += figures.anonHugePages;
  into.swap += figures.swap;
  into.locked += figures.locked;
}

/**
 * The figures of the part [start, end) of a VMA that also holds other memory (the kernel
 * merged adjacent mappings): resident, anonymous and swapped pages counted page by page
 * in /proc/self/pagemap, LazyFree page by page in /proc/kpageflags where this process may
 * read it (CAP_SYS_ADMIN); the figures with no per-page source shared out in proportion to
 * the pages they apply to (LazyFree otherwise and AnonHugePages to anonymous pages, clean
 * file pages to file pages, Locked to resident pages). Without pagemap, by length.
 */
function partOfVma(whole: MemoryFigures, start: bigint, end: bigint, vmaLength: number, pageSize: number): MemoryFigures {
  const pages = Number((end - start) / BigInt(pageSize));
  const share = (value: number, part: number, of: number) =>
    of <= 0 ? 0 : Math.min(value, Math.round((value * part) / of / pageSize) * pageSize);
  const counts = readPagemap(start, pages, pageSize, whole.lazyFree > 0);
  if (counts === undefined) {
    const length = pages * pageSize;
    const part = emptyFigures();
    for (const key of ['rss', 'anonymous', 'lazyFree', 'cleanFile', 'anonHugePages', 'swap', 'locked'] as const) {
      part[key] = share(whole[key], length, vmaLength);
    }
    return part;
  }
  const rss = counts.present * pageSize;
  const anonymous = counts.anonymous * pageSize;
  const file = counts.file * pageSize;
  return {
    rss,
    anonymous,
    lazyFree: counts.lazyFree !== undefined ? counts.lazyFree * pageSize : Math.min(anonymous, share(whole.lazyFree, anonymous, whole.anonymous)),
    cleanFile: Math.min(file, share(whole.cleanFile, file, whole.rss - whole.anonymous)),
    anonHugePages: Math.min(anonymous, share(whole.anonHugePages, anonymous, whole.anonymous)),
    swap: counts.swapped * pageSize,
    locked: Math.min(rss, share(whole.locked, rss, whole.rss)),
    effective: 0,
  };
}

function finish<T extends MemoryFigures>(figures: T): T {
  figures.effective = Math.max(0, figures.rss - figures.lazyFree - figures.cleanFile);
  return figures;
}

/**
 * This process's memory from the kernel's own accounting (/proc/self/status, /proc/self/smaps).
 * `effective` = rss - lazyFree - cleanFile is what a memory limit really has to hold; rss also
 * counts pages the kernel can take back at any moment. Reads every VMA's figures: a few
 * milliseconds in a process with thousands of mappings (do not call it per request).
 * Throws ERR_MEMORY_USAGE_UNSUPPORTED where /proc/self/status or /proc/self/smaps cannot be
 * read (not Linux, /proc not mounted).
 */
export function memoryUsage(): ProcessMemoryUsage {
  let status: Map<string, number>;
  let vmas: SmapsVma[];
  try {
    status = readStatus();
    vmas = readSmaps();
  } catch (err) {
    const e = pagewiseError(
      'ERR_MEMORY_USAGE_UNSUPPORTED',
      `memoryUsage() needs /proc/self/status and /proc/self/smaps (${(err as Error).message})`,
    );
    (e as Error & { cause?: unknown }).cause = err;
    throw e;
  }
  const figures = vmas.map(vmaFigures);
  const total = emptyFigures();
  for (const f of figures) add(total, f);
  const file = status.get('RssFile') ?? 0;
  // Shared memory on tmpfs can look file-backed by its path; RssFile never includes shmem.
  total.cleanFile = Math.min(total.cleanFile, file);
  const mappings: MappingMemoryUsage[] = [];
  const simulatedMappings = simulated.size;
  for (const [address, mapping] of native) {
    const page = BigInt(mapping.pageSize);
    const start = address - (address % page);
    const end = ((address + BigInt(mapping.length) + page - 1n) / page) * page;
    const own = emptyFigures();
    let count = 0;
    for (let i = 0; i < vmas.length; i++) {
      const vma = vmas[i];
      if (vma.end <= start || vma.start >= end) continue;
      count++;
      if (vma.start >= start && vma.end <= end) add(own, figures[i]);
      else {
        const from = vma.start > start ? vma.start : start;
        const to = vma.end < end ? vma.end : end;
        add(own, partOfVma(figures[i], from, to, Number(vma.end - vma.start), mapping.pageSize));
      }
    }
    if (count === 0) {
      native.delete(address); // collected unclosed: the addon unmapped it
      continue;
    }
    mappings.push(finish({ ...own, name: mapping.name, kind: mapping.kind, address, length: mapping.length, vmas: count }));
  }
  return finish({
    supported: true as const,
    ...total,
    rss: status.get('VmRSS') || total.rss,
    anonymous: status.get('RssAnon') || total.anonymous,
    file,
    shmem: status.get('RssShmem') ?? 0,
    swap: status.get('VmSwap') || total.swap,
    mappings,
    simulatedMappings,
  });
}
