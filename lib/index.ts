// pagewise: page-level memory control for Node.js on Linux.
import { Pagewise } from './api';
import { defaultPagewise as defaultInstance } from './default-pagewise';
import { selectBackend } from './select';

/** The backend in use: 'native' (the kernel) or 'simulator' (lib/simulator/). */
export const backend: 'native' | 'simulator' = defaultInstance.kind;
/** The system page size in bytes. */
export const pageSize: number = defaultInstance.pageSize;

export const map: Pagewise['map'] = (length, options) => defaultInstance.map(length, options);
export const mapFile: Pagewise['mapFile'] = (file, options) => defaultInstance.mapFile(file, options);
export const supports: Pagewise['supports'] = (advice) => defaultInstance.supports(advice);
export const fileResidency: Pagewise['fileResidency'] = (file, options) => defaultInstance.fileResidency(file, options);
export const evict: Pagewise['evict'] = (file, range) => defaultInstance.evict(file, range);
export const prefetch: Pagewise['prefetch'] = (file, range) => defaultInstance.prefetch(file, range);
export const createSharedMemory: Pagewise['createSharedMemory'] = (size, options) => defaultInstance.createSharedMemory(size, options);
export const supportsMappingNames: Pagewise['supportsMappingNames'] = () => defaultInstance.supportsMappingNames();

/** The Pagewise instance behind the functions above. */
export const pagewise: Pagewise = defaultInstance;

/** A Pagewise bound to a chosen backend (e.g. both side by side in tests). */
export function createPagewise(kind: 'native' | 'simulator'): Pagewise {
  return new Pagewise(selectBackend({ PAGEWISE_BACKEND: kind }));
}

export { Pagewise } from './api';
export { SharedMemory } from './shared-memory';
export type { SharedMemoryOptions } from './shared-memory';
export { TruncationWatch } from './truncation-watch';
export type { TruncationEvent } from './truncation-watch';
export type { ShortReadError, ShortWriteError } from './safe-copy';
export type { FileArgument, FileResidency, FileResidencyOptions, MapFileOptions, MapOptions } from './api';
export { ADVICE, ADVICE_NAMES } from './advice';
export type { Advice, AdviceInfo, DestructiveAdvice, SafeAdvice } from './advice';
export { Mapping, PROTECTION } from './mapping';
export type { AdvisedRange, FlushOptions, LockOptions, PageFlagsOptions, PopulateOptions, Protection, Residency } from './mapping';
export { PAGE_CATEGORY, PAGE_FLAGS, WriteTracker } from './page-flags';
export type { PageFlag, PageFlagsReport, PageRun } from './page-flags';
export type { Range } from './validate';
export type { Backend, BackendMapping, BackendWriteTracker, MapRequest, RawFileResidency, RawPageFlags } from './backend';
export type { CodedError, ErrnoError } from './errors';
export { VolatileArena, VolatileBuffer } from './volatile/arena';
export type { ArenaStats, BufferState, PinResult, VolatileArenaOptions } from './volatile/arena';
export { CacheHandle, VolatileCache } from './volatile/cache';
export type {
  CacheEntryInfo,
  CacheOutcome,
  CacheStats,
  Disposer,
  DisposeReason,
  FetchMethod,
  FetchOptions,
  FillProducer,
  GetOptions,
  Producer,
  SetOptions,
  VolatileCacheOptions,
} from './volatile/cache';
export { ownMemoryLimit } from './cgroup';
export type { MemoryLimit } from './cgroup';
export { MemoryPressureWatcher, watchMemoryPressure } from './pressure';
export type { PressureEvent, PressureLevel, PressureSource, PressureSourceInfo, PressureSourceKind, WatchMemoryPressureOptions } from './pressure';
export { type Releasable, releaseAfter } from './volatile/release-after';
export { memoryUsage } from './memory-usage';
export type { MappingMemoryUsage, MemoryFigures, MemoryUsage, ProcessMemoryUsage } from './memory-usage';
export { collectMetrics } from './metrics';
export type { MetricsCollector, MetricsOptions } from './metrics';
export { whenViewReleased } from './view-release';
