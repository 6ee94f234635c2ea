// Metrics name a cache's series by the name the user gave it (issue 23): the cache and arena
// gauges, and the per-mapping figures of its arena (even where the kernel did not take the
// name: no PR_SET_VMA_ANON_NAME), so a restart keeps the same series.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { collectMetrics, VolatileCache } from '../lib/index';
import { onKernel, PAGE, pw } from './helpers';

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('metrics label caches by name', () => {
  it("caches: [cache] labels its series with the cache's name; its arena's mapping too (native)", async () => {
    const registry = new Registry();
    using cache = new VolatileCache<string>({ name: 'pages', budget: 64 * PAGE, pagewise: pw });
    cache.set('a', new Uint8Array(3 * PAGE).fill(1));
    const collector = collectMetrics({ registry, caches: [cache], arenas: [cache.arena] });
    const text = await registry.metrics();
    expect(sample(text, 'pagewise_cache_entries', 'cache="pages"')).toBe(1);
    expect(sample(text, 'pagewise_cache_bytes', 'cache="pages",state="total"')).toBe(3 * PAGE);
    expect(sample(text, 'pagewise_arena_bytes', 'arena="pages",state="pinned"')).toBe(cache.stats.arena.pinnedBytes);
    if (onKernel) {
      expect(sample(text, 'pagewise_mapping_memory_bytes', 'mapping="pages",kind="rss"')).toBeGreaterThanOrEqual(3 * PAGE);
      expect(text).not.toMatch(/mapping="0x/);
    }
    collector.close();
  });

  it('in an array, two caches with one name (or a non-cache) are refused with a coded error', () => {
    const registry = new Registry();
    using a = new VolatileCache<string>({ pagewise: pw, budget: 16 * PAGE, name: 'same' });
    using b = new VolatileCache<string>({ pagewise: pw, budget: 16 * PAGE, name: 'same' });
    expect(() => collectMetrics({ registry, caches: [a, b] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => collectMetrics({ registry, caches: [3 as never] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
