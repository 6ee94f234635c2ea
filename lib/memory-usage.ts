// memoryUsage(): what this process's RSS holds, from /proc/self/status and /proc/self/smaps,
// and how much of it the kernel can take back without losing data (LazyFree pages and clean
// file pages). Also per-mapping figures for the live mappings pagewise made (found by address).
//
// The figures are always this process's, read from the kernel: on the simulator backend they
// are still real (the simulator's mappings are ordinary JavaScript memory, counted in the
// process figures), and simulator mappings are not listed per mapping, only counted in
// `simulatedMappings`: pagewise never presents a simulated figure as this machine's.
import * as fs from 'node:fs';
import type { Mapping } from './mapping';

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
  supported: true;
  /** Resident file-backed pages (RssFile), clean or dirty. */
  file: number;
  /** Resident shared memory (RssShmem: MAP_SHARED anonymous, memfd, tmpfs): not droppable without swap. */
  shmem: number;
  /** Live native mappings made by pagewise, with their share of the figures. */
  mappings: MappingMemoryUsage[];
  /** Live simulator mappings: ordinary JavaScript memory, inside the process figures, not listed. */
  simulatedMappings: number;
}

export type MemoryUsage = ProcessMemoryUsage | { supported: false; reason: string };

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
  readonly kind: Mapping['kind'];
  readonly pageSize: number;
}
const native = new Map<bigint, MappingRecord>();
const simulated = new Set<MappingRecord>();
const recordOf = new WeakMap<Mapping, MappingRecord>();
const collected = new FinalizationRegistry<MappingRecord>((record) => simulated.delete(record));

function forget(record: MappingRecord): void {
  if (record.address === undefined) simulated.delete(record);
  else if (native.get(record.address) === record) native.delete(record.address);
}

/** @internal Called by Pagewise for every mapping it makes. */
export function trackMapping(mapping: Mapping): void {
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
export function mappingChanged(mapping: Mapping): void {
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

const KiB = 1024;
// Pathnames of shared-memory VMAs: their clean pages are not droppable file pages.
const SHMEM_PATH = /^\/(dev\/zero|dev\/shm\/|memfd:|SYSV|drm mm object)/;

interface Vma {
  start: bigint;
  end: bigint;
  fileBacked: boolean;
  fields: Map<string, number>;
}

function emptyFigures(): MemoryFigures {
  return { rss: 0, anonymous: 0, lazyFree: 0, cleanFile: 0, anonHugePages: 0, swap: 0, locked: 0, effective: 0 };
}

function addVma(into: MemoryFigures, vma: Vma): void {
  const f = (key: string) => (vma.fields.get(key) ?? 0) * KiB;
  const anonymous = f('Anonymous');
  into.rss += f('Rss');
  into.anonymous += anonymous;
  into.lazyFree += f('LazyFree');
  into.anonHugePages += f('AnonHugePages');
  into.swap += f('Swap');
  into.locked += f('Locked');
  if (vma.fileBacked) {
    // Clean pages of a file mapping, less any anonymous (copy-on-write) pages among them:
    // an anonymous page is never counted as droppable here, even if clean.
    const clean = f('Shared_Clean') + f('Private_Clean');
    into.cleanFile += clean - Math.min(anonymous, clean);
  }
}

function finish<T extends MemoryFigures>(figures: T): T {
  figures.effective = Math.max(0, figures.rss - figures.lazyFree - figures.cleanFile);
  return figures;
}

function parseSmaps(text: string): Vma[] {
  const vmas: Vma[] = [];
  let current: Vma | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const pathname = head[4];
      current = {
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        fileBacked: head[3] !== '0' && pathname.startsWith('/') && !SHMEM_PATH.test(pathname),
        fields: new Map(),
      };
      vmas.push(current);
      continue;
    }
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (field && current) current.fields.set(field[1], Number(field[2]));
  }
  return vmas;
}

function statusField(status: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status);
  return m ? Number(m[1]) * KiB : 0;
}

/**
 * This process's memory from the kernel's own accounting (/proc/self/status, /proc/self/smaps).
 * `effective` = rss - lazyFree - cleanFile is what a memory limit really has to hold; rss also
 * counts pages the kernel can take back at any moment. Reads every VMA's figures: a few
 * milliseconds in a process with thousands of mappings (do not call it per request).
 */
export function memoryUsage(): MemoryUsage {
  let status: string;
  let smaps: string;
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
    smaps = fs.readFileSync('/proc/self/smaps', 'utf8');
  } catch (err) {
    return { supported: false, reason: `cannot read /proc/self/status and /proc/self/smaps (${(err as Error).message})` };
  }
  const vmas = parseSmaps(smaps);
  const total = emptyFigures();
  for (const vma of vmas) addVma(total, vma);
  const file = statusField(status, 'RssFile');
  // Shared memory on tmpfs can look file-backed by its path; RssFile never includes shmem.
  total.cleanFile = Math.min(total.cleanFile, file);
  const mappings: MappingMemoryUsage[] = [];
  const simulatedMappings = simulated.size;
  for (const [address, mapping] of native) {
    const page = BigInt(mapping.pageSize);
    const start = address - (address % page);
    const end = ((address + BigInt(mapping.length) + page - 1n) / page) * page;
    const figures = emptyFigures();
    let count = 0;
    for (const vma of vmas) {
      if (vma.end <= start || vma.start >= end) continue;
      addVma(figures, vma);
      count++;
    }
    if (count === 0) {
      native.delete(address); // collected unclosed: the addon unmapped it
      continue;
    }
    mappings.push(finish({ ...figures, name: mapping.name, kind: mapping.kind, address, length: mapping.length, vmas: count }));
  }
  return finish({
    supported: true as const,
    ...total,
    rss: statusField(status, 'VmRSS') || total.rss,
    anonymous: statusField(status, 'RssAnon') || total.anonymous,
    file,
    shmem: statusField(status, 'RssShmem'),
    swap: statusField(status, 'VmSwap') || total.swap,
    mappings,
    simulatedMappings,
  });
}
