// The reference simulator tested directly through the Backend interface, for
// what only the simulator has or does: its facilities (reclaim(), memoryLimit,
// residentBytes, its identity) and the documented divergences from the kernel
// ("Divergences from the kernel" in docs/SIMULATOR.md, numbered there). Every
// kernel fact both backends share is in test/contract/backend.test.ts, which runs
// on the kernel and on the simulator. Each case below says why it is here.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SimulatorBackend } from '../lib/simulator';
import { A, anon, code, firsts, letters, mapFile, P, res, RW, touch } from './backend-helpers';
import { tempFile } from './helpers';

describe('SimulatorBackend basics', () => {
  // Simulator only: the simulator itself: its identity, page size, view limit and the advice set of the Linux version it models.
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

  // Simulator only: divergence 7 (sizes and huge pages).
  it('rejects mappings larger than maxViewLength and hugetlb with ENOMEM', () => {
    const sim = new SimulatorBackend();
    expect(code(() => anon(sim, 0, false, { length: 2 ** 31 + 1 }))).toBe('ENOMEM');
    expect(code(() => anon(sim, 1, false, { hugePageShift: 21 }))).toBe('ENOMEM');
  });
});

describe('advice on private anonymous memory', () => {
  // Simulator only: reclaim() is a simulator facility (memory pressure on demand).
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

  // Simulator only: reclaim() is a simulator facility.
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

  // Simulator only: divergence 1: reading page 2 (firsts) maps the zero page on the kernel; the public-API form of this fact is in test/contract/mapping.test.ts.
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

  // Simulator only: residentBytes is a simulator facility. Not yet a documented divergence: on Linux 6.18 here, FREE + PAGEOUT after POPULATE_READ left the two zero-page mappings not resident (00), where the model keeps them (11).
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
    // zero-page mappings survive PAGEOUT alone, not FREE then PAGEOUT (the kernel's behaviour,
    // checked on both backends in test/contract/results.test.ts)
    const z = anon(sim, 2);
    z.advise(0, 2 * P, A.POPULATE_READ);
    z.advise(0, 2 * P, A.PAGEOUT);
    expect(res(z, 2)).toBe('11');
    z.advise(0, 2 * P, A.FREE);
    z.advise(0, 2 * P, A.PAGEOUT);
    expect(res(z, 2)).toBe('00');
    expect(sim.residentBytes).toBe(3 * P);
  });

  // Simulator only: divergence 7: COLLAPSE assumes a 2 MiB-aligned mapping.
  it('COLLAPSE is EINVAL unless whole 2 MiB huge pages fit', () => {
    const sim = new SimulatorBackend();
    expect(code(() => anon(sim, 4).advise(0, 4 * P, A.COLLAPSE))).toBe('EINVAL');
    const big = anon(sim, 512);
    big.advise(0, P, A.COLLAPSE);
    expect(big.residency(0, 512 * P).every((v) => v === 1)).toBe(true);
  });
});

describe('shared anonymous memory (shmem)', () => {
  // Simulator only: divergence 1: reading untouched shmem (firsts) allocates the page on the kernel.
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
  // Simulator only: divergence 5: file coherence at the operations the simulator sees.
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

  // Simulator only: maps past EOF, which the addon refuses (SIGBUS on access); the simulator models a file shortened after mapping.
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

  // Simulator only: maps past EOF, which the addon refuses; the kernel case is in test/contract/mapping.test.ts (truncated file).
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

  // Simulator only: divergences 1 and 3 (fault-around maps cached neighbours) and 6 (REMOVE writes zeros).
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

  // Simulator only: divergence 3: dirty after write(2), folios, LRU.
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

  // Simulator only: divergence 3: pages still dirty after write(2) stay cached on the kernel.
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

describe('extents: per-view detach', () => {
  // Simulator only: reclaim() is a simulator facility.
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

  // Simulator only: divergence 8: views over overlapping memory share fate.
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
});

describe('behaviours found by the differential test', () => {
  // Simulator only: divergence 3: the kernel activates a page PAGEOUT skipped and keeps it later.
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

  // Simulator only: the addon refuses to grow shared memory past its object (ERR_OPERATION_NOT_SUPPORTED: SIGBUS on access); the simulator grows it and models the fault.
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
});

describe('copy-on-write of a private file page (found by the differential test)', () => {
  // Simulator only: divergence 3: the page written with write(2) is still dirty, so fadvise(DONTNEED) keeps it on the kernel.
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

describe('views, resize and close', () => {
  // Simulator only: async work runs on a later turn of the event loop, so close() always
  // overtakes it; on the kernel a short populate may finish on the threadpool first (the
  // contract suite asserts only that the promise settles: test/contract/mapping.test.ts).
  it('close leaves views attached over zeros (as the kernel backend) and rejects unfinished async work', async () => {
    const sim = new SimulatorBackend();
    const m = anon(sim, 2);
    const w = m.view(0, 2 * P);
    w.fill(3);
    const pending = m.populate(0, 2 * P, true);
    m.close();
    m.close();
    expect(w.length).toBe(2 * P);
    expect(w.every((b) => b === 0)).toBe(true);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    expect(sim.residentBytes).toBe(0);
  });
});
