// Page arithmetic: the one home of rounding byte ranges to pages. Outward rounding
// (every page that holds a byte of the range) is for operations that keep data;
// inward rounding (only pages wholly inside the range) is for destructive ones, so
// that they never touch a byte outside the range the caller named, except that the
// tail page counts when the range reaches the end of the mapping or file (the bytes
// past the end of a file are not the caller's data; posix_fadvise(DONTNEED) does the same).

export function roundUp(n: number, page: number): number {
  return Math.ceil(n / page) * page;
}

export function roundDown(n: number, page: number): number {
  return Math.floor(n / page) * page;
}

// Rounding of a validated range [offset, offset + length) of a mapping of `size` bytes whose
// byte 0 is `delta` bytes into its region, to region bytes on page boundaries. Start and end
// are separate functions so that the per-call paths need no array.

/** Outward: the page holding the first byte. */
export function outwardStart(delta: number, offset: number, page: number): number {
  return roundDown(delta + offset, page);
}

/** Outward: past the page holding the last byte (`start` when the range is empty). */
export function outwardEnd(delta: number, offset: number, length: number, page: number, start: number): number {
  return length === 0 ? start : roundUp(delta + offset + length, page);
}

/** Inward: the first page boundary at or after the first byte. */
export function inwardStart(delta: number, offset: number, page: number): number {
  return roundUp(delta + offset, page);
}

/** Inward: the last page boundary at or before the end, or the end of the tail page when the range reaches the end of the mapping; never before `start`. */
export function inwardEnd(delta: number, offset: number, length: number, size: number, page: number, start: number): number {
  const rawEnd = delta + offset + length;
  const end = length > 0 && offset + length === size ? roundUp(rawEnd, page) : roundDown(rawEnd, page);
  return end > start ? end : start;
}
