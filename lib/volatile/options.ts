// The volatile layer's options: the arena's keys, types and defaults (one home;
// the cache derives its own from these).
import type { Pagewise } from '../api';
import type { PressureSource } from '../pressure';

export interface VolatileArenaOptions {
  /** Bytes to reserve (rounded up to whole pages). Virtual only: MAP_NORESERVE. Default 256 MiB. */
  size?: number;
  /**
   * Name of the arena's mapping in /proc/<pid>/maps (`[anon:<name>]`) where the kernel names
   * anonymous memory (supportsMappingNames()); never fails the arena. Default 'pagewise-arena'.
   */
  name?: string;
  /**
   * How long an unpinned buffer stays a userspace-only state before its span is
   * made volatile (canaries + MADV_FREE), in milliseconds. Pinning it within that
   * time costs no syscall. 0 = volatile at once on unpin(); -1 = only by
   * `unpinMaxBytes`, flush(), purge() or memory pressure. Default 50.
   */
  unpinDelayMs?: number;
  /**
   * Most bytes that may sit unpinned-but-not-volatile (and, separately, freed but
   * not yet MADV_FREE'd): over it, the least recently unpinned are made volatile at
   * once, down to 7/8 of it. This bounds what the kernel cannot reclaim even when
   * no timer runs (a long synchronous loop). Default: 1/16 of the memory this
   * process may use (the smallest cgroup memory.max / memory.high / v1 limit on
   * its path, else the machine's RAM), read when the arena is made.
   */
  unpinMaxBytes?: number;
  /**
   * How long a freed span stays MADV_FREE'd (cheap to reuse) before it is
   * MADV_DONTNEED'd so RSS really goes down, in milliseconds (jemalloc's decay).
   * 0 = DONTNEED at once on free; -1 = never (MADV_FREE only). Default 10 000.
   */
  decayMs?: number;
  /**
   * How long a freed span stays ordinary dirty memory before it is MADV_FREE'd, in
   * milliseconds (jemalloc's dirty_decay_ms). A span reused within that window costs
   * no syscall at all. 0 = MADV_FREE at once on free. Default 50. The decayMs clock
   * starts at free() either way.
   */
  freeDelayMs?: number;
  /** Zero-fill: new allocations and pins that report 'purged' read as all zeros. Default false (content unspecified). */
  zero?: boolean;
  /**
   * Debugging: unpin() forgets the view (a re-pin makes a new one) and the span becomes volatile as
   * soon as that view is collected (as with unpinDelayMs 0). Nothing is ever detached. Default false.
   */
  strict?: boolean;
  /**
   * A freed span whose view is still reachable (your code, or Node's async work: a socket write
   * to a slow reader, zlib, fs, crypto) is not advised or handed out again until every view made
   * over it was garbage-collected; meanwhile alloc() takes other free space and, when nothing
   * else fits, maps another region rather than fail (docs/ARENA.md, "The one rule"). false: free()
   * hands the span on at once even then (nothing is detached; an old view would show the next
   * owner's bytes) — only for code that never lets a view outlive free(). Default true.
   */
  quarantine?: boolean;
  /** Memory-pressure signal to follow (see handlePressure()); listened to until close(). */
  pressure?: PressureSource;
  /** The Pagewise instance (backend) to use. Default: the package's. */
  pagewise?: Pagewise;
}

/** Every key of VolatileArenaOptions: any other is a typo, refused. */
export const ARENA_OPTION_KEYS = Object.freeze([
  'size',
  'name',
  'unpinDelayMs',
  'unpinMaxBytes',
  'decayMs',
  'freeDelayMs',
  'zero',
  'strict',
  'quarantine',
  'pressure',
  'pagewise',
] as const satisfies ReadonlyArray<keyof VolatileArenaOptions>);

export const DEFAULT_SIZE = 256 * 1024 * 1024;
export const DEFAULT_DECAY_MS = 10_000;
export const DEFAULT_UNPIN_DELAY_MS = 50;
export const DEFAULT_FREE_DELAY_MS = 50;
/** Share of the process's memory limit that may stay unpinned but not volatile. */
export const DEFAULT_UNPIN_SHARE = 1 / 16;
