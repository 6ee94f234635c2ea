// What Mapping's methods take and return: protections, results, and each options
// object with its key list (checked against the interface by optionKeys).
import { PROT } from './constants';
import { optionKeys, type Range } from './validate';

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
export interface PageFlagsOptions extends Range {
  /** 'pagemap': read /proc/self/pagemap entries even where PAGEMAP_SCAN works (fewer flags). Default: the best the kernel has. */
  source?: 'pagemap-scan' | 'pagemap';
}
export interface LockOptions extends Range {
  /** mlock2(MLOCK_ONFAULT): lock pages as they are touched instead of faulting them all in now. */
  onFault?: boolean;
}

export const POPULATE_KEYS = optionKeys<PopulateOptions>()(['offset', 'length', 'mode'] as const);
export const FLUSH_KEYS = optionKeys<FlushOptions>()(['offset', 'length', 'invalidate'] as const);
export const LOCK_KEYS = optionKeys<LockOptions>()(['offset', 'length', 'onFault'] as const);
export const PAGE_FLAGS_KEYS = optionKeys<PageFlagsOptions>()(['offset', 'length', 'source'] as const);
