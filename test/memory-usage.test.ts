// memoryUsage(): LazyFree and effective memory from the kernel's accounting, per process and
// per pagewise mapping; named mappings (PR_SET_VMA_ANON_NAME) on both paths.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPagewise, memoryUsage, type MappingMemoryUsage, type Mapping, type ProcessMemoryUsage } from '../lib/index';
import { onKernel, PAGE, pw } from './helpers';

const MiB = 1024 * 1024;

function usage(): ProcessMemoryUsage {
  const u = memoryUsage();
  if (!u.supported) throw new Error(u.reason);
  return u;
}

function of(u: ProcessMemoryUsage, m: Mapping): MappingMemoryUsage | undefined {
  return m.address === undefined ? undefined : u.mappings.find((e) => e.address === m.address);
}

/**
 * MADV_FREE hands pages to the LRU through per-CPU batches, so LazyFree may trail by a batch
 * (a few dozen pages): wait (bounded) for the figure instead of assuming it is exact at once.
 */
function settle<T>(read: () => T, ok: (value: T) => boolean): T {
  let value = read();
  for (let i = 0; i < 200 && !ok(value); i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    value = read();
  }
  return value;
}

describe('memoryUsage', () => {
  it.skipIf(process.platform !== 'linux')('process figures are consistent: effective = rss - lazyFree - cleanFile, parts within rss', () => {
    const u = usage();
    expect(u.rss).toBeGreaterThan(0);
    expect(u.effective).toBe(Math.max(0, u.rss - u.lazyFree - u.cleanFile));
    expect(u.cleanFile).toBeLessThanOrEqual(u.file);
    expect(u.anonymous + u.file + u.shmem).toBeGreaterThan(0.9 * u.rss);
    expect(u.lazyFree).toBeLessThanOrEqual(u.anonymous);
  });

  it.skipIf(!onKernel)('native: lazyFree rises after MADV_FREE and falls after MADV_PAGEOUT; effective excludes it', () => {
    const size = 32 * MiB;
    using m = pw.map(size);
    m.buffer.fill(0x5a);
    const before = usage();
    const filled = of(before, m)!;
    expect(filled).toBeDefined();
    expect(filled.address).toBe(m.address);
    expect(filled.rss).toBe(size);
    expect(filled.lazyFree).toBe(0);
    expect(filled.effective).toBe(size);

    m.advise('free');
    const freed = settle(usage, (u) => of(u, m)!.lazyFree >= size - MiB);
    const f = of(freed, m)!;
    expect(f.rss).toBe(size); // still resident: that is what confuses RSS-based monitoring
    expect(f.lazyFree).toBeGreaterThanOrEqual(size - MiB);
    expect(f.effective).toBeLessThanOrEqual(MiB);
    expect(freed.lazyFree - before.lazyFree).toBeGreaterThanOrEqual(size - MiB);
    expect(freed.rss - freed.effective).toBeGreaterThanOrEqual(freed.lazyFree);

    m.advise('pageout'); // what reclaim does under pressure: the clean lazy-free pages go
    const purged = settle(usage, (u) => of(u, m)!.rss === 0);
    expect(of(purged, m)!.rss).toBe(0);
    expect(of(purged, m)!.lazyFree).toBe(0);
    expect(freed.lazyFree - purged.lazyFree).toBeGreaterThanOrEqual(size - MiB);
  });

  it.skipIf(!onKernel)('native: DONTNEED gives the memory back at once (no LazyFree stage)', () => {
    using m = pw.map(8 * MiB);
    m.buffer.fill(1);
    m.advise('dontneed');
    const u = of(usage(), m)!;
    expect(u.rss).toBe(0);
    expect(u.lazyFree).toBe(0);
  });

  it.skipIf(!onKernel)('native: a file mapping\'s clean pages count as cleanFile, not effective', () => {
    const file = `${fs.mkdtempSync('/tmp/pagewise-usage-')}/data`;
    fs.writeFileSync(file, Buffer.alloc(4 * MiB, 3));
    // Written but not yet on disk, the pages are dirty (not droppable): write them back first.
    const fd = fs.openSync(file, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    try {
      using m = pw.mapFile(file);
      let sum = 0;
      for (let i = 0; i < m.length; i += PAGE) sum += m.buffer[i]; // fault every page in, read only
      expect(sum).toBe(3 * (m.length / PAGE));
      const u = of(usage(), m)!;
      expect(u.kind).toBe('file');
      expect(u.rss).toBe(4 * MiB);
      expect(u.cleanFile).toBe(4 * MiB);
      expect(u.effective).toBe(0);
    } finally {
      fs.rmSync(file.slice(0, file.lastIndexOf('/')), { recursive: true, force: true });
    }
  });

  it.skipIf(!onKernel)('native: closed and resized mappings are found by their current address', () => {
    const m = pw.map(4 * MiB);
    m.buffer.fill(1);
    m.resize(8 * MiB);
    m.buffer.fill(2);
    expect(of(usage(), m)!.rss).toBe(8 * MiB);
    m.close();
    expect(m.address).toBeUndefined();
    expect(of(usage(), m)).toBeUndefined();
  });

  it.skipIf(onKernel || process.platform !== 'linux')(
    'simulator: simulated mappings are counted, never listed with figures; the process figures stay real',
    () => {
      using m = pw.map(4 * MiB);
      m.buffer.fill(1);
      const u = usage();
      expect(m.address).toBeUndefined();
      expect(of(u, m)).toBeUndefined();
      expect(u.simulatedMappings).toBeGreaterThanOrEqual(1);
      // The process figures are the kernel's: the same as /proc says now.
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
      expect(Math.abs(u.rss - rss)).toBeLessThan(16 * MiB);
    },
  );
});

describe('named mappings', () => {
  it('invalid names are argument errors; a valid name never fails map()', () => {
    for (const bad of ['', 'a[b', 'x$y', 'back\\slash', 'tick`', 'é', 'n'.repeat(80)]) {
      expect(() => pw.map(PAGE, { name: bad })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(() => pw.map(PAGE, { name: 42 as unknown as string })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    using m = pw.map(PAGE, { name: 'pagewise-test' });
    m.buffer[0] = 1;
    expect(m.name).toBe(pw.supportsMappingNames() ? 'pagewise-test' : undefined);
  });

  it.skipIf(!onKernel)('native, kernel without CONFIG_ANON_VMA_NAME: unnamed, and /proc/self/maps shows no name', () => {
    if (pw.supportsMappingNames()) return; // the named path is the next test
    using m = pw.map(2 * PAGE, { name: 'pagewise-unnamed' });
    expect(m.name).toBeUndefined();
    expect(fs.readFileSync('/proc/self/maps', 'utf8')).not.toContain('pagewise-unnamed');
  });

  it.skipIf(!onKernel || !pw.supportsMappingNames())(
    'native, named path (skipped where prctl(PR_SET_VMA_ANON_NAME) gives EINVAL: kernel built without CONFIG_ANON_VMA_NAME)',
    () => {
      using m = pw.map(2 * PAGE, { name: 'pagewise-named' });
      expect(m.name).toBe('pagewise-named');
      const start = m.address!.toString(16);
      const line = fs
        .readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${start}-`));
      expect(line).toMatch(/\[anon:pagewise-named\]$/);
      expect(of(usage(), m)!.name).toBe('pagewise-named');
      using shared = pw.map(PAGE, { shared: true, name: 'pagewise-shm' });
      expect(shared.name).toBeUndefined(); // shmem takes no anonymous name (EBADF): still mapped
    },
  );

  it('the simulator models a kernel with names: private anonymous memory is named, shared memory is not', () => {
    const sim = createPagewise('simulator');
    expect(sim.supportsMappingNames()).toBe(true);
    using m = sim.map(PAGE, { name: 'sim-named' });
    expect(m.name).toBe('sim-named');
    using s = sim.map(PAGE, { shared: true, name: 'sim-shm' });
    expect(s.name).toBeUndefined();
    using plain = sim.map(PAGE);
    expect(plain.name).toBeUndefined();
  });
});
