// Memory-pressure events: watchMemoryPressure() emits 'pressure' ({ level, source })
// when the kernel reports memory pressure for this process, from every source it finds:
//   - cgroup v1 memory.pressure_level (vmpressure) through cgroup.event_control + eventfd,
//   - cgroup v2 memory.pressure (PSI trigger) and memory.events (high / max / oom counters),
//   - system-wide PSI, /proc/pressure/memory (trigger; POLLPRI).
// One native thread per watcher waits in poll(2) (native/pressure.cc); it is unref'd, so a
// watcher never keeps the process alive. Where no source exists, `supported` is false with
// the reason, and raise() still delivers synthetic events (tests, the simulator).
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Pagewise } from './api';
import { invalidArgType, invalidArgValue, kernelError, type ErrnoError } from './errors';
import { loadNativeAddon } from './native';
import { ownCgroups, ownMemoryLimit } from './cgroup';
import { optionKeys, validateInteger, validateObject, validateOneOf } from './validate';

export type PressureLevel = 'moderate' | 'critical';
export interface PressureEvent {
  level: PressureLevel;
  /** Which source reported it: 'cgroup-v1', 'cgroup-v2-psi', 'cgroup-v2-events', 'psi' or 'synthetic' (raise()). */
  source: string;
  /**
   * When the kernel's notification woke the watcher thread, in milliseconds of the monotonic
   * clock (Number(process.hrtime.bigint()) / 1e6 compares with it). Absent for raise().
   */
  detectedAt?: number;
}
/** Anything that emits 'pressure' events, e.g. the watcher from watchMemoryPressure(). */
export interface PressureSource {
  on(event: 'pressure', listener: (e: PressureEvent) => void): unknown;
  off(event: 'pressure', listener: (e: PressureEvent) => void): unknown;
}

export type PressureSourceKind = 'cgroup-v1' | 'cgroup-v1-usage' | 'cgroup-v2-psi' | 'cgroup-v2-events' | 'psi';
const PRESSURE_SOURCE_KINDS: readonly PressureSourceKind[] = [
  'cgroup-v1',
  'cgroup-v1-usage',
  'cgroup-v2-psi',
  'cgroup-v2-events',
  'psi',
];

/** vmpressure levels of cgroup v1 (memory.pressure_level). */
type VmpressureLevel = 'low' | 'medium' | 'critical';

export interface WatchMemoryPressureOptions {
  /** Stops the watcher when aborted (like close()). */
  signal?: AbortSignal;
  /**
   * 'auto' (default): every cgroup source found for this process, and system-wide PSI unless
   * the process has its own memory limit (then the host's stalls, other tenants' too, are not
   * its pressure). 'synthetic': none, only raise(). Or a list of kinds to try.
   */
  sources?: 'auto' | 'synthetic' | readonly PressureSourceKind[];
  /** A simulator instance has no kernel to ask: its watcher is synthetic (raise() only). */
  pagewise?: Pagewise;
  /**
   * PSI trigger lines ("<some|full> <stall µs> <window µs>") for /proc/pressure/memory and
   * the cgroup v2 memory.pressure, or false to skip that level. Defaults: moderate
   * 'some 150000 1000000' (tasks stalled 150 ms within 1 s), critical 'full 150000 1000000'.
   * Without CAP_SYS_RESOURCE only windows that are multiples of 2 s are allowed (Linux 6.4+;
   * the kernel answers EINVAL or EPERM): the window is then rounded up to one and the trigger
   * retried once (see `notes`).
   */
  psi?: { moderate?: string | false; critical?: string | false };
  /**
   * cgroup v1 vmpressure level for each event level, or false to skip. Defaults: moderate
   * 'low' (the cgroup is reclaiming), critical 'medium' (reclaim is struggling). 'critical'
   * rarely fires before the OOM killer when the reclaimable memory is lazy-free.
   */
  vmpressure?: { moderate?: VmpressureLevel | false; critical?: VmpressureLevel | false };
  /**
   * cgroup v1 with a memory limit: 'critical' when memory.usage_in_bytes rises to this many
   * bytes below memory.limit_in_bytes (a usage threshold through cgroup.event_control).
   * Default: 10 % of the limit, at least 8 MiB. false to skip. vmpressure only reports
   * reclaim it can do: a cgroup of anonymous memory without swap goes from no event to the
   * OOM killer, and only this threshold warns of it.
   */
  usageHeadroom?: number | false;
}

/** One source the watcher listens to. */
export interface PressureSourceInfo {
  kind: PressureSourceKind;
  /** The file watched. */
  path: string;
  /** What fires which level, e.g. 'some 150000 1000000 -> moderate'. */
  detail: string;
}

interface Registered {
  kind: PressureSourceKind;
  /** Level for every readiness (eventfd / PSI); undefined for memory.events (diffed). */
  level?: PressureLevel;
  /** memory.events counters seen last. */
  counters?: Map<string, number>;
  /** cgroup v1 usage threshold: the usage file and the threshold (events fire both ways). */
  usage?: { file: string; threshold: number };
}

interface NativeWatch {
  add(kind: number, path: string, arg: string): string | undefined;
  start(): void;
  close(): void;
}
type NativeWatchCtor = new (callback: (index: number, gone: boolean, text: string | undefined, wokeMs: number) => void) => NativeWatch;

/** native/pressure.cc source kinds: 0 eventfd through cgroup.event_control, 1 PSI trigger, 2 kernfs change. */
const KIND_CODE = { 'cgroup-v1': 0, psi: 1, kernfs: 2 } as const;
const DEFAULT_PSI = { moderate: 'some 150000 1000000', critical: 'full 150000 1000000' } as const;
const DEFAULT_VMPRESSURE = { moderate: 'low', critical: 'medium' } as const;
const LEVELS: readonly PressureLevel[] = ['moderate', 'critical'];

/** Parses memory.events ("high 3\nmax 0\n..."). */
function parseCounters(text: string): Map<string, number> {
  const counters = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    if (key && value !== undefined) counters.set(key, Number(value));
  }
  return counters;
}

/** "some 150000 1500000" -> the same with the window rounded up to a multiple of 2 s. */
function widenWindow(trigger: string): string | undefined {
  const parts = trigger.trim().split(/\s+/);
  if (parts.length !== 3) return undefined;
  const window = Number(parts[2]);
  if (!Number.isFinite(window)) return undefined;
  const widened = Math.max(2_000_000, Math.ceil(window / 2_000_000) * 2_000_000);
  if (widened === window) return undefined;
  return `${parts[0]} ${parts[1]} ${widened}`;
}

function readNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Emits 'pressure' ({ level, source }) when the kernel reports memory pressure. Create it
 * with watchMemoryPressure(). close() (or the AbortSignal) stops it; it never keeps the
 * process alive. A listener that throws makes an uncaught exception, as with any emitter.
 */
export class MemoryPressureWatcher extends EventEmitter implements PressureSource, Disposable {
  /** Whether at least one kernel source is being watched. */
  readonly supported: boolean;
  /** Why not, when unsupported. */
  readonly reason: string | undefined;
  /** The kernel sources watched. */
  readonly sources: readonly PressureSourceInfo[];
  /** Fallbacks taken and sources that could not be used, with the kernel's answer. */
  readonly notes: string[] = [];
  /** Events delivered so far, per level (synthetic ones included). */
  readonly counts: Record<PressureLevel, number> = { moderate: 0, critical: 0 };
  #native: NativeWatch | undefined;
  #closed = false;
  #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.close();

  /** @internal Use watchMemoryPressure(). */
  constructor(options: WatchMemoryPressureOptions) {
    super();
    const sources: PressureSourceInfo[] = [];
    this.sources = sources;
    let reason: string | undefined;
    const wanted = options.sources ?? 'auto';
    if (options.pagewise !== undefined && options.pagewise.kind === 'simulator') {
      reason = 'a simulator instance has no kernel to report pressure: synthetic events only (raise())';
    } else if (wanted === 'synthetic') {
      reason = 'synthetic watcher: events only through raise()';
    } else if (process.platform !== 'linux') {
      reason = `memory-pressure notifications need Linux (this is ${process.platform})`;
    } else {
      let Ctor: NativeWatchCtor | undefined;
      try {
        Ctor = (loadNativeAddon() as unknown as { PressureWatch?: NativeWatchCtor }).PressureWatch;
        if (Ctor === undefined) reason = 'the loaded native addon has no PressureWatch (an older build?)';
      } catch (err) {
        reason = `the native addon is unavailable (${message(err)})`;
      }
      if (Ctor !== undefined) {
        const registered: Registered[] = [];
        const watch = new Ctor((index, gone, text, wokeMs) => {
          try {
            this.#onNative(registered, index, gone, text, wokeMs);
          } catch (err) {
            // A throwing listener: an uncaught exception, as from any emitter. Thrown from here it
            // would reach N-API, which (Node 20, N-API 8) only prints a deprecation warning.
            process.nextTick(() => {
              throw err;
            });
          }
        });
        try {
          this.#register(watch, options, wanted === 'auto' ? PRESSURE_SOURCE_KINDS : wanted, registered, sources, wanted === 'auto');
        } catch (err) {
          watch.close();
          throw err;
        }
        if (registered.length === 0) {
          watch.close();
          reason =
            this.notes.length > 0
              ? `no usable memory-pressure source: ${this.notes.join('; ')}`
              : 'no memory-pressure source found (no PSI, no memory cgroup)';
        } else {
          watch.start();
          this.#native = watch;
        }
      }
    }
    this.supported = this.#native !== undefined;
    this.reason = reason;
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.close();
      else {
        this.#signal = signal;
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Deliver a synthetic event (tests, the simulator, or an application's own signal). */
  raise(level: PressureLevel, source = 'synthetic'): void {
    validateOneOf('level', level, LEVELS);
    if (typeof source !== 'string') throw invalidArgType('source', 'of type string', source);
    if (this.#closed) return;
    this.#emit(level, source);
  }

  /** Stop watching: the thread ends and every descriptor is closed. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native?.close();
    this.#native = undefined;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #emit(level: PressureLevel, source: string, detectedAt?: number): void {
    this.counts[level]++;
    const event: PressureEvent = detectedAt === undefined ? { level, source } : { level, source, detectedAt };
    this.emit('pressure', event);
  }

  #onNative(registered: Registered[], index: number, gone: boolean, text: string | undefined, wokeMs: number): void {
    if (this.#closed) return;
    const r = registered[index];
    if (r === undefined) return;
    if (gone) {
      this.notes.push(`${r.kind}: the source went away (cgroup or file removed)`);
      return;
    }
    if (r.counters !== undefined) {
      if (text === undefined) return;
      const now = parseCounters(text);
      const rose = (key: string) => (now.get(key) ?? 0) > (r.counters!.get(key) ?? 0);
      // max / oom: at the hard limit; high: throttled over memory.high.
      const level: PressureLevel | undefined =
        rose('max') || rose('oom') || rose('oom_kill') ? 'critical' : rose('high') ? 'moderate' : undefined;
      r.counters = now;
      if (level !== undefined) this.#emit(level, r.kind, wokeMs);
      return;
    }
    if (r.usage !== undefined) {
      // The threshold fires when usage crosses it either way: only rising counts.
      const now = readNumber(r.usage.file);
      if (now === undefined || now < r.usage.threshold) return;
    }
    if (r.level !== undefined) this.#emit(r.level, r.kind, wokeMs);
  }

  #register(
    watch: NativeWatch,
    options: WatchMemoryPressureOptions,
    kinds: readonly PressureSourceKind[],
    registered: Registered[],
    sources: PressureSourceInfo[],
    auto: boolean,
  ): void {
    const psi = { ...DEFAULT_PSI, ...options.psi };
    const vm = { ...DEFAULT_VMPRESSURE, ...options.vmpressure };
    const cgroups = ownCgroups();
    const add = (
      kind: PressureSourceKind,
      code: number,
      file: string,
      arg: string,
      detail: string,
      extra: Partial<Registered>,
      shown = file,
    ) => {
      let text: string | undefined;
      try {
        text = watch.add(code, file, arg);
      } catch (err) {
        throw kernelError(err); // the addon reports { errno, syscall }: make it `EINVAL: invalid argument, write`
      }
      registered.push({ kind, ...extra, ...(extra.counters !== undefined ? { counters: parseCounters(text ?? '') } : {}) });
      sources.push({ kind, path: shown, detail });
    };
    const psiTriggers = (kind: PressureSourceKind, file: string) => {
      if (!fs.existsSync(file)) {
        this.notes.push(`${kind}: ${file} does not exist (kernel without PSI, or psi=0)`);
        return;
      }
      for (const level of LEVELS) {
        const trigger = psi[level];
        if (trigger === false) continue;
        try {
          add(kind, KIND_CODE.psi, file, trigger, `${trigger} -> ${level}`, { level });
        } catch (err) {
          const code = (err as ErrnoError).code;
          // Without CAP_SYS_RESOURCE the window must be a multiple of 2 s: the kernel says
          // EINVAL (EPERM in some versions); retry once with a widened window.
          const wider = code === 'EPERM' || code === 'EINVAL' ? widenWindow(trigger) : undefined;
          if (wider !== undefined) {
            // Unprivileged triggers need a window that is a multiple of 2 s.
            try {
              add(kind, KIND_CODE.psi, file, wider, `${wider} -> ${level}`, { level });
              this.notes.push(`${kind}: '${trigger}' refused (${code}: no CAP_SYS_RESOURCE?); using '${wider}'`);
              continue;
            } catch (again) {
              this.notes.push(`${kind}: '${wider}' refused too (${message(again)})`);
              continue;
            }
          }
          this.notes.push(`${kind}: trigger '${trigger}' on ${file} refused (${message(err)})`);
        }
      }
    };
    for (const kind of kinds) {
      if (kind === 'psi' && auto && registered.length > 0 && ownMemoryLimit() !== undefined) {
        // The host's stalls (other tenants') say little about a process under its own memory limit.
        this.notes.push('psi: not used (auto): this process has its own memory limit and its cgroup sources');
        continue;
      }
      if (kind === 'psi') psiTriggers(kind, '/proc/pressure/memory');
      else if (kind === 'cgroup-v2-psi') {
        if (cgroups.v2 === undefined) this.notes.push('cgroup-v2-psi: this process is in no cgroup v2 hierarchy');
        else if (!fs.existsSync(path.join(cgroups.v2, 'memory.max'))) {
          // The root cgroup (no memory.max) reports the same as /proc/pressure/memory.
          this.notes.push(`cgroup-v2-psi: ${cgroups.v2} is a root cgroup or has no memory controller`);
        } else psiTriggers(kind, path.join(cgroups.v2, 'memory.pressure'));
      } else if (kind === 'cgroup-v2-events') {
        const file = cgroups.v2 === undefined ? undefined : path.join(cgroups.v2, 'memory.events');
        if (file === undefined || !fs.existsSync(file)) {
          this.notes.push(`cgroup-v2-events: ${file ?? 'no cgroup v2'}${file ? ' does not exist' : ''}`);
          continue;
        }
        try {
          add(kind, KIND_CODE.kernfs, file, '', 'high -> moderate; max, oom, oom_kill -> critical', { counters: new Map() });
        } catch (err) {
          this.notes.push(`cgroup-v2-events: ${message(err)}`);
        }
      } else if (kind === 'cgroup-v1-usage') {
        if (options.usageHeadroom === false) continue;
        if (cgroups.v1 === undefined) {
          this.notes.push('cgroup-v1-usage: this process is in no cgroup v1 memory controller');
          continue;
        }
        // The same limit as the arena's default bound (lib/cgroup.ts): the smallest on the path.
        const limit = ownMemoryLimit(cgroups)?.bytes;
        if (limit === undefined) {
          this.notes.push(`cgroup-v1-usage: ${cgroups.v1} and its ancestors have no memory limit`);
          continue;
        }
        const headroom = options.usageHeadroom === undefined ? Math.max(8 * 1024 * 1024, Math.floor(limit / 10)) : Math.min(options.usageHeadroom, limit);
        const file = path.join(cgroups.v1, 'memory.usage_in_bytes');
        const threshold = limit - headroom;
        try {
          add(kind, KIND_CODE['cgroup-v1'], file, String(threshold), `usage >= ${threshold} (limit ${limit}) -> critical`, {
            level: 'critical',
            usage: { file, threshold },
          });
        } catch (err) {
          this.notes.push(`cgroup-v1-usage: cannot register a threshold on ${file} (${message(err)})`);
        }
      } else if (kind === 'cgroup-v1') {
        if (cgroups.v1 === undefined) {
          this.notes.push('cgroup-v1: this process is in no cgroup v1 memory controller');
          continue;
        }
        const file = path.join(cgroups.v1, 'memory.pressure_level');
        for (const level of LEVELS) {
          const vmLevel = vm[level];
          if (vmLevel === false) continue;
          try {
            // 'local': only reclaim aimed at this cgroup (its own limit). The default and
            // 'hierarchy' modes also pass up the events of descendant cgroups: other processes'
            // limits, not this process's pressure.
            add(kind, KIND_CODE['cgroup-v1'], file, `${vmLevel},local`, `${vmLevel},local -> ${level}`, { level });
          } catch (err) {
            if ((err as ErrnoError).code === 'EINVAL') {
              // Kernels before 4.16 know no mode.
              try {
                add(kind, KIND_CODE['cgroup-v1'], file, vmLevel, `${vmLevel} -> ${level}`, { level });
                this.notes.push(`cgroup-v1: mode 'local' refused (EINVAL: kernel before 4.16?); '${vmLevel}' in the default mode`);
                continue;
              } catch {
                // report the first error
              }
            }
            this.notes.push(`cgroup-v1: cannot register '${vmLevel}' on ${file} (${message(err)})`);
          }
        }
      }
    }
  }
}

const WATCH_KEYS = optionKeys<WatchMemoryPressureOptions>()(['signal', 'sources', 'pagewise', 'psi', 'vmpressure', 'usageHeadroom'] as const);
const LEVEL_KEYS = optionKeys<Record<PressureLevel, unknown>>()(['moderate', 'critical'] as const);
const VMPRESSURE_LEVELS: readonly VmpressureLevel[] = ['low', 'medium', 'critical'];

/** Every option checked whatever the environment: the same options are refused with or without a cgroup. */
function validateWatchOptions(options: unknown): WatchMemoryPressureOptions {
  const o = validateObject<WatchMemoryPressureOptions>('options', options, WATCH_KEYS);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', o.signal);
  }
  if (o.sources !== undefined && o.sources !== 'auto' && o.sources !== 'synthetic') {
    if (!Array.isArray(o.sources)) {
      throw invalidArgValue('options.sources', o.sources, "must be 'auto', 'synthetic' or an array of source kinds");
    }
    for (const kind of o.sources as unknown[]) validateOneOf('options.sources[]', kind, PRESSURE_SOURCE_KINDS);
  }
  if (o.pagewise !== undefined && (typeof o.pagewise !== 'object' || o.pagewise === null || typeof o.pagewise.kind !== 'string')) {
    throw invalidArgType('options.pagewise', 'a Pagewise instance', o.pagewise);
  }
  const psi = validateObject<Record<PressureLevel, string | false>>('options.psi', o.psi, LEVEL_KEYS);
  const vm = validateObject<Record<PressureLevel, VmpressureLevel | false>>('options.vmpressure', o.vmpressure, LEVEL_KEYS);
  for (const level of LEVELS) {
    const t = psi[level];
    if (t !== undefined && t !== false && typeof t !== 'string') throw invalidArgType(`options.psi.${level}`, 'of type string or false', t);
    if (typeof t === 'string' && !/^(some|full) \d+ \d+$/.test(t)) {
      throw invalidArgValue(`options.psi.${level}`, t, "must look like 'some <stall µs> <window µs>' or 'full ...'");
    }
    const v = vm[level];
    if (v !== undefined && v !== false) validateOneOf(`options.vmpressure.${level}`, v, VMPRESSURE_LEVELS);
  }
  if (o.usageHeadroom !== undefined && o.usageHeadroom !== false) validateInteger('options.usageHeadroom', o.usageHeadroom);
  return o;
}

/**
 * Watch this process's memory pressure. The listener, if given, is added for 'pressure'.
 * Look at `supported` / `reason` / `sources` / `notes` to see what is being watched.
 */
export function watchMemoryPressure(
  options?: WatchMemoryPressureOptions,
  listener?: (event: PressureEvent) => void,
): MemoryPressureWatcher {
  const o = validateWatchOptions(options);
  if (listener !== undefined && typeof listener !== 'function') throw invalidArgType('listener', 'of type function', listener);
  const watcher = new MemoryPressureWatcher(o);
  if (listener !== undefined) watcher.on('pressure', listener);
  return watcher;
}
