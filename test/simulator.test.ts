// The reference simulator, tested directly through the Backend interface.
// Expected values are what Linux 6.18 does (see "Kernel facts the model follows" in docs/SIMULATOR.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackendMapping, MapRequest } from '../lib/backend';
import { SimulatorBackend } from '../lib/simulator';

const P = 4096;
const RW = 3;
const A = {
  NORMAL: 0, RANDOM: 1, WILLNEED: 3, DONTNEED: 4, FREE: 8, REMOVE: 9, HUGEPAGE: 14, WIPEONFORK: 18, COLD: 20,
  PAGEOUT: 21, POPULATE_READ: 22, POPULATE_WRITE: 23, DONTNEED_LOCKED: 24, COLLAPSE: 25, GUARD_INSTALL: 102,
  GUARD_REMOVE: 103,
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-sim-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function tempFile(content: Uint8Array): string {
  const file = path.join(dir, `f-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, content);
  return file;
}

/** n pages, page i filled with the letter 'a' + i. */
function letters(n: number, extra = 0): Uint8Array {
  const out = new Uint8Array(n * P + extra);
  for (let i = 0; i < out.length; i++) out[i] = 97 + Math.floor(i / P);
  return out;
}

function anon(sim: SimulatorBackend, pages: number, shared = false, extra: Partial<MapRequest> = {}): BackendMapping {
  return sim.map({ length: pages * P, protection: RW, shared, populate: false, noreserve: false, hugePageShift: 0, ...extra });
}

function mapFile(
  sim: SimulatorBackend,
  file: string,
  pages: number,
  shared: boolean,
  opts: { writable?: boolean; protection?: number; offset?: number } = {},
): BackendMapping {
  const writable = opts.writable ?? true;
  const fd = fs.openSync(file, writable ? 'r+' : 'r');
  try {
    return sim.map({
      length: pages * P,
      protection: opts.protection ?? RW,
      shared,
      populate: false,
      noreserve: false,
      hugePageShift: 0,
      file: { fd, path: file, offset: opts.offset ?? 0, writable },
    });
  } finally {
    fs.closeSync(fd); // the backend must not need the caller's descriptor
  }
}

/** First byte of each page. */
function firsts(m: BackendMapping, pages: number): string {
  const w = m.view(0, pages * P);
  let s = '';
  for (let i = 0; i < pages; i++) s += w[i * P] === 0 ? '0' : String.fromCharCode(w[i * P]);
  return s;
}

function res(m: BackendMapping, pages: number): string {
  return Array.from(m.residency(0, pages * P)).join('');
}

/** Write 'A' + i at the start of the pages in `which`. */
function touch(m: BackendMapping, which: number[]): void {
  const w = m.view(0, m.length);
  for (const i of which) w[i * P] = 65 + i;
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('SimulatorBackend basics', () => {
  it('identifies itself and probes advice like Linux 6.18', () => {
    const sim = new SimulatorBackend();
    expect(sim.kind).toBe('simulator');
    expect(sim.pageSize).toBe(4096);
    expect(sim.maxViewLength).toBe(2 ** 31);
    const yes = [0, 1, 2, 3, 4, 8, 9, 10, 17, 18, 21, 22, 23, 24, 25, 102, 103];
    const no = [-1, 5, 6, 7, 26, 99, 100, 101, 104];
    for (const a of yes) expect(sim.supports(a)).toBe(true);
    for (const a of no) expect(sim.supports(a)).toBe(false);
  });

  it('anonymous memory zero-fills and is not resident until touched', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    expect(m.view(0, 4 * P).every((b) => b === 0)).toBe(true);
    expect(res(m, 4)).toBe('0000');
    touch(m, [0, 1, 3]);
    expect(res(m, 4)).toBe('1101');
    expect(sim.residentBytes).toBe(3 * P);
  });

  it('rejects mappings larger than maxViewLength and hugetlb with ENOMEM', () => {
    const sim = new SimulatorBackend();
    expect(code(() => anon(sim, 0, false, { length: 2 ** 31 + 1 }))).toBe('ENOMEM');
    expect(code(() => anon(sim, 1, false, { hugePageShift: 21 }))).toBe('ENOMEM');
  });

  it('unknown advice is EINVAL, even with length 0; length 0 otherwise succeeds', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 1, true);
    expect(code(() => m.advise(0, 0, 5))).toBe('EINVAL');
    expect(code(() => m.advise(0, P, 100))).toBe('EINVAL');
    expect(code(() => m.advise(0, 0, A.FREE))).toBeUndefined();
  });
});

describe('advice on private anonymous memory', () => {
  it('DONTNEED zero-fills and drops residency', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.DONTNEED);
    expect(firsts(m, 4)).toBe('0000');
    expect(res(m, 4)).toBe('0000');
  });

  it('FREE keeps pages until reclaim, which discards them as zeros', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.FREE);
    expect(firsts(m, 4)).toBe('AB0D');
    expect(res(m, 4)).toBe('1101');
    expect(sim.reclaim(1 << 20)).toBe(3 * P);
    expect(firsts(m, 4)).toBe('0000');
    expect(res(m, 4)).toBe('0000');
  });

  it('a write after FREE cancels the free for that page', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.FREE);
    m.view(P, 10)[5] = 7; // write into page 1
    m.view(2 * P, 1)[0] = 87; // write into untouched page 2
    expect(sim.reclaim(1 << 20)).toBe(2 * P);
    expect(firsts(m, 4)).toBe('0BW0');
    expect(res(m, 4)).toBe('0110');
  });

  it('PAGEOUT discards clean lazy-free pages and keeps dirty anonymous pages (no swap)', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(firsts(m, 4)).toBe('AB0D');
    expect(res(m, 4)).toBe('1101');
    m.advise(0, 2 * P, A.FREE);
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(firsts(m, 4)).toBe('000D');
    expect(res(m, 4)).toBe('0001');
  });

  it('WILLNEED and COLD change nothing; POPULATE_READ maps the zero page', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.WILLNEED);
    m.advise(0, 4 * P, A.COLD);
    expect(res(m, 4)).toBe('1101');
    m.advise(0, 4 * P, A.POPULATE_READ);
    expect(res(m, 4)).toBe('1111');
    expect(sim.residentBytes).toBe(3 * P); // the zero page is not charged
    // zero-page mappings survive FREE + PAGEOUT
    const z = anon(sim, 2);
    z.advise(0, 2 * P, A.POPULATE_READ);
    z.advise(0, 2 * P, A.FREE);
    z.advise(0, 2 * P, A.PAGEOUT);
    expect(res(z, 2)).toBe('11');
  });

  it('REMOVE is EINVAL, WIPEONFORK and flag advice succeed', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2);
    expect(code(() => m.advise(0, P, A.REMOVE))).toBe('EINVAL');
    expect(code(() => m.advise(0, P, A.WIPEONFORK))).toBeUndefined();
    expect(code(() => m.advise(0, P, A.HUGEPAGE))).toBeUndefined();
  });

  it('COLLAPSE is EINVAL unless whole 2 MiB huge pages fit', () => {
    const sim = new SimulatorBackend();
    expect(code(() => anon(sim, 4).advise(0, 4 * P, A.COLLAPSE))).toBe('EINVAL');
    const big = anon(sim, 512);
    big.advise(0, P, A.COLLAPSE);
    expect(big.residency(0, 512 * P).every((v) => v === 1)).toBe(true);
  });

  it('GUARD_INSTALL replaces pages with zeros; POPULATE over a guard is EFAULT', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.GUARD_INSTALL);
    expect(res(m, 4)).toBe('0000');
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_READ))).toBe('EFAULT');
    expect(code(() => m.advise(0, 4 * P, A.WILLNEED))).toBeUndefined();
    m.advise(0, 4 * P, A.GUARD_REMOVE);
    expect(firsts(m, 4)).toBe('0000');
  });

  it('protection: POPULATE_WRITE needs PROT_WRITE, POPULATE_READ needs access', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    m.protect(0, 4 * P, 1);
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_WRITE))).toBe('EINVAL');
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_READ))).toBeUndefined();
    m.advise(0, 4 * P, A.DONTNEED);
    m.protect(2 * P, 2 * P, 0);
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_READ))).toBe('EINVAL');
    expect(res(m, 4)).toBe('1100'); // the head was populated before the error
  });
});

describe('locked memory', () => {
  it('lock populates; destructive advice on locked pages is EINVAL; DONTNEED_LOCKED works', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    await m.lock(0, 4 * P, false);
    expect(res(m, 4)).toBe('1111');
    for (const a of [A.DONTNEED, A.FREE, A.REMOVE, A.COLD, A.PAGEOUT, A.GUARD_INSTALL]) {
      expect(code(() => m.advise(0, 4 * P, a))).toBe('EINVAL');
    }
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_WRITE))).toBeUndefined();
    expect(code(() => m.flushSync(0, P, true))).toBe('EBUSY');
    m.advise(0, 4 * P, A.DONTNEED_LOCKED);
    expect(firsts(m, 4)).toBe('0000');
    expect(res(m, 4)).toBe('0000');
  });

  it('madvise walks in order: a locked tail is reached after the head was zapped', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    m.view(0, 4 * P).fill(1);
    await m.lock(2 * P, 2 * P, false);
    expect(code(() => m.advise(0, 4 * P, A.DONTNEED))).toBe('EINVAL');
    expect(res(m, 4)).toBe('0011');
  });

  it('MLOCK_ONFAULT populates nothing; lock on PROT_NONE is ENOMEM', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    await m.lock(0, 4 * P, true);
    expect(res(m, 4)).toBe('0000');
    m.unlock(0, 4 * P);
    m.protect(0, 4 * P, 0);
    await expect(m.lock(0, 4 * P, false)).rejects.toMatchObject({ code: 'ENOMEM' });
  });
});

describe('shared anonymous memory (shmem)', () => {
  it('DONTNEED keeps contents and residency; REMOVE zeroes; FREE is EINVAL', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4, true);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.DONTNEED);
    expect(firsts(m, 4)).toBe('AB0D');
    expect(res(m, 4)).toBe('1101');
    expect(code(() => m.advise(0, 4 * P, A.FREE))).toBe('EINVAL');
    expect(code(() => m.advise(0, 4 * P, A.WIPEONFORK))).toBe('EINVAL');
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(res(m, 4)).toBe('1101');
    m.advise(0, 4 * P, A.GUARD_INSTALL);
    m.advise(0, 4 * P, A.GUARD_REMOVE);
    expect(firsts(m, 4)).toBe('AB0D');
    m.advise(0, 4 * P, A.REMOVE);
    expect(firsts(m, 4)).toBe('0000');
    expect(res(m, 4)).toBe('0000');
  });
});

describe('file mappings', () => {
  it('private mappings read the file and never write back', async () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, false);
    expect(firsts(m, 4)).toBe('abcd');
    touch(m, [0, 1, 3]);
    await m.flush(0, 4 * P, false);
    m.close();
    expect(fs.readFileSync(file)[0]).toBe(97);
  });

  it('DONTNEED on a private mapping shows the file again; FREE EINVAL; REMOVE EACCES', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, false);
    touch(m, [0, 1, 3]);
    expect(code(() => m.advise(0, 4 * P, A.FREE))).toBe('EINVAL');
    expect(code(() => m.advise(0, 4 * P, A.REMOVE))).toBe('EACCES');
    expect(code(() => m.advise(0, 4 * P, A.COLLAPSE))).toBe('EINVAL');
    m.advise(0, 4 * P, A.DONTNEED);
    expect(firsts(m, 4)).toBe('abcd');
    expect(res(m, 4)).toBe('1111'); // page cache
  });

  it('shared mappings write back on flush and on close', async () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, true);
    touch(m, [1]);
    expect(fs.readFileSync(file)[P]).toBe(98);
    await m.flush(0, 4 * P, false);
    expect(fs.readFileSync(file)[P]).toBe(66);
    touch(m, [2]);
    m.close();
    expect(fs.readFileSync(file)[2 * P]).toBe(67);
    expect(m.closed).toBe(true);
  });

  it('a shared mapping never extends the file', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(1, 100));
    const m = mapFile(sim, file, 3, true);
    m.view(0, 3 * P).fill(120);
    m.flushSync(0, 3 * P, false);
    const back = fs.readFileSync(file);
    expect(back.length).toBe(P + 100);
    expect(back.every((b) => b === 120)).toBe(true);
  });

  it('POPULATE past EOF is EFAULT after populating the pages before it', async () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(2, 100)); // EOF inside page 2
    const m = mapFile(sim, file, 4, true);
    expect(res(m, 4)).toBe('1110');
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_READ))).toBe('EFAULT');
    expect(code(() => m.advise(2 * P, P, A.POPULATE_WRITE))).toBeUndefined();
    await expect(m.populate(3 * P, P, false)).rejects.toMatchObject({ code: 'EFAULT' });
    await expect(m.lock(0, 4 * P, false)).rejects.toMatchObject({ code: 'ENOMEM' });
  });

  it('REMOVE punches a hole in a shared mapping and its file', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, true);
    m.advise(P, P, A.REMOVE);
    expect(firsts(m, 4)).toBe('a0cd');
    expect(res(m, 4)).toBe('1011');
    const back = fs.readFileSync(file);
    expect(back.length).toBe(4 * P);
    expect(back[P]).toBe(0);
    const ro = mapFile(sim, file, 4, true, { writable: false, protection: 1 });
    expect(code(() => ro.advise(0, P, A.REMOVE))).toBe('EACCES');
  });

  it('PAGEOUT evicts clean mapped file pages, keeps dirty and unmapped ones', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, true);
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(res(m, 4)).toBe('1111'); // never mapped: only in the page cache
    touch(m, [0, 1]);
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(res(m, 4)).toBe('1111'); // dirty
    m.flushSync(0, P, false);
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(res(m, 4)).toBe('0111');
    expect(firsts(m, 4)).toBe('ABcd'); // contents come back from the file
    m.advise(0, 4 * P, A.WILLNEED);
    expect(res(m, 4)).toBe('1111');
  });

  it('fadvise DONTNEED evicts clean unmapped pages; fileResidency reports them', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const fd = fs.openSync(file, 'r');
    try {
      expect(sim.fileResidency(fd, 0, 4 * P, false)).toMatchObject({ cached: 4, total: 4, source: 'cachestat' });
      sim.fadvise(fd, 0, 0, 4);
      const r = sim.fileResidency(fd, 0, 4 * P, true);
      expect(r).toMatchObject({ cached: 0, total: 4, source: 'mincore' });
      expect(Array.from(r.pages!)).toEqual([0, 0, 0, 0]);
      sim.fadvise(fd, P, P, 3);
      expect(sim.fileResidency(fd, 0, 4 * P, false).cached).toBe(1);
      expect(code(() => sim.fadvise(fd, 0, 0, 9))).toBe('EINVAL');
      expect(sim.accessMode(fd)).toBe('read');
    } finally {
      fs.closeSync(fd);
    }
    expect(code(() => sim.accessMode(fd))).toBe('EBADF');
  });

  it('a shared writable mapping of a read-only descriptor is EACCES, and so is mprotect(PROT_WRITE)', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(1));
    expect(code(() => mapFile(sim, file, 1, true, { writable: false }))).toBe('EACCES');
    const m = mapFile(sim, file, 1, true, { writable: false, protection: 1 });
    expect(code(() => m.protect(0, P, RW))).toBe('EACCES');
    expect(code(() => m.protect(0, P, 5))).toBeUndefined();
  });

  it('a flush shows the data to other mappings of the file when they page it in', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(2));
    const a = mapFile(sim, file, 2, true);
    const b = mapFile(sim, file, 2, false);
    touch(a, [0]);
    a.flushSync(0, 2 * P, false);
    expect(firsts(b, 2)).toBe('Ab');
    touch(a, [1]); // unflushed data is in the shared page cache
    const c = mapFile(sim, file, 2, true);
    expect(firsts(c, 2)).toBe('AB');
  });
});

describe('memory pressure', () => {
  it('reclaim discards in least-recently-used order', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    m.view(0, 4 * P).fill(1);
    m.advise(2 * P, P, A.FREE); // oldest
    m.advise(0, P, A.FREE);
    m.advise(3 * P, P, A.FREE);
    m.advise(3 * P, P, A.COLD); // COLD makes it the oldest
    expect(sim.reclaim(P)).toBe(P);
    expect(res(m, 4)).toBe('1110');
    expect(sim.reclaim(1)).toBe(P);
    expect(res(m, 4)).toBe('1100');
    expect(sim.reclaim(P)).toBe(P);
    expect(res(m, 4)).toBe('0100');
    expect(sim.reclaim(P)).toBe(0);
  });

  it('touching pages over the limit reclaims first, then fails with ERR_SIMULATED_OOM', async () => {
    const sim = new SimulatorBackend({ memoryLimit: 4 * P });
    const a = anon(sim, 4);
    a.view(0, 4 * P).fill(1);
    a.advise(0, 2 * P, A.FREE);
    const b = anon(sim, 4);
    await b.populate(0, 2 * P, true); // reclaims a's two lazy-free pages
    expect(res(a, 4)).toBe('0011');
    expect(sim.residentBytes).toBe(4 * P);
    await expect(b.populate(2 * P, P, true)).rejects.toMatchObject({ code: 'ERR_SIMULATED_OOM' });
    sim.memoryLimit = undefined;
    await b.populate(2 * P, P, true);
    expect(sim.residentBytes).toBe(5 * P);
  });

  it('JavaScript writes over the limit are reported at the next operation', () => {
    const sim = new SimulatorBackend({ memoryLimit: 2 * P });
    const m = anon(sim, 4);
    m.view(0, 4 * P).fill(1);
    expect(code(() => m.residency(0, 4 * P))).toBe('ERR_SIMULATED_OOM');
  });
});

describe('views, resize and close', () => {
  it('close detaches every view and rejects unfinished async work', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2);
    const w = m.view(0, 2 * P);
    const pending = m.populate(0, 2 * P, true);
    m.close();
    m.close();
    expect(w.length).toBe(0);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    expect(sim.residentBytes).toBe(0);
  });

  it('resize copies contents and detaches old views; growing a split mapping is EFAULT', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2);
    const w = m.view(0, 2 * P);
    w[5] = 9;
    m.resize(4 * P);
    expect(w.length).toBe(0);
    expect(m.length).toBe(4 * P);
    expect(m.view(0, 4 * P)[5]).toBe(9);
    m.protect(P, P, 1);
    expect(code(() => m.resize(8 * P))).toBe('EFAULT');
    m.resize(P);
    expect(m.view(0, P)[5]).toBe(9);
    const locked = anon(sim, 1);
    await locked.lock(0, P, false);
    locked.resize(3 * P);
    expect(res(locked, 3)).toBe('111');
  });

  it('detach(view) detaches the views but keeps the contents', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 1);
    const w = m.view(0, P);
    w[0] = 3;
    expect(m.detachView(new Uint8Array(4))).toBe(false);
    expect(m.detachView(w)).toBe(true);
    expect(w.length).toBe(0);
    expect(m.detachView(w)).toBe(false);
    expect(m.view(0, P)[0]).toBe(3);
  });
});

describe('extents: per-view detach', () => {
  it('detaching one view keeps views of other spans working, and the contents intact', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 8);
    const a = m.view(0, 2 * P);
    const b = m.view(2 * P, 2 * P);
    const c = m.view(5 * P + 10, 100); // unaligned, inside page 5
    a.fill(1);
    b.fill(2);
    c.fill(3);
    expect(m.detachView(a)).toBe(true);
    expect(a.length).toBe(0);
    expect(b.length).toBe(2 * P);
    expect(c.length).toBe(100);
    b[7] = 9; // still the mapping's memory
    c[0] = 4;
    const all = m.view(0, 8 * P); // spans several extents: they are merged into a new one
    expect(all[0]).toBe(1);
    expect(all[2 * P - 1]).toBe(1);
    expect(all[2 * P + 7]).toBe(9);
    expect(all[3 * P]).toBe(2);
    expect(all[5 * P + 10]).toBe(4);
    expect(all[5 * P + 110]).toBe(0);
    expect(res(m, 8)).toBe('11110100');
    expect(m.detachView(a)).toBe(false);
  });

  it('a view re-created after detach sees the same bytes and page states', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    const v = m.view(P, 2 * P);
    v.fill(7);
    m.advise(P, P, A.FREE); // page 1 lazy-free, hash taken through the extent
    expect(m.detachView(v)).toBe(true);
    const again = m.view(P, 2 * P);
    expect(again.every((x) => x === 7)).toBe(true);
    expect(res(m, 4)).toBe('0110');
    expect(sim.reclaim(1 << 20)).toBe(P); // the detach did not look like a write: page 1 is still clean lazy-free
    expect(again[0]).toBe(0);
    expect(again[P]).toBe(7);
    expect(res(m, 4)).toBe('0010');
  });

  it('arena pattern: spans carved out of a detached extent stay independent', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 8);
    const x = m.view(0, 8 * P);
    x.fill(5);
    expect(m.detachView(x)).toBe(true); // free the whole span
    const y = m.view(0, 4 * P); // two new buffers over halves of it
    const z = m.view(4 * P, 4 * P);
    expect(y[0]).toBe(5);
    expect(z[0]).toBe(5);
    y.fill(1);
    z.fill(2);
    expect(m.detachView(y)).toBe(true); // unpin y
    expect(z.length).toBe(4 * P);
    expect(z.every((b) => b === 2)).toBe(true);
    const y2 = m.view(0, 4 * P); // pin y again
    expect(y2.every((b) => b === 1)).toBe(true);
    expect(z.length).toBe(4 * P);
  });

  it('views inside one view share its fate; a view over several viewed extents detaches them', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4);
    const outer = m.view(0, 2 * P);
    const inner = m.view(10, 20); // inside outer's pages: the same memory
    inner[0] = 6;
    expect(outer[10]).toBe(6);
    expect(m.detachView(inner)).toBe(true);
    expect(outer.length).toBe(0);
    const left = m.view(0, P);
    const right = m.view(2 * P, P);
    right[0] = 8;
    const across = m.view(0, 3 * P); // overlaps both: their views would go stale, so they are detached
    expect(left.length).toBe(0);
    expect(right.length).toBe(0);
    expect(across[10]).toBe(6);
    expect(across[2 * P]).toBe(8);
    across[2 * P] = 9;
    expect(m.view(2 * P, P)[0]).toBe(9);
  });

  it('zero-length views can be detached once', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 1);
    const empty = m.view(P, 0);
    expect(empty.length).toBe(0);
    expect(m.detachView(empty)).toBe(true);
    expect(m.detachView(empty)).toBe(false);
  });

  it('resize and close detach every view of every extent; resize keeps the contents', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 6);
    const views = [m.view(0, P), m.view(P, 2 * P), m.view(4 * P, 2 * P), m.view(5 * P, 0)];
    views[0][0] = 1;
    views[1][P] = 2;
    views[2][P] = 3;
    m.resize(8 * P);
    for (const v of views) expect(v.length).toBe(0);
    expect(m.detachView(views[3])).toBe(false);
    const w = m.view(0, 8 * P);
    expect([w[0], w[2 * P], w[5 * P], w[7 * P]]).toEqual([1, 2, 3, 0]);
    m.resize(3 * P);
    expect(w.length).toBe(0);
    const v = m.view(P, 2 * P);
    expect(v[P]).toBe(2);
    m.resize(6 * P);
    expect(m.view(5 * P, P)[0]).toBe(0); // regrown pages are zero
    const more = [m.view(0, P), m.view(3 * P, 3 * P)];
    m.close();
    for (const x of [v, ...more]) expect(x.length).toBe(0);
  });

  it('file mappings: per-span views, detach one, flush writes both spans back', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, true);
    const a = m.view(0, P);
    const b = m.view(2 * P, 2 * P);
    expect(String.fromCharCode(a[0], b[0], b[P])).toBe('acd');
    a[0] = 65;
    b[P] = 68;
    expect(m.detachView(a)).toBe(true);
    expect(b.length).toBe(2 * P);
    m.flushSync(0, 4 * P, false);
    const back = fs.readFileSync(file);
    expect(String.fromCharCode(back[0], back[P], back[2 * P], back[3 * P])).toBe('AbcD');
    expect(firsts(m, 4)).toBe('AbcD');
  });
});

describe('behaviours found by the differential test', () => {
  it('POPULATE_WRITE dirties a shared file page even when its bytes do not change: PAGEOUT keeps it', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(2));
    const m = mapFile(sim, file, 2, true);
    m.advise(0, 2 * P, A.POPULATE_WRITE);
    m.advise(0, 2 * P, A.PAGEOUT);
    expect(res(m, 2)).toBe('11');
    m.flushSync(0, 2 * P, false); // written back: clean
    m.advise(0, 2 * P, A.PAGEOUT);
    expect(res(m, 2)).toBe('00');
  });

  it('shmem: PAGEOUT drops clean pages a read fault allocated, keeps written ones and unmapped ones', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 4, true, { populate: true });
    expect(res(m, 4)).toBe('1111');
    touch(m, [1]);
    m.advise(2 * P, P, A.DONTNEED); // page 2 stays in the shmem cache, unmapped
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(res(m, 4)).toBe('0110');
    m.advise(2 * P, P, A.POPULATE_READ); // mapped again
    m.advise(0, 4 * P, A.PAGEOUT);
    expect(res(m, 4)).toBe('0100');
    expect(firsts(m, 4)).toBe('0B00');
  });

  it('shmem: resize keeps the pages cut off in the object; pages past the object fault', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2, true);
    touch(m, [0, 1]);
    m.resize(P);
    m.resize(4 * P);
    expect(res(m, 4)).toBe('1100');
    expect(firsts(m, 2)).toBe('AB');
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_READ))).toBe('EFAULT');
    await expect(m.lock(0, 4 * P, false)).rejects.toMatchObject({ code: 'ENOMEM', syscall: 'mlock2' });
  });

  it('mprotect making a locked private range writable populates it (not with MLOCK_ONFAULT)', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2, false, { protection: 0 });
    await expect(m.lock(0, 2 * P, false)).rejects.toMatchObject({ code: 'ENOMEM' }); // the lock flag stays
    m.protect(0, 2 * P, RW);
    expect(res(m, 2)).toBe('11');
    const f = anon(sim, 2, false, { protection: 0 });
    await f.lock(0, 2 * P, true);
    f.protect(0, 2 * P, RW);
    expect(res(f, 2)).toBe('00');
  });

  it('populate checks the protection before the guard marker', () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 1);
    m.advise(0, P, A.GUARD_INSTALL);
    expect(code(() => m.advise(0, P, A.POPULATE_READ))).toBe('EFAULT');
    m.protect(0, P, 0);
    expect(code(() => m.advise(0, P, A.POPULATE_READ))).toBe('EINVAL');
  });

  it('close writes back a dirty shared file page behind a guard marker', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(1));
    const m = mapFile(sim, file, 1, true);
    touch(m, [0]);
    m.advise(0, P, A.GUARD_INSTALL);
    m.close();
    expect(fs.readFileSync(file)[0]).toBe(65);
  });
});

describe('mprotect of locked memory (found by the differential test)', () => {
  it('populates only the locked pages that were not writable before (mprotect_fixup, per VMA)', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2);
    m.protect(0, P, 0); // page 0 PROT_NONE, page 1 read-write
    // mlock sets VM_LOCKED on both, then fails to populate the PROT_NONE page.
    await expect(m.lock(0, 2 * P, false)).rejects.toMatchObject({ code: 'ENOMEM' });
    expect(Array.from(m.residency(0, 2 * P))).toEqual([0, 0]);
    m.protect(0, 2 * P, RW | 4);
    // Page 0 becomes writable and is populated; page 1 was writable already and is left alone.
    expect(Array.from(m.residency(0, 2 * P))).toEqual([1, 0]);
    m.close();
  });
});

describe('copy-on-write of a private file page (found by the differential test)', () => {
  it('a JavaScript write brings the file page back into the page cache', () => {
    const sim = new SimulatorBackend();
    const file = tempFile(letters(1));
    const fd = fs.openSync(file, 'r');
    const m = sim.map({ length: P, protection: RW, shared: false, populate: false, noreserve: false, hugePageShift: 0, file: { fd, path: file, offset: 0, writable: false } });
    fs.closeSync(fd);
    const probe = fs.openSync(file, 'r');
    sim.fadvise(probe, 0, P, 4); // POSIX_FADV_DONTNEED: the clean, unmapped file page leaves the page cache
    expect(sim.fileResidency(probe, 0, P, true).cached).toBe(0);
    m.view(0, 1)[0] = 0; // COW fault: copies from the file page, which is read in first
    m.advise(0, P, A.GUARD_INSTALL); // drops the private copy: mincore shows the page cache again
    expect(Array.from(m.residency(0, P))).toEqual([1]);
    expect(sim.fileResidency(probe, 0, P, true).cached).toBe(1);
    fs.closeSync(probe);
    m.close();
  });
});
