// Typos must not destroy data, and errors must say what to do (issue 15, part 2):
// the same answers on both backends.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { onKernel, PAGE, pattern, pw, tempFile } from '../helpers';

const caught = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as Error & { code: string; errno?: number; syscall?: string; advice?: string };
  }
  throw new Error('did not throw');
};

describe('unknown option keys', () => {
  it("a misspelt range key is refused before anything is freed ('free' / 'dontneed' with { ofset })", () => {
    using m = pw.map(4 * PAGE);
    m.buffer.fill(0x5a);
    for (const advice of ['free', 'dontneed', 'remove', 'guard-install'] as const) {
      const e = caught(() => m.advise(advice, { ofset: PAGE } as never));
      expect(e).toBeInstanceOf(TypeError);
      expect(e.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(e.message).toContain("unknown property 'ofset'");
      expect(e.message).toContain("did you mean 'offset'?");
    }
    if (!onKernel || pw.supports('pageout')) m.advise('pageout'); // would discard FREE'd pages: none were freed
    expect(m.buffer.every((b) => b === 0x5a)).toBe(true);
    expect(m.residency().resident).toBe(4);
  });

  it('every options and range object names the unknown key', async () => {
    const file = tempFile(pattern(2 * PAGE));
    using m = pw.map(PAGE);
    using f = pw.mapFile(file, { mode: 'shared' });
    const sync: [() => unknown, string, string][] = [
      [() => pw.map(PAGE, { sharde: true } as never), 'sharde', 'shared'],
      [() => pw.mapFile(file, { mod: 'shared' } as never), 'mod', 'mode'],
      [() => pw.fileResidency(file, { page: true } as never), 'page', 'pages'],
      [() => pw.evict(file, { lenght: PAGE } as never), 'lenght', 'length'],
      [() => pw.prefetch(file, { ofset: 0 } as never), 'ofset', 'offset'],
      [() => m.residency({ lenth: PAGE } as never), 'lenth', 'length'],
      [() => m.protect('read', { offest: 0 } as never), 'offest', 'offset'],
      [() => m.unlock({ ofset: 0 } as never), 'ofset', 'offset'],
      [() => f.flushSync({ invalidte: true } as never), 'invalidte', 'invalidate'],
    ];
    for (const [fn, key, guess] of sync) {
      const e = caught(fn);
      expect(e.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(e.message).toContain(`unknown property '${key}' (did you mean '${guess}'?`);
    }
    const async: [() => Promise<unknown>, string][] = [
      [() => m.populate({ mdoe: 'read' } as never), 'mdoe'],
      [() => f.flush({ invalidat: true } as never), 'invalidat'],
      [() => m.lock({ onfault: true } as never), 'onfault'],
    ];
    for (const [fn, key] of async) {
      await expect(fn()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining(`'${key}'`) });
    }
    // 'offset' and 'length' are unknown where the list has no such key.
    expect(caught(() => pw.map(PAGE, { offset: 0 } as never))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("unknown property 'offset'") });
    expect(caught(() => pw.map(PAGE, { length: PAGE } as never))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("unknown property 'length'") });
    // No close name: the known keys are listed instead.
    expect(caught(() => m.residency({ zzzzzz: 1 } as never)).message).toContain("known: 'offset', 'length'");
  });

  it("a string is not a range: residency('all') does not type-check and is refused", () => {
    using m = pw.map(PAGE);
    // @ts-expect-error a string has a length, but it is not a range
    expect(() => m.residency('all')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // @ts-expect-error likewise for options objects
    expect(() => m.advise('dontneed', 'all')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('advice names', () => {
  it("suggests the closest name for a typo: 'fre', 'FREE', 'dontneeed', 'madv_free'", () => {
    using m = pw.map(PAGE);
    m.buffer.fill(7);
    for (const [typo, guess] of [
      ['fre', 'free'],
      ['FREE', 'free'],
      ['dontneeed', 'dontneed'],
      ['madv_free', 'free'],
      ['MADV_POPULATE_WRTE', 'populate-write'],
      ['populate_read', 'populate-read'],
    ]) {
      const e = caught(() => m.advise(typo as never));
      expect(e.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(e.message).toContain(`(did you mean '${guess}'?)`);
    }
    expect(caught(() => pw.supports('fre' as never)).message).toContain("did you mean 'free'?");
    expect(m.buffer.every((b) => b === 7)).toBe(true);
  });

  it("accepts the kernel's own spelling, 'MADV_FREE', for 'free'", () => {
    using m = pw.map(2 * PAGE);
    m.buffer.fill(1);
    expect(pw.supports('MADV_DONTNEED')).toBe(pw.supports('dontneed'));
    expect(m.advise('MADV_DONTNEED', { offset: 0, length: PAGE })).toEqual({ offset: 0, length: PAGE });
    expect(m.buffer[0]).toBe(0);
    expect(m.buffer[PAGE]).toBe(1);
    m.advise('MADV_FREE');
  });
});

describe('kernel errors say what to do', () => {
  it("'free' on a file or shared mapping: FREE works only on private anonymous memory (code, errno, syscall kept; advice added)", () => {
    const file = tempFile(pattern(PAGE));
    using f = pw.mapFile(file);
    using s = pw.map(PAGE, { shared: true });
    for (const m of [f, s]) {
      const e = caught(() => m.advise('free'));
      expect(e).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'madvise', advice: 'MADV_FREE' });
      expect(e.message).toMatch(/^EINVAL: invalid argument, madvise \(MADV_FREE works only on private anonymous memory; use 'dontneed'/);
    }
  });

  it("'remove' on private memory: REMOVE works only on shared writable mappings", () => {
    const file = tempFile(pattern(PAGE));
    using a = pw.map(PAGE);
    using f = pw.mapFile(file);
    expect(caught(() => a.advise('remove'))).toMatchObject({ code: 'EINVAL', syscall: 'madvise', advice: 'MADV_REMOVE' });
    expect(caught(() => f.advise('remove'))).toMatchObject({ code: 'EACCES', syscall: 'madvise', advice: 'MADV_REMOVE' });
    for (const m of [a, f]) expect(caught(() => m.advise('remove')).message).toContain('MADV_REMOVE works only on shared writable mappings');
  });

  const noHugePages = (() => {
    try {
      return Number(fs.readFileSync('/proc/sys/vm/nr_hugepages', 'utf8')) === 0;
    } catch {
      return !onKernel;
    }
  })();
  it.skipIf(!noHugePages)('hugePages without reserved huge pages: ENOMEM that names vm.nr_hugepages', () => {
    const e = caught(() => pw.map(2 * 1024 * 1024, { hugePages: true }));
    expect(e).toMatchObject({ code: 'ENOMEM', errno: -12, syscall: 'mmap' });
    expect(e.message).toMatch(/^ENOMEM: .*, mmap \(.*vm\.nr_hugepages/);
  });

  it('populate() past the end of a file: EFAULT that says the file is shorter than the mapping', async () => {
    const file = tempFile(pattern(4 * PAGE));
    using m = pw.mapFile(file, { mode: 'shared' });
    fs.truncateSync(file, PAGE);
    await expect(m.populate()).rejects.toMatchObject({
      code: 'EFAULT',
      errno: -14,
      syscall: 'madvise',
      message: expect.stringMatching(/^EFAULT: .*, madvise \(the file is shorter than the mapping/),
    });
  });
});
