// Residency vectors (one byte per page) too large for the scratch vector: their size
// limit and their allocation, each failure a coded RangeError.
import { outOfRange } from './errors';

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
export function residencyVector(count: number, bytes: number, page: number): Uint8Array {
  checkResidencyVector(count, bytes, page);
  try {
    return new Uint8Array(count);
  } catch {
    throw outOfRange('range.length', `${residencyLimit(page)}; ${count} bytes could not be allocated`, bytes);
  }
}
