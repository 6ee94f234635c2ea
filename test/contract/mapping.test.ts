import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADVICE_NAMES, type ErrnoError } from '../../lib/index';
import { allEqual, onKernel, PAGE, pattern, pw, tempFile } from '../helpers';

describe('anonymous memory and advice', () => {
  it('starts zero-filled and keeps what JavaScript writes', () => {
    using m = pw.map(4 * PAGE);
    expect(m.length).toBe(4 * PAGE);
    expect(m.kind).toBe('anonymous');
    expect(allEqual(m.buffer, 0)).toBe(true);
    m.buffer.set(pattern(4 * PAGE));
    expect(m.buffer).toEqual(pattern(4 * PAGE));
  });

  it('dontneed zero-fills private anonymous memory', () => {
    using m = pw.map(4 * PAGE);
    m.buffer.fill(0xab);
    expect(m.advise('dontneed')).toEqual({ offset: 0, length: 4 * PAGE });
    expect(allEqual(m.buffer, 0)).toBe(true);
  });

  it('free keeps the content while there is no pressure', () => {
    using m = pw.map(8 * PAGE);
    m.buffer.set(pattern(8 * PAGE));
    m.advise('free');
    expect(m.buffer).toEqual(pattern(8 * PAGE));
  });

  it('pageout after free discards the pages (they read back zero); a page written after free survives', () => {
    using m = pw.map(4 * PAGE);
    m.buffer.set(pattern(4 * PAGE));
    m.advise('free');
    m.buffer[2 * PAGE + 5] = 0x5a; // re-dirties page 2 only
    m.advise('pageout');
    const b = m.buffer;
    expect(allEqual(b, 0, 0, 2 * PAGE)).toBe(true);
    expect(allEqual(b, 0, 3 * PAGE, 4 * PAGE)).toBe(true);
    const expected = pattern(4 * PAGE).slice(2 * PAGE, 3 * PAGE);
    expected[5] = 0x5a;
    expect(b.subarray(2 * PAGE, 3 * PAGE)).toEqual(expected);
  });

  it('pageout keeps ordinary dirty anonymous pages (no swap: nothing to discard)', () => {
    using m = pw.map(2 * PAGE);
    m.buffer.set(pattern(2 * PAGE));
    m.advise('pageout');
    expect(m.buffer).toEqual(pattern(2 * PAGE));
  });

  it('residency follows populate and dontneed', async () => {
    using m = pw.map(8 * PAGE);
    let r = m.residency();
    expect(r.total).toBe(8);
    expect(r.resident).toBe(0);
    await m.populate({ offset: 2 * PAGE, length: 3 * PAGE });
    r = m.residency();
    expect(Array.from(r.pages)).toEqual([0, 0, 1, 1, 1, 0, 0, 0]);
    expect(r.resident).toBe(3);
    m.advise('dontneed', { offset: 3 * PAGE, length: PAGE });
    expect(Array.from(m.residency().pages)).toEqual([0, 0, 1, 0, 1, 0, 0, 0]);
    expect(m.residency({ offset: 4 * PAGE + 1, length: 10 })).toMatchObject({ total: 1, resident: 1, offset: 4 * PAGE });
  });

  it('residency of up to 32 pages (answered as bits by the backend) agrees page by page with longer queries', () => {
    using m = pw.map(70 * PAGE);
    const touched = [0, 2, 31, 32, 33, 40, 63, 69];
    for (const p of touched) m.buffer[p * PAGE + 7] = 1;
    const whole = Array.from(m.residency().pages);
    expect(whole.flatMap((v, p) => (v ? [p] : []))).toEqual(touched);
    // Every window of 1, 31, 32 (bits) and 33 (vector) pages, unaligned too, says the same as the whole.
    for (const pages of [1, 31, 32, 33]) {
      for (const first of [0, 1, 2, 30, 31, 32, 37]) {
        const r = m.residency({ offset: first * PAGE + 5, length: (pages - 1) * PAGE + 1 });
        const expected = whole.slice(first, first + pages);
        expect({ pages, first, got: Array.from(r.pages) }).toEqual({ pages, first, got: expected });
        expect(r).toMatchObject({ total: pages, resident: expected.filter((v) => v === 1).length, offset: first * PAGE });
      }
    }
  });

  it('writes make pages resident; the vector is one byte per page', () => {
    using m = pw.map(3 * PAGE + 100);
    m.buffer[PAGE + 1] = 1;
    m.buffer[3 * PAGE + 99] = 1;
    const r = m.residency();
    expect(r.total).toBe(4);
    expect(Array.from(r.pages)).toEqual([0, 1, 0, 1]);
  });

  it('destructive advice rounds inward: bytes outside an unaligned range are never touched', () => {
    using m = pw.map(4 * PAGE);
    m.buffer.fill(7);
    // From the middle of page 0 to the middle of page 3: only pages 1 and 2 lie inside.
    const advised = m.advise('dontneed', { offset: PAGE / 2, length: 3 * PAGE });
    expect(advised).toEqual({ offset: PAGE, length: 2 * PAGE });
    const b = m.buffer;
    expect(allEqual(b, 7, 0, PAGE)).toBe(true);
    expect(allEqual(b, 0, PAGE, 3 * PAGE)).toBe(true);
    expect(allEqual(b, 7, 3 * PAGE, 4 * PAGE)).toBe(true);
  });

  it('each call rounds by its own advice, however advice changes between calls on one mapping', () => {
    using m = pw.map(4 * PAGE);
    const range = { offset: PAGE / 2, length: 3 * PAGE };
    const outward = { offset: 0, length: 4 * PAGE };
    const inward = { offset: PAGE, length: 2 * PAGE };
    const sequence = ['willneed', 'dontneed', 'dontneed', 'willneed', 'MADV_DONTNEED', 'MADV_WILLNEED', 'free', 'cold', 'willneed'] as const;
    for (const advice of sequence) {
      m.buffer.fill(7);
      const destructive = advice === 'dontneed' || advice === 'MADV_DONTNEED' || advice === 'free';
      expect({ advice, got: m.advise(advice, range) }).toEqual({ advice, got: destructive ? inward : outward });
      // dontneed zero-fills pages 1 and 2 only; the others leave every byte.
      const zeroed = advice === 'dontneed' || advice === 'MADV_DONTNEED';
      expect(allEqual(m.buffer, zeroed ? 0 : 7, PAGE, 3 * PAGE)).toBe(true);
      expect(allEqual(m.buffer, 7, 0, PAGE) && allEqual(m.buffer, 7, 3 * PAGE, 4 * PAGE)).toBe(true);
    }
    // A refused advice in between changes nothing for the next call.
    expect(() => m.advise('dontneeed' as never, range)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(m.advise('willneed', range)).toEqual(outward);
    expect(() => m.advise(4 as never, range)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(m.advise('dontneed', range)).toEqual(inward);
  });

  it('destructive advice over less than a page does nothing at all', () => {
    using m = pw.map(2 * PAGE);
    m.buffer.fill(9);
    expect(m.advise('dontneed', { offset: 10, length: PAGE })).toEqual({ offset: PAGE, length: 0 });
    expect(allEqual(m.buffer, 9)).toBe(true);
  });

  it('a destructive range that reaches the end of the mapping includes its last partial page', () => {
    using m = pw.map(2 * PAGE + 10);
    m.buffer.fill(3);
    expect(m.advise('dontneed', { offset: PAGE })).toEqual({ offset: PAGE, length: 2 * PAGE });
    expect(allEqual(m.buffer, 3, 0, PAGE)).toBe(true);
    expect(allEqual(m.buffer, 0, PAGE)).toBe(true);
  });

  it('non-destructive advice rounds outward', () => {
    using m = pw.map(4 * PAGE);
    expect(m.advise('willneed', { offset: PAGE + 1, length: 2 })).toEqual({ offset: PAGE, length: PAGE });
    expect(m.advise('cold', { offset: 10, length: 2 * PAGE })).toEqual({ offset: 0, length: 3 * PAGE });
  });

  it('every advice is either applied or rejected with an errno error, never a crash', () => {
    for (const advice of ADVICE_NAMES) {
      using m = pw.map(2 * PAGE);
      m.buffer.fill(1);
      try {
        m.advise(advice);
      } catch (err) {
        const e = err as ErrnoError;
        expect(e.syscall, advice).toBe('madvise');
        expect(e.code, advice).toMatch(/^E[A-Z]+$/);
      }
    }
  });

  it('free on a shared mapping fails with EINVAL from madvise', () => {
    using m = pw.map(PAGE, { shared: true });
    let caught: ErrnoError | undefined;
    try {
      m.advise('free');
    } catch (err) {
      caught = err as ErrnoError;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'madvise' });
    expect(caught?.message).toMatch(/^EINVAL: invalid argument, madvise \(MADV_FREE works only on private anonymous memory/);
  });

  it('dontneed on shared anonymous memory keeps the content (it lives in shmem)', () => {
    using m = pw.map(2 * PAGE, { shared: true });
    m.buffer.fill(0x42);
    m.advise('dontneed');
    expect(allEqual(m.buffer, 0x42)).toBe(true);
  });

  it('remove on shared anonymous memory frees the backing store (zeros)', () => {
    using m = pw.map(2 * PAGE, { shared: true });
    m.buffer.fill(0x42);
    m.advise('remove', { offset: PAGE, length: PAGE });
    expect(allEqual(m.buffer, 0x42, 0, PAGE)).toBe(true);
    expect(allEqual(m.buffer, 0, PAGE)).toBe(true);
  });

  it('supports() answers for every advice and knows MADV_FREE on this kernel', () => {
    for (const advice of ADVICE_NAMES) expect(typeof pw.supports(advice)).toBe('boolean');
    expect(pw.supports('free')).toBe(true);
    expect(pw.supports('dontneed')).toBe(true);
    expect(pw.supports('populate-write')).toBe(true);
  });
});

describe('lifetime', () => {
  it('close lets go of the memory: views stay attached but read zeros, writes reach nothing; a second close is harmless', () => {
    const m = pw.map(2 * PAGE);
    const whole = m.buffer;
    const part = m.view(PAGE, 10);
    whole.fill(7);
    m.close();
    expect(m.closed).toBe(true);
    // Still attached (Node's threadpool may be using them: see docs/RELIABILITY.md), but the contents are gone.
    expect(whole.length).toBe(2 * PAGE);
    expect(allEqual(whole, 0)).toBe(true);
    expect(allEqual(part, 0)).toBe(true);
    m.close();
    expect(() => m.buffer).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
    expect(() => m.advise('dontneed')).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
    expect(() => m.residency()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
  });

  it('after close, a write through an old view of a shared file mapping does not reach the file', () => {
    const file = tempFile(pattern(2 * PAGE));
    const m = pw.mapFile(file, { mode: 'shared' });
    const view = m.buffer;
    m.close();
    expect(allEqual(view, 0)).toBe(true);
    view.fill(9);
    expect(new Uint8Array(fs.readFileSync(file))).toEqual(pattern(2 * PAGE));
  });

  it('async work on a closed mapping rejects', async () => {
    const m = pw.map(PAGE);
    m.close();
    await expect(m.populate()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    await expect(m.flush()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    await expect(m.lock()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
  });

  it('close during an in-flight populate or flush settles the promise without crashing', async () => {
    for (let i = 0; i < 20; i++) {
      const m = pw.map(64 * 1024 * 1024, { noreserve: true });
      const work = i % 2 === 0 ? m.populate() : m.flush();
      m.close();
      const outcome = await work.then(
        () => 'resolved',
        (err: { code?: string }) => err.code,
      );
      expect(['resolved', 'ERR_MAPPING_CLOSED']).toContain(outcome);
    }
  });

  it('resize grows and shrinks anonymous memory, keeping contents and detaching old views', () => {
    using m = pw.map(2 * PAGE);
    m.buffer.set(pattern(2 * PAGE));
    const old = m.buffer;
    m.resize(5 * PAGE);
    expect(old.length).toBe(0);
    expect(m.length).toBe(5 * PAGE);
    expect(m.buffer.subarray(0, 2 * PAGE)).toEqual(pattern(2 * PAGE));
    expect(allEqual(m.buffer, 0, 2 * PAGE)).toBe(true);
    m.resize(PAGE);
    expect(m.buffer).toEqual(pattern(PAGE));
  });

  it.skipIf(!onKernel)('a mapping larger than 4 GiB works through windows (simulator: mappings are JS ArrayBuffers)', async () => {
    const size = 5 * 1024 ** 3;
    using m = pw.map(size, { noreserve: true });
    expect(m.length).toBe(size);
    // Whole where the engine's ArrayBuffers may exceed 4 GiB (Node 22+): test/big-buffer.test.ts.
    if (pw.backend.maxViewLength < size) expect(() => m.buffer).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_TOO_LARGE' }));
    else expect(m.buffer.length).toBe(size);
    const far = m.view(size - 2 * PAGE, 2 * PAGE);
    far.fill(0x11);
    expect(m.residency({ offset: size - 2 * PAGE }).resident).toBe(2);
    expect(m.residency().total).toBe(size / PAGE);
    m.advise('dontneed', { offset: size - PAGE });
    expect(allEqual(far, 0x11, 0, PAGE)).toBe(true);
    expect(allEqual(far, 0, PAGE)).toBe(true);
    await m.populate({ offset: 4 * 1024 ** 3, length: 4 * PAGE });
    expect(m.residency({ offset: 4 * 1024 ** 3, length: 4 * PAGE }).resident).toBe(4);
  });
});

describe('file mappings', () => {
  it('a private mapping reads the file and JavaScript writes never reach it', () => {
    const content = pattern(3 * PAGE);
    const file = tempFile(content);
    using m = pw.mapFile(file);
    expect(m.kind).toBe('file');
    expect(m.shared).toBe(false);
    expect(m.buffer).toEqual(content);
    m.buffer.fill(0xee);
    m.flushSync();
    expect(new Uint8Array(fs.readFileSync(file))).toEqual(content);
  });

  it('a shared mapping writes reach the file after flush', async () => {
    const file = tempFile(new Uint8Array(2 * PAGE));
    using m = pw.mapFile(file, { mode: 'shared' });
    m.buffer.set(pattern(2 * PAGE, 3));
    await m.flush();
    expect(new Uint8Array(fs.readFileSync(file))).toEqual(pattern(2 * PAGE, 3));
  });

  it('maps at an unaligned offset and length', () => {
    const content = pattern(4 * PAGE);
    const file = tempFile(content);
    using m = pw.mapFile(file, { offset: PAGE + 123, length: 1000 });
    expect(m.length).toBe(1000);
    expect(m.buffer).toEqual(content.subarray(PAGE + 123, PAGE + 1123));
  });

  it('dontneed on a private file mapping brings back the file content', () => {
    const content = pattern(2 * PAGE);
    const file = tempFile(content);
    using m = pw.mapFile(file);
    m.buffer.fill(0);
    m.advise('dontneed');
    expect(m.buffer).toEqual(content);
  });

  it('populate past the end of a truncated file rejects with EFAULT instead of SIGBUS', async () => {
    const file = tempFile(pattern(8 * PAGE));
    using m = pw.mapFile(file, { mode: 'shared' });
    fs.truncateSync(file, 2 * PAGE);
    await expect(m.populate()).rejects.toMatchObject({ code: 'EFAULT', syscall: 'madvise', errno: -14 });
    await m.populate({ length: 2 * PAGE });
  });

  it('refuses to map past the end of the file, an empty file, or a directory', () => {
    const file = tempFile(pattern(PAGE));
    expect(() => pw.mapFile(file, { length: PAGE + 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => pw.mapFile(file, { offset: PAGE + 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => pw.mapFile(file, { offset: PAGE })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/"options\.offset".* < 4096 .*Received 4096$/) }),
    );
    // An empty file: the message names the file, not an "options.length" the caller never passed.
    const empty = tempFile('');
    for (const mode of ['private', 'shared'] as const) {
      expect(() => pw.mapFile(empty, { mode })).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_ARG_VALUE',
          message: `The argument 'file' is an empty file: mmap cannot map 0 bytes (give the file a size first, e.g. fs.truncateSync(path, 4096)). Received '${empty}'`,
        }),
      );
    }
    expect(() => pw.mapFile(tempFile('x'), { length: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('(the file has 1 byte from offset 0)') }),
    );
    expect(() => pw.mapFile('/tmp')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => pw.mapFile('/nonexistent/pagewise')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('a descriptor opened read-only cannot be mapped shared (clear error), but can be mapped private', () => {
    const file = tempFile(pattern(PAGE));
    const fd = fs.openSync(file, 'r');
    try {
      expect(() => pw.mapFile(fd, { mode: 'shared' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
      using m = pw.mapFile(fd);
      expect(m.buffer).toEqual(pattern(PAGE));
    } finally {
      fs.closeSync(fd);
    }
  });

  it('file residency counts cached pages, with and without the page vector', () => {
    const file = tempFile(pattern(16 * PAGE));
    const r = pw.fileResidency(file);
    expect(r.total).toBe(16);
    expect(r.size).toBe(16 * PAGE);
    const withPages = pw.fileResidency(file, { pages: true });
    expect(withPages.source).toBe(onKernel ? 'mincore' : 'simulator');
    expect(withPages.pages?.length).toBe(16);
    if (onKernel) {
      // Just written: the whole file sits in the page cache.
      expect(r.cached).toBe(16);
      expect(withPages.cached).toBe(16);
    }
  });

  it.skipIf(!onKernel)('evict drops clean pages from the page cache and a populate brings them back', async () => {
    const file = tempFile(pattern(32 * PAGE));
    const fd = fs.openSync(file, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    pw.evict(file);
    expect(pw.fileResidency(file, { pages: true }).cached).toBe(0);
    using m = pw.mapFile(file);
    await m.populate({ offset: 0, length: 8 * PAGE });
    const r = pw.fileResidency(file, { pages: true });
    expect(Array.from(r.pages!.subarray(0, 8))).toEqual(new Array(8).fill(1));
    expect(m.residency().resident).toBeGreaterThanOrEqual(8);
  });
});

describe('locking file mappings', () => {
  const status = (field: string) => {
    const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return Number(m?.[1]) * 1024;
  };

  it.skipIf(!onKernel)('lock() on a private file mapping locks the page cache, not private copies (simulator: no /proc view of its memory)', async () => {
    const size = 8 * 1024 * 1024;
    const file = tempFile(pattern(size));
    using m = pw.mapFile(file);
    const anonBefore = status('RssAnon');
    const lockedBefore = status('VmLck');
    await m.lock();
    expect(status('VmLck') - lockedBefore).toBeGreaterThanOrEqual(size);
    expect(status('RssAnon') - anonBefore).toBeLessThan(size / 4);
    expect(m.residency().resident).toBe(size / PAGE);
    expect(m.buffer.subarray(0, 4)).toEqual(pattern(size).subarray(0, 4));
    m.buffer[0] ^= 0xff; // still copy-on-write: the write stays private
    m.unlock();
    expect(new Uint8Array(fs.readFileSync(file)).subarray(0, 1)).toEqual(pattern(size).subarray(0, 1));
  });

  it('protect() over the whole of a file mapped at an unaligned offset works', () => {
    const file = tempFile(pattern(3 * PAGE));
    using m = pw.mapFile(file, { offset: 100, length: 2 * PAGE });
    m.protect('read');
    expect(m.protection).toBe('read');
    expect(m.buffer[0]).toBe(pattern(3 * PAGE)[100]);
    m.protect('read-write');
    m.buffer[0] = 1;
    expect(m.buffer[0]).toBe(1);
  });
});
