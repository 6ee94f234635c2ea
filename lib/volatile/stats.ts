// The arena's counters (a type of its own: the buffer updates them too, without importing the arena).

/** Counters kept incrementally: reading them costs nothing. Byte counts are whole pages. */
export interface ArenaStats {
  /** Bytes reserved (every region). pinned + unpinned + free + quarantined bytes = size. */
  size: number;
  /** Regions mapped: 1, plus those grown while freed spans waited in quarantine (unmapped again once wholly free). */
  regions: number;
  /** Bytes in pinned buffers. */
  pinnedBytes: number;
  /** Bytes in unpinned buffers: softUnpinnedBytes + volatileBytes. */
  unpinnedBytes: number;
  /** Bytes unpinned but not made volatile yet (userspace state only; the kernel cannot take them). heldBytes included. */
  softUnpinnedBytes: number;
  /**
   * Bytes of unpinned buffers that were due to become volatile but whose view is still
   * reachable (your code, a socket write to a slow reader, zlib, fs...): they stay ordinary
   * memory until it is collected. Part of softUnpinnedBytes.
   */
  heldBytes: number;
  /** Times a buffer due to become volatile was held back by a reachable view. */
  heldBuffers: number;
  /** Bytes of unpinned buffers made volatile (canaries written, MADV_FREE'd). */
  volatileBytes: number;
  /** Bytes free to allocate. */
  freeBytes: number;
  /** Freed bytes not MADV_FREE'd yet (freeDelayMs): ordinary dirty memory. Part of freeBytes. */
  pendingFreeBytes: number;
  /** Freed bytes waiting for their views to be garbage-collected (never reused or advised before). */
  quarantinedBytes: number;
  /** Regions mapped because an allocation fitted only in quarantined space. */
  grownRegions: number;
  /** Live buffers (pinned, unpinned or volatile). */
  buffers: number;
  /** alloc() calls that succeeded. */
  allocations: number;
  /** unpin() calls. */
  unpins: number;
  /** pin() calls. */
  pins: number;
  /** pin() calls of a buffer that never became volatile: no syscall, no CAS. */
  softPins: number;
  /** pin() calls that reported 'intact' (soft pins included). */
  intactPins: number;
  /** pin() calls that reported 'purged'. */
  purgedPins: number;
  /** Batches that made unpinned buffers volatile. */
  volatileBatches: number;
  /** Buffers made volatile by those batches. */
  madeVolatile: number;
  /** Bytes advised MADV_PAGEOUT by purge(). */
  purgedBytes: number;
  /** Bytes of freed spans MADV_DONTNEED'd (at once with decayMs 0, after the decay period, decayNow() or critical pressure). */
  decayedBytes: number;
  /** Memory-pressure signals handled. */
  pressureEvents: number;
  /** Garbage collections requested (on pressure while views held memory; see docs/ARENA.md). */
  collectionsRequested: number;
}
