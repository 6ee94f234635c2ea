// Page flags (mapping.pageFlags) and write tracking (mapping.trackWrites) on both
// backends (issue 26). The native figures are checked against the kernel's own
// reports read at the same moment (mincore, /proc/self/smaps).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Pagewise } from '../../lib/api';
import type { BackendMapping } from '../../lib/backend';
import { errnoError } from '../../lib/errors';
import type { Mapping, PageFlagsReport } from '../../lib/index';
import { onKernel, PAGE, pattern, pw, tempFile } from '../helpers';

const code = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
};

/** Flags of page i, read from the runs. */
function flagsAt(report: PageFlagsReport, offset: number): readonly string[] {
  const run = report.runs.find((r) => r.offset <= offset && offset < r.offset + r.length);
  if (run === undefined) throw new Error(`no run covers ${offset}`);
  return run.flags;
}

/** The runs tile the range with no gap or overlap, and the counts agree with them. */
function checkTiling(report: PageFlagsReport, offset: number, length: number): void {
  let at = offset;
  const perFlag: Record<string, number> = {};
  for (const r of report.runs) {
    expect(r.offset).toBe(at);
    expect(r.length % PAGE).toBe(0);
    at += r.length;
    for (const f of r.flags) perFlag[f] = (perFlag[f] ?? 0) + r.length / PAGE;
  }
  expect(at).toBe(offset + length);
  expect(report.pages).toBe(length / PAGE);
  for (const f of report.known) expect(report.counts[f]).toBe(perFlag[f] ?? 0);
}

/** Descriptors of this process that are userfaultfds (native write trackers hold one each). */
function userfaultfds(): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[userfaultfd]') n++;
    } catch {
      // closed meanwhile (the readdir descriptor itself)
    }
  }
  return n;
}

/** The smaps entry of a mapping: field name to kB. */
function smaps(m: Mapping): Record<string, number> {
  const start = m.address!.toString(16);
  const text = fs.readFileSync('/proc/self/smaps', 'utf8');
  const at = text.search(new RegExp(`^0*${start}-`, 'm'));
  expect(at).toBeGreaterThanOrEqual(0);
  const out: Record<string, number> = {};
  for (const line of text.slice(at).split('\n').slice(1)) {
    const f = /^(\w+):\s+(\d+) kB/.exec(line);
    if (f === null) {
      if (/^[0-9a-f]+-/.test(line)) break;
      continue;
    }
    out[f[1]] = Number(f[2]);
  }
  return out;
}

describe('mapping.pageFlags()', () => {
  it('reports present pages, the zero page behind populate-read, and nothing for untouched pages', async () => {
    using m = pw.map(32 * PAGE);
    m.buffer.fill(7, 0, 4 * PAGE);
    await m.populate({ offset: 8 * PAGE, length: 4 * PAGE, mode: 'read' });
    const r = m.pageFlags();
    checkTiling(r, 0, 32 * PAGE);
    expect(r.source).toBe(onKernel ? 'pagemap-scan' : 'simulator');
    expect(r.known).toEqual(expect.arrayContaining(['present', 'zeroPage', 'file']));
    expect(r.known).not.toContain('written'); // no tracker open
    expect(r.counts.present).toBe(8);
    expect(r.counts.zeroPage).toBe(4);
    expect(r.counts.file).toBe(0);
    expect(flagsAt(r, 0)).toEqual(['present']);
    expect(flagsAt(r, 8 * PAGE)).toEqual(['present', 'zeroPage']);
    expect(flagsAt(r, 20 * PAGE)).toEqual([]);
    // The same moment through mincore: the present pages are the resident ones.
    expect(m.residency().resident).toBe(r.counts.present);
    expect(m.buffer[3 * PAGE]).toBe(7);
  });

  it('reports every run once when one scan cannot hold them all (17,000 runs)', () => {
    // More runs than the kernel's 512-region buffer and than the addon's 8,192-region vector:
    // each run must come back once, in order (a resumed walk must not repeat any).
    const pages = 17_000;
    using m = pw.map(pages * PAGE);
    m.advise('nohugepage');
    for (let i = 0; i < pages; i += 2) m.buffer[i * PAGE] = 1;
    const r = m.pageFlags();
    checkTiling(r, 0, pages * PAGE);
    expect(r.runs.length).toBe(pages);
    expect(r.pages).toBe(pages);
    expect(r.counts.present).toBe(pages / 2);
    expect(flagsAt(r, 16_998 * PAGE)).toEqual(['present']);
    expect(flagsAt(r, 16_999 * PAGE)).toEqual([]);
    expect(m.residency().resident).toBe(r.counts.present);
  });

  it('says which flags it cannot tell (undefined counts, missing from known)', () => {
    using m = pw.map(4 * PAGE);
    const r = m.pageFlags();
    for (const f of ['present', 'swapped', 'file', 'zeroPage', 'huge', 'written', 'softDirty'] as const) {
      if (r.known.includes(f)) expect(typeof r.counts[f]).toBe('number');
      else expect(r.counts[f]).toBeUndefined();
    }
    if (!onKernel) expect([...r.known].sort()).toEqual(['file', 'present', 'zeroPage']);
  });

  it('marks page-cache pages of a file mapping as file, and a private copy after a write as not', async () => {
    const file = tempFile(pattern(8 * PAGE));
    using shared = pw.mapFile(file, { mode: 'shared' });
    using priv = pw.mapFile(file, { mode: 'private' });
    // Faulted in by populate (the simulator cannot see a JavaScript read; the kernel maps the page either way).
    await shared.populate({ offset: 0, length: 4 * PAGE, mode: 'read' });
    await priv.populate({ offset: 0, length: 4 * PAGE, mode: 'read' });
    priv.buffer[2 * PAGE] ^= 0xff; // copy-on-write: an anonymous page of its own
    const s = shared.pageFlags({ offset: 0, length: 4 * PAGE });
    checkTiling(s, 0, 4 * PAGE);
    expect(s.counts.present).toBe(4);
    expect(s.counts.file).toBe(4);
    const p = priv.pageFlags({ offset: 0, length: 4 * PAGE });
    expect(p.counts.present).toBe(4);
    expect(flagsAt(p, 2 * PAGE)).toEqual(['present']);
    expect(flagsAt(p, 1 * PAGE)).toEqual(['present', 'file']);
  });

  it('rounds the range outward to pages and validates it like residency()', () => {
    using m = pw.map(8 * PAGE);
    m.buffer[5 * PAGE] = 1;
    const r = m.pageFlags({ offset: 4 * PAGE + 10, length: PAGE });
    checkTiling(r, 4 * PAGE, 2 * PAGE);
    expect(r.counts.present).toBe(1);
    expect(m.pageFlags({ offset: 3 * PAGE, length: 0 }).runs).toEqual([]);
    expect(code(() => m.pageFlags({ offset: 9 * PAGE }))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => m.pageFlags({ offset: 0, lenght: PAGE } as never))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => m.pageFlags({ source: 'smaps' } as never))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => m.pageFlags(5 as never))).toBe('ERR_INVALID_ARG_TYPE');
    m.close();
    expect(code(() => m.pageFlags())).toBe('ERR_MAPPING_CLOSED');
  });

  it.skipIf(!onKernel)('reads /proc/self/pagemap entries on request: fewer flags, the same present pages (native)', () => {
    using m = pw.map(16 * PAGE);
    m.buffer.fill(1, 2 * PAGE, 6 * PAGE);
    const scan = m.pageFlags();
    const entries = m.pageFlags({ source: 'pagemap' });
    expect(entries.source).toBe('pagemap');
    expect([...entries.known].sort()).toEqual(['file', 'present', 'softDirty', 'swapped']);
    expect(entries.counts.present).toBe(scan.counts.present);
    expect(entries.counts.present).toBe(4);
    expect(entries.counts.zeroPage).toBeUndefined();
    checkTiling(entries, 0, 16 * PAGE);
  });

  it.skipIf(!onKernel)('agrees with /proc/self/smaps read at the same moment: Rss and AnonHugePages (native, THP)', async (ctx) => {
    const thp = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    if (thp.includes('[never]')) ctx.skip('transparent huge pages are disabled here ([never])');
    const HUGE = 2 << 20;
    using m = pw.map(4 * HUGE);
    m.advise('hugepage');
    const base = Number(m.address! % BigInt(HUGE));
    const first = base === 0 ? 0 : HUGE - base; // the first 2 MiB-aligned byte of the mapping
    m.buffer.fill(3, first, first + HUGE);
    let r = m.pageFlags();
    if (r.counts.huge === 0) {
      // No huge page at fault time (fragmented memory): ask khugepaged's work synchronously.
      try {
        m.advise('collapse', { offset: first, length: HUGE });
      } catch (err) {
        ctx.skip(`the kernel gave no huge page (fault and MADV_COLLAPSE: ${(err as Error).message})`);
      }
      r = m.pageFlags();
    }
    const kb = smaps(m);
    expect(r.counts.huge).toBeGreaterThanOrEqual(HUGE / PAGE);
    expect(r.counts.huge! * (PAGE / 1024)).toBe(kb.AnonHugePages);
    expect((r.counts.present! - r.counts.zeroPage!) * (PAGE / 1024)).toBe(kb.Rss);
    expect(flagsAt(r, first)).toEqual(['present', 'huge']);
  });
});

describe('mapping.trackWrites()', () => {
  it('lists exactly the pages written since the start and since each reset; writes proceed', () => {
    using m = pw.map(64 * PAGE);
    m.buffer.fill(1, 0, 32 * PAGE);
    using t = m.trackWrites();
    expect(t.written()).toEqual([]);
    m.buffer[3 * PAGE + 100] = 9;
    m.buffer[40 * PAGE] = 9; // never touched before
    m.buffer.fill(2, 10 * PAGE, 13 * PAGE);
    expect(t.written()).toEqual([
      { offset: 3 * PAGE, length: PAGE },
      { offset: 10 * PAGE, length: 3 * PAGE },
      { offset: 40 * PAGE, length: PAGE },
    ]);
    expect(t.written({ offset: 11 * PAGE, length: 10 * PAGE })).toEqual([{ offset: 11 * PAGE, length: 2 * PAGE }]);
    expect(m.buffer[3 * PAGE + 100]).toBe(9);
    expect(m.buffer[12 * PAGE]).toBe(2);
    t.reset();
    expect(t.written()).toEqual([]);
    m.buffer[63 * PAGE + 1] = 5;
    expect(t.written()).toEqual([{ offset: 63 * PAGE, length: PAGE }]);
    // While a tracker is open, pageFlags knows the written bit.
    const r = m.pageFlags();
    expect(r.known).toContain('written');
    expect(r.counts.written).toBe(1);
    expect(flagsAt(r, 63 * PAGE)).toContain('written');
  });

  it('lists each written page once when one scan cannot hold them all (3,000 and 9,000 runs)', () => {
    // 3,000: past the kernel's 512-region buffer in one call; 9,000: past the addon's 8,192-region
    // vector, with more than 512 regions left for the last call.
    for (const pages of [6_000, 18_000]) {
      using m = pw.map(pages * PAGE);
      m.advise('nohugepage');
      using t = m.trackWrites();
      const expected = [];
      for (let i = 0; i < pages; i += 2) expected.push({ offset: i * PAGE, length: PAGE });
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < pages; i += 2) m.buffer[i * PAGE] = round + 1;
        expect(t.written()).toEqual(expected);
        t.reset();
        expect(t.written()).toEqual([]);
      }
    }
  });

  it('counts writes from Node threadpool work (crypto.randomFill) without disturbing it', async () => {
    using m = pw.map(32 * PAGE);
    using t = m.trackWrites();
    const view = m.view(8 * PAGE, 4 * PAGE);
    await promisify(crypto.randomFill)(view);
    expect(view.some((b) => b !== 0)).toBe(true);
    expect(t.written()).toEqual([{ offset: 8 * PAGE, length: 4 * PAGE }]);
  });

  it('counts a page that dontneed dropped (its contents changed)', () => {
    using m = pw.map(8 * PAGE);
    m.buffer.fill(4);
    using t = m.trackWrites();
    m.advise('dontneed', { offset: 2 * PAGE, length: PAGE });
    expect(t.written()).toEqual([{ offset: 2 * PAGE, length: PAGE }]);
    expect(m.buffer[2 * PAGE]).toBe(0);
  });

  it('works on shared and file mappings', () => {
    const file = tempFile(pattern(8 * PAGE));
    for (const mode of ['private', 'shared'] as const) {
      using m = pw.mapFile(file, { mode });
      using t = m.trackWrites();
      m.buffer[5 * PAGE] ^= 1;
      expect(t.written()).toEqual([{ offset: 5 * PAGE, length: PAGE }]);
    }
    using shm = pw.map(8 * PAGE, { shared: true });
    using t = shm.trackWrites();
    shm.buffer[PAGE] = 1;
    expect(t.written()).toEqual([{ offset: PAGE, length: PAGE }]);
  });

  it('survives resize (every page counts as written until reset) and close of the mapping', () => {
    const m = pw.map(8 * PAGE);
    const t = m.trackWrites();
    m.buffer[PAGE] = 1;
    m.resize(16 * PAGE);
    expect(t.written()).toEqual([{ offset: 0, length: 16 * PAGE }]);
    t.reset();
    expect(t.written()).toEqual([]);
    m.buffer[12 * PAGE] = 1;
    expect(t.written()).toEqual([{ offset: 12 * PAGE, length: PAGE }]);
    expect(m.buffer[PAGE]).toBe(1);
    m.close();
    expect(t.closed).toBe(true);
    expect(code(() => t.written())).toBe('ERR_WRITE_TRACKER_CLOSED');
    expect(code(() => t.reset())).toBe('ERR_WRITE_TRACKER_CLOSED');
    t.close(); // idempotent
  });

  it('one open tracker per mapping; closing it lets the next one start and removes the written flag', () => {
    using m = pw.map(4 * PAGE);
    const t = m.trackWrites();
    expect(code(() => m.trackWrites())).toBe('ERR_MAPPING_BUSY');
    t.close();
    expect(t.closed).toBe(true);
    expect(m.pageFlags().known).not.toContain('written');
    using again = m.trackWrites();
    m.buffer[0] = 1;
    expect(again.written()).toEqual([{ offset: 0, length: PAGE }]);
    expect(code(() => t.written())).toBe('ERR_WRITE_TRACKER_CLOSED');
  });

  it.skipIf(!onKernel)('releases its userfaultfd on close(), with the mapping, and when collected (native)', async () => {
    const baseline = userfaultfds();
    {
      using m = pw.map(4 * PAGE);
      const t = m.trackWrites();
      expect(userfaultfds()).toBe(baseline + 1);
      t.close();
      expect(userfaultfds()).toBe(baseline);
      m.trackWrites(); // closed with the mapping
      expect(userfaultfds()).toBe(baseline + 1);
    }
    expect(userfaultfds()).toBe(baseline);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    (() => {
      const m = pw.map(4 * PAGE);
      m.trackWrites();
    })();
    expect(userfaultfds()).toBe(baseline + 1);
    for (let i = 0; i < 50 && userfaultfds() !== baseline; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(userfaultfds()).toBe(baseline);
  });
});

describe('mapping.adviseRanges()', () => {
  it('advises every range with advise() rounding, and a kernel error says how far it got', async () => {
    using m = pw.map(8 * PAGE);
    m.buffer.fill(5);
    await m.lock({ offset: 4 * PAGE, length: PAGE }); // MADV_DONTNEED refuses locked pages (EINVAL)
    let err: (Error & { code?: string; rangesAdvised?: number }) | undefined;
    try {
      m.adviseRanges('dontneed', [
        { offset: 0, length: PAGE },
        { offset: 2 * PAGE, length: PAGE },
        { offset: 4 * PAGE, length: PAGE },
        { offset: 6 * PAGE, length: PAGE },
      ]);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe('EINVAL');
    expect(err?.rangesAdvised).toBe(2);
    expect([0, 2, 4, 6].map((p) => m.buffer[p * PAGE])).toEqual([0, 0, 5, 5]);
    // Destructive advice rounds inward (nothing left: length 0), the rest outward.
    expect(m.adviseRanges('dontneed', [{ offset: 1, length: PAGE }])).toEqual([{ offset: PAGE, length: 0 }]);
    expect(m.adviseRanges('willneed', [{ offset: PAGE + 1, length: PAGE }])).toEqual([{ offset: PAGE, length: 2 * PAGE }]);
    expect(code(() => m.adviseRanges('dontneed', [{ offset: 0, length: PAGE }, { offset: PAGE, lenght: PAGE } as never]))).toBe(
      'ERR_INVALID_ARG_VALUE',
    );
    expect(m.buffer[7 * PAGE]).toBe(5); // validation failed before anything was advised
  });

  it('advises more ranges than IOV_MAX (several process_madvise calls)', () => {
    const n = 2500;
    using m = pw.map(2 * n * PAGE);
    m.buffer.fill(3);
    const ranges = Array.from({ length: n }, (_, i) => ({ offset: 2 * i * PAGE, length: PAGE }));
    const advised = m.adviseRanges('dontneed', ranges);
    expect(advised).toEqual(ranges);
    let zeros = 0;
    let kept = 0;
    for (let i = 0; i < 2 * n; i++) (m.buffer[i * PAGE] === 0 ? zeros++ : kept++);
    expect([zeros, kept]).toEqual([n, n]);
  });
});

describe('without the kernel features', () => {
  /** A Pagewise whose regions fail pageFlags / trackWrites as a kernel without them would. */
  function lacking(pageFlags: () => never, trackWrites: () => never): Pagewise {
    const real = pw.backend;
    return new Pagewise({
      ...real,
      map: (request) => {
        const region = real.map(request);
        return new Proxy(region, {
          get(t, prop) {
            if (prop === 'pageFlags') return pageFlags;
            if (prop === 'trackWrites') return trackWrites;
            const v = Reflect.get(t, prop, t) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
          },
        }) as BackendMapping;
      },
    });
  }

  it('answer ERR_NOT_SUPPORTED naming what is missing', () => {
    const cases: [() => never, () => never, RegExp][] = [
      [() => { throw errnoError('ENOENT', 'open'); }, () => { throw errnoError('ENOSYS', 'userfaultfd'); }, /userfaultfd\(2\)/],
      [() => { throw errnoError('EACCES', 'open'); }, () => { throw errnoError('EINVAL', 'UFFDIO_API'); }, /UFFD_FEATURE_WP_ASYNC/],
      [() => { throw errnoError('ENOTTY', 'PAGEMAP_SCAN'); }, () => { throw errnoError('ENOTTY', 'PAGEMAP_SCAN'); }, /PAGEMAP_SCAN/],
    ];
    for (const [flags, track, why] of cases) {
      using m = lacking(flags, track).map(4 * PAGE);
      let err = (() => { try { m.pageFlags(); } catch (e) { return e as Error & { code?: string }; } })();
      expect(err?.code).toBe('ERR_NOT_SUPPORTED');
      expect(err?.message).toMatch(/PAGEMAP_SCAN ioctl \(Linux 6\.7\+\) or a readable \/proc\/self\/pagemap/);
      err = (() => { try { m.trackWrites(); } catch (e) { return e as Error & { code?: string }; } })();
      expect(err?.code).toBe('ERR_NOT_SUPPORTED');
      expect(err?.message).toMatch(why);
    }
    // Other kernel errors stay errno errors.
    using m = lacking(() => { throw errnoError('ENOMEM', 'PAGEMAP_SCAN'); }, () => { throw errnoError('EMFILE', 'userfaultfd'); }).map(4 * PAGE);
    expect(code(() => m.pageFlags())).toBe('ENOMEM');
    expect(code(() => m.trackWrites())).toBe('EMFILE');
  });
});
