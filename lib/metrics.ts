// Prometheus metrics through prom-client (an optional peer dependency, loaded only when a
// collector is created): the process's memory as the kernel accounts it (memoryUsage(), so
// a dashboard can show effective memory next to RSS), per-mapping figures, arena and cache
// stats, and memory-pressure events.
import { createRequire } from 'node:module';
import type { VolatileArena } from './volatile/arena';
import type { VolatileCache } from './volatile/cache';
import { invalidArgType, invalidArgValue, pagewiseError } from './errors';
import { memoryUsage, type ProcessMemoryUsage } from './memory-usage';
import type { PressureEvent, PressureSource } from './pressure';
import { optionKeys, validateBoolean, validateObject } from './validate';

/** The parts of prom-client used here (structural: pagewise's types never require prom-client). */
interface PromGauge {
  set(labels: Record<string, string>, value: number): void;
  reset(): void;
}
interface PromCounter {
  inc(labels: Record<string, string>, value?: number): void;
  reset(): void;
}
interface PromRegistry {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
  getSingleMetric?(name: string): unknown;
}
interface PromClient {
  Gauge: new (config: {
    name: string;
    help: string;
    labelNames: string[];
    registers: PromRegistry[];
    collect?: (this: PromGauge) => void;
  }) => PromGauge;
  Counter: new (config: {
    name: string;
    help: string;
    labelNames: string[];
    registers: PromRegistry[];
    collect?: (this: PromCounter) => void;
  }) => PromCounter;
  register: PromRegistry;
}

export interface MetricsOptions {
  /** A prom-client Registry. Default: prom-client's global `register`. */
  registry?: unknown;
  /** Metric name prefix. Default 'pagewise_'. */
  prefix?: string;
  /** Count the events of this watcher (watchMemoryPressure()) as pagewise_memory_pressure_events_total. */
  pressure?: PressureSource;
  /** Arenas to report, by label (an array: labelled by each arena's name). */
  arenas?: Record<string, VolatileArena> | VolatileArena[];
  /** Caches to report, by label (an array: labelled by each cache's name, else its arena's). */
  caches?: Record<string, VolatileCache<unknown>> | Array<VolatileCache<unknown>>;
  /** Report per-mapping figures of pagewise's own mappings (name or address label). Default true. */
  mappings?: boolean;
}

export interface MetricsCollector {
  /** The metric names registered. */
  readonly names: readonly string[];
  /** Stop counting pressure events and remove the metrics from the registry. Idempotent. */
  close(): void;
}

/** [label, value] pairs of a record, or of an array labelled by name (each must have one, and labels must differ). */
function labelled<T extends object>(name: string, value: unknown, nameOf: (v: T) => string | undefined): Array<[string, T]> {
  if (!Array.isArray(value)) return Object.entries(validateObject<Record<string, T>>(name, value)) as Array<[string, T]>;
  const out: Array<[string, T]> = [];
  value.forEach((v: T, i) => {
    const label = typeof v === 'object' && v !== null ? nameOf(v) : undefined;
    if (typeof label !== 'string' || label === '') throw invalidArgValue(`${name}[${i}]`, v, 'has no name to label it with (give it a name, or pass a record of labels)');
    if (out.some(([l]) => l === label)) throw invalidArgValue(`${name}[${i}]`, v, `has the name '${label}' of another one (names label the series: they must differ)`);
    out.push([label, v]);
  });
  return out;
}

function loadPromClient(): PromClient {
  try {
    return createRequire(__filename)('prom-client') as PromClient;
  } catch (err) {
    const e = pagewiseError(
      'ERR_PAGEWISE_PROM_CLIENT_MISSING',
      'pagewise metrics need the optional peer dependency prom-client: `npm install prom-client`',
    );
    (e as Error & { cause?: unknown }).cause = err;
    throw e;
  }
}

const PROCESS_FIGURES = [
  ['rss', 'rss'],
  ['effective', 'effective'],
  ['lazy_free', 'lazyFree'],
  ['clean_file', 'cleanFile'],
  ['anonymous', 'anonymous'],
  ['file', 'file'],
  ['shmem', 'shmem'],
  ['anon_huge_pages', 'anonHugePages'],
  ['swap', 'swap'],
] as const;
const MAPPING_FIGURES = [
  ['rss', 'rss'],
  ['effective', 'effective'],
  ['lazy_free', 'lazyFree'],
  ['clean_file', 'cleanFile'],
  ['swap', 'swap'],
] as const;

const METRICS_KEYS = optionKeys<MetricsOptions>()(['registry', 'prefix', 'pressure', 'arenas', 'caches', 'mappings'] as const);

/**
 * Register pagewise's metrics with prom-client. Throws ERR_PAGEWISE_PROM_CLIENT_MISSING when
 * prom-client is not installed. memoryUsage() is read once per scrape (it reads
 * /proc/self/smaps: a few milliseconds).
 */
export function collectMetrics(options?: MetricsOptions): MetricsCollector {
  const o = validateObject<MetricsOptions>('options', options, METRICS_KEYS);
  const prefix = o.prefix ?? 'pagewise_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw invalidArgType('options.prefix', 'a Prometheus metric name prefix', prefix);
  }
  const arenas = labelled<VolatileArena>('options.arenas', o.arenas, (a) => a.name);
  const caches = labelled<VolatileCache<unknown>>('options.caches', o.caches, (c) => c.name ?? c.arena?.name);
  for (const [label, v] of [...arenas, ...caches]) {
    if (typeof v !== 'object' || v === null || typeof v.stats !== 'object') {
      throw invalidArgType(`options.${arenas.some(([l]) => l === label) ? 'arenas' : 'caches'}.${label}`, 'a VolatileArena or VolatileCache', v);
    }
  }
  if (o.mappings !== undefined) validateBoolean('options.mappings', o.mappings);
  // The mappings of the arenas given (and of the caches' arenas) are labelled with their
  // names, even where the kernel did not take the name (no PR_SET_VMA_ANON_NAME): a series
  // keeps its name across restarts instead of an address.
  const mappingLabels = (): Map<bigint, string> => {
    const out = new Map<bigint, string>();
    const add = (label: string, arena: VolatileArena | undefined) => {
      if (arena === undefined || arena.closed || typeof arena.regionAddresses !== 'function') return;
      for (const address of arena.regionAddresses()) if (!out.has(address)) out.set(address, label);
    };
    for (const [label, arena] of arenas) add(label, arena);
    for (const [label, cache] of caches) add(label, cache.arena);
    return out;
  };
  const pressure = o.pressure;
  if (pressure !== undefined && (typeof pressure !== 'object' || pressure === null || typeof pressure.on !== 'function')) {
    throw invalidArgType('options.pressure', 'a pressure source (watchMemoryPressure())', pressure);
  }
  const prom = loadPromClient();
  const registry = (o.registry ?? prom.register) as PromRegistry;
  if (typeof registry?.registerMetric !== 'function') throw invalidArgType('options.registry', 'a prom-client Registry', o.registry);
  const registers = [registry];
  const names: string[] = [];
  const name = (n: string) => {
    // prom-client would throw an uncoded "already been registered" halfway through: check each
    // name first, and take back the metrics registered so far.
    if (registry.getSingleMetric?.(prefix + n) !== undefined) {
      for (const registered of names) registry.removeSingleMetric(registered);
      throw pagewiseError(
        'ERR_PAGEWISE_METRICS_REGISTERED',
        `The metric ${prefix + n} is already registered in this registry (a second collectMetrics()?): ` +
          'close() the first collector, or pass another `registry` or `prefix`',
      );
    }
    names.push(prefix + n);
    return prefix + n;
  };

  // One memoryUsage() per scrape: the process gauge reads it, the mapping gauge (collected
  // right after it in the same scrape) reuses it.
  let usage: ProcessMemoryUsage | undefined;
  let readAt = 0;
  const read = (): ProcessMemoryUsage | undefined => {
    const now = performance.now();
    if (usage === undefined || now - readAt > 100) {
      try {
        usage = memoryUsage();
      } catch {
        usage = undefined; // ERR_MEMORY_USAGE_UNSUPPORTED: no /proc here, the gauges stay empty
      }
      readAt = now;
    }
    return usage;
  };

  new prom.Gauge({
    name: name('process_memory_bytes'),
    help: 'This process\'s memory as the kernel accounts it (/proc/self/status, smaps). effective = rss - lazy_free - clean_file: what a memory limit really has to hold.',
    labelNames: ['kind'],
    registers,
    collect() {
      const u = read();
      if (u === undefined) return;
      for (const [label, key] of PROCESS_FIGURES) this.set({ kind: label }, u[key]);
    },
  });
  if (o.mappings !== false) {
    new prom.Gauge({
      name: name('mapping_memory_bytes'),
      help: 'Memory of each live pagewise mapping (native backend), by name (or address when unnamed).',
      labelNames: ['mapping', 'kind'],
      registers,
      collect() {
        this.reset(); // closed mappings disappear
        const u = read();
        if (u === undefined) return;
        const known = mappingLabels();
        for (const m of u.mappings) {
          const label = m.name ?? known.get(m.address) ?? `0x${m.address.toString(16)}`;
          for (const [kind, key] of MAPPING_FIGURES) this.set({ mapping: label, kind }, m[key]);
        }
      },
    });
  }
  if (arenas.length > 0) {
    new prom.Gauge({
      name: name('arena_bytes'),
      help: 'VolatileArena bytes by state (unpinned: the kernel may drop it once volatile; held: unpinned but kept non-volatile because a view of it is still referenced, part of unpinned; quarantined: freed, waiting for its views to be collected; pending_free is part of free).',
      labelNames: ['arena', 'state'],
      registers,
      collect() {
        for (const [label, arena] of arenas) {
          if (arena.closed) continue;
          const s = arena.stats;
          this.set({ arena: label, state: 'pinned' }, s.pinnedBytes);
          this.set({ arena: label, state: 'unpinned' }, s.unpinnedBytes);
          this.set({ arena: label, state: 'free' }, s.freeBytes);
          this.set({ arena: label, state: 'pending_free' }, s.pendingFreeBytes);
          this.set({ arena: label, state: 'quarantined' }, s.quarantinedBytes);
          this.set({ arena: label, state: 'held' }, s.heldBytes);
        }
      },
    });
    new prom.Gauge({
      name: name('arena_regions'),
      help: 'VolatileArena regions mapped: 1, plus those grown while freed spans waited in quarantine for their views to be collected.',
      labelNames: ['arena'],
      registers,
      collect() {
        for (const [label, arena] of arenas) if (!arena.closed) this.set({ arena: label }, arena.stats.regions);
      },
    });
    new prom.Counter({
      name: name('arena_pins_total'),
      help: 'VolatileArena pin() results (purged = the kernel had dropped a page).',
      labelNames: ['arena', 'result'],
      registers,
      collect() {
        // The arena counts; the counter is set to its count at every scrape.
        this.reset();
        for (const [label, arena] of arenas) {
          const s = arena.stats;
          this.inc({ arena: label, result: 'intact' }, s.intactPins);
          this.inc({ arena: label, result: 'purged' }, s.purgedPins);
        }
      },
    });
  }
  if (caches.length > 0) {
    new prom.Gauge({
      name: name('cache_bytes'),
      help: 'VolatileCache bytes: all entries, and those pinned by a handle.',
      labelNames: ['cache', 'state'],
      registers,
      collect() {
        for (const [label, cache] of caches) {
          const s = cache.stats;
          this.set({ cache: label, state: 'total' }, s.bytes);
          this.set({ cache: label, state: 'pinned' }, s.pinnedBytes);
        }
      },
    });
    new prom.Gauge({
      name: name('cache_entries'),
      help: 'VolatileCache entries.',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [label, cache] of caches) this.set({ cache: label }, cache.stats.entries);
      },
    });
    new prom.Counter({
      name: name('cache_lookups_total'),
      help: 'VolatileCache get() outcomes (purged = the kernel had dropped the entry).',
      labelNames: ['cache', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [label, cache] of caches) {
          const s = cache.stats;
          this.inc({ cache: label, outcome: 'hit' }, s.hits);
          this.inc({ cache: label, outcome: 'miss' }, s.misses);
          this.inc({ cache: label, outcome: 'purged' }, s.purged);
        }
      },
    });
    new prom.Counter({
      name: name('cache_evictions_total'),
      help: 'VolatileCache entries removed by the userspace budget.',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [label, cache] of caches) this.inc({ cache: label }, cache.stats.evictions);
      },
    });
  }
  let onPressure: ((e: PressureEvent) => void) | undefined;
  if (pressure !== undefined) {
    const events = new prom.Counter({
      name: name('memory_pressure_events_total'),
      help: 'Memory-pressure events received, by level and source.',
      labelNames: ['level', 'source'],
      registers,
    });
    onPressure = (e: PressureEvent) => events.inc({ level: e.level, source: e.source });
    pressure.on('pressure', onPressure);
  }
  let closed = false;
  return {
    names,
    close() {
      if (closed) return;
      closed = true;
      if (onPressure !== undefined) pressure?.off('pressure', onPressure);
      for (const n of names) registry.removeSingleMetric(n);
    },
  };
}
