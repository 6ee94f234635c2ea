// Kernel facts at the Backend level (lib/backend.ts), below the public API's
// rounding and validation, on the project's backend: the kernel through the
// addon, or the simulator. Expected values are what Linux 6.18 does (see "Kernel
// facts the model follows" in docs/SIMULATOR.md); the simulator must give the
// same, and what it cannot model is listed under "Known differences" there and
// tested in test/simulator.test.ts.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { A, anon, code, firsts, letters, mapFile, P, rejection, res, RW, touch } from '../backend-helpers';
import { pw, tempFile } from '../helpers';

const be = pw.backend;
const guards = be.supports(A.GUARD_INSTALL);
const populates = be.supports(A.POPULATE_READ);

describe('basics', () => {
  it('anonymous memory zero-fills and is not resident until touched', () => {
    const sim = be;
    const m = anon(sim, 4);
    // Residency first: on the kernel, reading a page maps the zero page (resident).
    expect(res(m, 4)).toBe('0000');
    touch(m, [0, 1, 3]);
    expect(res(m, 4)).toBe('1101');
    expect(m.view(2 * P, P).every((b) => b === 0)).toBe(true);
  });

  it('residencyBits folds the residency of up to 32 pages into an unsigned 32-bit integer, bit i = page i', () => {
    const m = anon(be, 40);
    if (m.residencyBits === undefined) return m.close(); // optional in the Backend interface; both backends have it
    touch(m, [0, 2, 31, 35]);
    expect(m.residencyBits(0, 32 * P)).toBe((1 | (1 << 2) | 2 ** 31) >>> 0);
    expect(m.residencyBits(P, 3 * P)).toBe(0b10);
    expect(m.residencyBits(31 * P, P + 1)).toBe(0b1); // a partial page counts: pages 31 and 32
    expect(m.residencyBits(32 * P, 4 * P)).toBe(0b1000);
    expect(m.residencyBits(8 * P, 0)).toBe(0);
    expect(code(() => m.residencyBits!(0, 32 * P + 1))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => m.residencyBits!(0, 33 * P))).toBe('ERR_OUT_OF_RANGE');
    // The same answer as the vector.
    for (const [o, l] of [[0, 32], [3, 29], [8, 32]]) {
      const bits = m.residencyBits(o * P, l * P);
      expect(Array.from(m.residency(o * P, l * P))).toEqual(Array.from({ length: l }, (_, i) => (bits >>> i) & 1));
    }
    m.close();
  });

  it('unknown advice is EINVAL, even with length 0; length 0 otherwise succeeds', () => {
    const sim = be;
    const m = anon(sim, 1, true);
    expect(code(() => m.advise(0, 0, 5))).toBe('EINVAL');
    expect(code(() => m.advise(0, P, 100))).toBe('EINVAL');
    expect(code(() => m.advise(0, 0, A.FREE))).toBeUndefined();
  });
});

describe('advice on private anonymous memory', () => {
  it('DONTNEED zero-fills and drops residency', () => {
    const sim = be;
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.DONTNEED);
    expect(res(m, 4)).toBe('0000'); // before reading: a read maps the zero page
    expect(firsts(m, 4)).toBe('0000');
  });

  it('REMOVE is EINVAL, WIPEONFORK and flag advice succeed', () => {
    const sim = be;
    const m = anon(sim, 2);
    expect(code(() => m.advise(0, P, A.REMOVE))).toBe('EINVAL');
    expect(code(() => m.advise(0, P, A.WIPEONFORK))).toBeUndefined();
    expect(code(() => m.advise(0, P, A.HUGEPAGE))).toBeUndefined();
  });

  it.skipIf(!guards)('GUARD_INSTALL replaces pages with zeros; POPULATE over a guard is EFAULT (kernels without MADV_GUARD_INSTALL, before 6.13: skipped)', () => {
    const sim = be;
    const m = anon(sim, 4);
    touch(m, [0, 1, 3]);
    m.advise(0, 4 * P, A.GUARD_INSTALL);
    expect(res(m, 4)).toBe('0000');
    expect(code(() => m.advise(0, 4 * P, A.POPULATE_READ))).toBe('EFAULT');
    expect(code(() => m.advise(0, 4 * P, A.WILLNEED))).toBeUndefined();
    m.advise(0, 4 * P, A.GUARD_REMOVE);
    expect(firsts(m, 4)).toBe('0000');
  });

  it.skipIf(!populates)('protection: POPULATE_WRITE needs PROT_WRITE, POPULATE_READ needs access (kernels without MADV_POPULATE_*, before 5.14: skipped)', () => {
    const sim = be;
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
  it.skipIf(!guards)('lock populates; destructive advice on locked pages is EINVAL; DONTNEED_LOCKED works (kernels without MADV_GUARD_INSTALL, before 6.13: skipped)', async () => {
    const sim = be;
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
    expect(res(m, 4)).toBe('0000'); // before reading: a read maps the zero page
    expect(firsts(m, 4)).toBe('0000');
  });

  it('madvise walks in order: a locked tail is reached after the head was zapped', async () => {
    const sim = be;
    const m = anon(sim, 4);
    m.view(0, 4 * P).fill(1);
    await m.lock(2 * P, 2 * P, false);
    expect(code(() => m.advise(0, 4 * P, A.DONTNEED))).toBe('EINVAL');
    expect(res(m, 4)).toBe('0011');
  });

  it('MLOCK_ONFAULT populates nothing; lock on PROT_NONE is ENOMEM', async () => {
    const sim = be;
    const m = anon(sim, 4);
    await m.lock(0, 4 * P, true);
    expect(res(m, 4)).toBe('0000');
    m.unlock(0, 4 * P);
    m.protect(0, 4 * P, 0);
    expect(await rejection(m.lock(0, 4 * P, false))).toBe('ENOMEM');
  });
});

describe('file mappings', () => {
  it('private mappings read the file and never write back', async () => {
    const sim = be;
    const file = tempFile(letters(4));
    const m = mapFile(sim, file, 4, false);
    expect(firsts(m, 4)).toBe('abcd');
    touch(m, [0, 1, 3]);
    await m.flush(0, 4 * P, false);
    m.close();
    expect(fs.readFileSync(file)[0]).toBe(97);
  });

  it('DONTNEED on a private mapping shows the file again; FREE EINVAL; REMOVE EACCES', () => {
    const sim = be;
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

  it('a shared writable mapping of a read-only descriptor is EACCES, and so is mprotect(PROT_WRITE)', () => {
    const sim = be;
    const file = tempFile(letters(1));
    expect(code(() => mapFile(sim, file, 1, true, { writable: false }))).toBe('EACCES');
    const m = mapFile(sim, file, 1, true, { writable: false, protection: 1 });
    expect(code(() => m.protect(0, P, RW))).toBe('EACCES');
    expect(code(() => m.protect(0, P, 5))).toBeUndefined();
  });

  it('a flush shows the data to other mappings of the file when they page it in', () => {
    const sim = be;
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

describe('views, resize and close', () => {
  it('resize copies contents and detaches old views; growing a split mapping is EFAULT', async () => {
    const sim = be;
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
    const sim = be;
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
    const sim = be;
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

  it('arena pattern: spans carved out of a detached extent stay independent', () => {
    const sim = be;
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

  it('zero-length views can be detached once', () => {
    const sim = be;
    const m = anon(sim, 1);
    const empty = m.view(P, 0);
    expect(empty.length).toBe(0);
    expect(m.detachView(empty)).toBe(true);
    expect(m.detachView(empty)).toBe(false);
  });

  it('resize detaches every view of every extent and keeps the contents; close zeroes them', () => {
    const sim = be;
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
    more[1].fill(7);
    m.close();
    for (const x of [v, ...more]) expect(x.length === 0 || x.every((b) => b === 0)).toBe(true);
    expect(more[1].length).toBe(3 * P); // attached, zero
  });

  it('file mappings: per-span views, detach one, flush writes both spans back', () => {
    const sim = be;
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
  it.skipIf(!populates)('shmem: PAGEOUT drops clean pages a read fault allocated, keeps written ones and unmapped ones (kernels without MADV_POPULATE_*, before 5.14: skipped)', () => {
    const sim = be;
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

  it('mprotect making a locked private range writable populates it (not with MLOCK_ONFAULT)', async () => {
    const sim = be;
    const m = anon(sim, 2, false, { protection: 0 });
    expect(await rejection(m.lock(0, 2 * P, false))).toBe('ENOMEM'); // the lock flag stays
    m.protect(0, 2 * P, RW);
    expect(res(m, 2)).toBe('11');
    const f = anon(sim, 2, false, { protection: 0 });
    await f.lock(0, 2 * P, true);
    f.protect(0, 2 * P, RW);
    expect(res(f, 2)).toBe('00');
  });

  it.skipIf(!guards)('populate checks the protection before the guard marker (kernels without MADV_GUARD_INSTALL, before 6.13: skipped)', () => {
    const sim = be;
    const m = anon(sim, 1);
    m.advise(0, P, A.GUARD_INSTALL);
    expect(code(() => m.advise(0, P, A.POPULATE_READ))).toBe('EFAULT');
    m.protect(0, P, 0);
    expect(code(() => m.advise(0, P, A.POPULATE_READ))).toBe('EINVAL');
  });

  it.skipIf(!guards)('close writes back a dirty shared file page behind a guard marker (kernels without MADV_GUARD_INSTALL, before 6.13: skipped)', () => {
    const sim = be;
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
    const sim = be;
    const m = anon(sim, 2);
    m.protect(0, P, 0); // page 0 PROT_NONE, page 1 read-write
    // mlock sets VM_LOCKED on both, then fails to populate the PROT_NONE page.
    expect(await rejection(m.lock(0, 2 * P, false))).toBe('ENOMEM');
    expect(Array.from(m.residency(0, 2 * P))).toEqual([0, 0]);
    m.protect(0, 2 * P, RW | 4);
    // Page 0 becomes writable and is populated; page 1 was writable already and is left alone.
    expect(Array.from(m.residency(0, 2 * P))).toEqual([1, 0]);
    m.close();
  });
});
