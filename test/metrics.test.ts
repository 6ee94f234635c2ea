// collectMetrics(): prom-client metrics for memory, arenas, caches and pressure events; a clear
// error when the optional peer dependency is missing.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { collectMetrics, VolatileArena, VolatileCache, watchMemoryPressure } from '../lib/index';
import { onKernel, PAGE, pw } from './helpers';

const MiB = 1024 * 1024;

/** The value of one sample line `name{labels} value` in the exposition text. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('collectMetrics', () => {
  it('exports memory, arena and cache stats and pressure events; close() removes them', async () => {
    const registry = new Registry();
    using watcher = watchMemoryPressure({ sources: 'synthetic' });
    using arena = new VolatileArena({ size: 64 * PAGE, pagewise: pw, decayMs: -1 });
    using cache = new VolatileCache<number>({ budget: 1 * MiB, pagewise: pw, decayMs: -1 });
    const a = arena.alloc(4 * PAGE);
    const b = arena.alloc(2 * PAGE);
    const kept = b.bytes; // still referenced: b stays held (non-volatile) after flush()
    b.unpin();
    arena.flush();
    a.unpin();
    expect(a.pin()).toBe('intact');
    cache.get(1, () => new Uint8Array(PAGE).fill(1)).release();
    cache.get(1, () => new Uint8Array(PAGE).fill(1)).release();
    const collector = collectMetrics({ registry, pressure: watcher, arenas: { main: arena }, caches: { items: cache } });
    watcher.raise('moderate');
    watcher.raise('critical');
    watcher.raise('critical');
    const text = await registry.metrics();

    expect(sample(text, 'pagewise_memory_pressure_events_total', 'level="critical",source="synthetic"')).toBe(2);
    expect(sample(text, 'pagewise_memory_pressure_events_total', 'level="moderate",source="synthetic"')).toBe(1);
    expect(sample(text, 'pagewise_arena_bytes', 'arena="main",state="pinned"')).toBe(4 * PAGE);
    expect(sample(text, 'pagewise_arena_bytes', 'arena="main",state="unpinned"')).toBe(2 * PAGE);
    expect(sample(text, 'pagewise_arena_pins_total', 'arena="main",result="intact"')).toBe(1);
    expect(sample(text, 'pagewise_arena_bytes', 'arena="main",state="quarantined"')).toBe(0);
    expect(sample(text, 'pagewise_arena_bytes', 'arena="main",state="held"')).toBe(2 * PAGE);
    expect(kept.length).toBe(2 * PAGE);
    expect(sample(text, 'pagewise_arena_regions', 'arena="main"')).toBe(1);
    expect(sample(text, 'pagewise_cache_entries', 'cache="items"')).toBe(1);
    expect(sample(text, 'pagewise_cache_lookups_total', 'cache="items",outcome="miss"')).toBe(1);
    expect(sample(text, 'pagewise_cache_lookups_total', 'cache="items",outcome="hit"')).toBe(1);
    expect(text).toContain('# TYPE pagewise_memory_pressure_events_total counter');
    if (process.platform === 'linux') {
      const rss = sample(text, 'pagewise_process_memory_bytes', 'kind="rss"')!;
      const effective = sample(text, 'pagewise_process_memory_bytes', 'kind="effective"')!;
      const lazyFree = sample(text, 'pagewise_process_memory_bytes', 'kind="lazy_free"')!;
      expect(rss).toBeGreaterThan(0);
      expect(effective).toBeLessThanOrEqual(rss - lazyFree);
    }

    collector.close();
    watcher.raise('critical'); // no longer counted, and the metrics are gone
    expect(await registry.metrics()).not.toContain('pagewise_');
    collector.close();
  });

  it.skipIf(!onKernel)('native: a named or unnamed mapping appears with its figures', async () => {
    const registry = new Registry();
    using m = pw.map(2 * MiB, { name: 'metrics-test' });
    m.buffer.fill(1);
    const collector = collectMetrics({ registry });
    const text = await registry.metrics();
    const label = m.name ?? `0x${m.address!.toString(16)}`;
    expect(sample(text, 'pagewise_mapping_memory_bytes', `mapping="${label}",kind="rss"`)).toBe(2 * MiB);
    expect(sample(text, 'pagewise_mapping_memory_bytes', `mapping="${label}",kind="effective"`)).toBe(2 * MiB);
    collector.close();
  });

  it('arena quarantine: freed bytes waiting for their views, and the regions grown meanwhile', async () => {
    const registry = new Registry();
    using arena = new VolatileArena({ size: 4 * PAGE, pagewise: pw, decayMs: -1 });
    const b = arena.alloc(4 * PAGE);
    // Work in flight on the buffer's view at free(): the span waits in quarantine, and the
    // next allocation maps a second region.
    const done = new Promise<void>((resolve, reject) => crypto.randomFill(b.bytes, (err) => (err ? reject(err) : resolve())));
    b.free();
    const next = arena.alloc(4 * PAGE);
    const collector = collectMetrics({ registry, arenas: { q: arena }, mappings: false });
    const text = await registry.metrics();
    expect(sample(text, 'pagewise_arena_bytes', 'arena="q",state="quarantined"')).toBe(4 * PAGE);
    expect(sample(text, 'pagewise_arena_bytes', 'arena="q",state="pinned"')).toBe(4 * PAGE);
    expect(sample(text, 'pagewise_arena_regions', 'arena="q"')).toBe(2);
    collector.close();
    next.free();
    await done;
  });

  it('argument errors', () => {
    const registry = new Registry();
    expect(() => collectMetrics({ registry, prefix: 'bad prefix' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => collectMetrics({ registry: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => collectMetrics({ registry, arenas: { x: 3 as unknown as VolatileArena } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });

  it('a second collectMetrics() on the same registry: a coded error, and the first collector keeps its metrics', async () => {
    const registry = new Registry();
    const first = collectMetrics({ registry, mappings: false });
    let err: (Error & { code?: string }) | undefined;
    try {
      collectMetrics({ registry, mappings: false });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('ERR_PAGEWISE_METRICS_REGISTERED');
    expect(err?.message).toMatch(/pagewise_process_memory_bytes is already registered.*close\(\) the first collector/);
    expect(sample(await registry.metrics(), 'pagewise_process_memory_bytes', 'kind="rss"')).toBeGreaterThan(0);
    // A name taken by someone else halfway: nothing of pagewise's stays registered, theirs stays.
    const other = new Registry();
    new Gauge({ name: 'pagewise_mapping_memory_bytes', help: 'not ours', registers: [other] });
    expect(() => collectMetrics({ registry: other })).toThrow(expect.objectContaining({ code: 'ERR_PAGEWISE_METRICS_REGISTERED' }));
    expect(other.getMetricsAsArray().map((m) => m.name)).toEqual(['pagewise_mapping_memory_bytes']);
    // Another prefix, or after close(): allowed.
    collectMetrics({ registry, prefix: 'second_', mappings: false }).close();
    first.close();
    collectMetrics({ registry, mappings: false }).close();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  const dist = path.join(__dirname, '..', 'dist', 'index.js');
  it.skipIf(!fs.existsSync(dist))('without prom-client installed: ERR_PAGEWISE_PROM_CLIENT_MISSING, and the rest of pagewise works', () => {
    // A child where resolving prom-client fails, as in an install without the optional peer.
    const script = `
      const Module = require('node:module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === 'prom-client') throw Object.assign(new Error("Cannot find module 'prom-client'"), { code: 'MODULE_NOT_FOUND' });
        return resolve.call(this, request, ...rest);
      };
      const pagewise = require(${JSON.stringify(dist)});
      pagewise.map(4096).close();
      try { pagewise.collectMetrics(); console.log('no error'); }
      catch (e) { console.log(e.code + ' | ' + e.message); }`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim();
    expect(out).toMatch(/^ERR_PAGEWISE_PROM_CLIENT_MISSING \| .*npm install prom-client/);
  });
});
