import { describe, expect, it } from 'vitest';
import { ADVICE, backend, Pagewise, type Backend, type BackendMapping } from '../../lib/index';
import { errnoError } from '../../lib/errors';
import { PAGE, pw } from '../helpers';

const bad = (code: string) => expect.objectContaining({ code });

describe('argument validation', () => {
  it('rejects wrong types with ERR_INVALID_ARG_TYPE', () => {
    for (const length of ['4096', null, undefined, {}, 4096n, [1]]) {
      expect(() => pw.map(length as never)).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    }
    expect(() => pw.map(PAGE, 'shared' as never)).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    expect(() => pw.map(PAGE, { shared: 1 as never })).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    expect(() => pw.mapFile({} as never)).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    using m = pw.map(PAGE);
    expect(() => m.advise(4 as never)).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    expect(() => m.advise('dontneed', { offset: '1' as never })).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    expect(() => m.residency(7 as never)).toThrow(bad('ERR_INVALID_ARG_TYPE'));
    const e = (() => {
      try {
        pw.map('x' as never);
      } catch (err) {
        return err as Error;
      }
    })();
    expect(e).toBeInstanceOf(TypeError);
    expect(e?.message).toBe('The "length" argument must be of type number. Received type string (\'x\')');
  });

  it('rejects NaN, infinities, fractions, negatives and out-of-range values with ERR_OUT_OF_RANGE', () => {
    for (const length of [NaN, Infinity, -Infinity, -1, 0, 1.5, 2 ** 53]) {
      expect(() => pw.map(length)).toThrow(bad('ERR_OUT_OF_RANGE'));
    }
    using m = pw.map(2 * PAGE);
    for (const range of [
      { offset: -1 },
      { offset: 2 * PAGE + 1 },
      { offset: 0.5 },
      { offset: NaN },
      { length: 2 * PAGE + 1 },
      { offset: PAGE, length: PAGE + 1 },
      { length: -0.1 },
    ]) {
      expect(() => m.advise('dontneed', range)).toThrow(bad('ERR_OUT_OF_RANGE'));
      expect(() => m.residency(range)).toThrow(bad('ERR_OUT_OF_RANGE'));
    }
    expect(() => m.view(2 * PAGE + 1)).toThrow(bad('ERR_OUT_OF_RANGE'));
    expect(() => m.view(PAGE, PAGE + 1)).toThrow(bad('ERR_OUT_OF_RANGE'));
    const err = (() => {
      try {
        m.residency({ offset: -1 });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(RangeError);
  });

  it('rejects unknown advice and protection by name', () => {
    using m = pw.map(PAGE);
    expect(() => m.advise('hwpoison' as never)).toThrow(bad('ERR_INVALID_ARG_VALUE'));
    expect(() => m.advise('DONTNEED' as never)).toThrow(bad('ERR_INVALID_ARG_VALUE'));
    expect(() => m.protect('rw' as never)).toThrow(bad('ERR_INVALID_ARG_VALUE'));
    expect(() => pw.supports('bogus' as never)).toThrow(bad('ERR_INVALID_ARG_VALUE'));
  });

  it('async methods reject rather than throw', async () => {
    using m = pw.map(PAGE);
    const p = m.populate({ mode: 'sideways' as never });
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(m.flush({ offset: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  it('Mapping cannot be constructed over arbitrary memory', async () => {
    const { Mapping } = await import('../../lib/index');
    expect(() => new (Mapping as unknown as new (...a: unknown[]) => unknown)(Symbol('x'), {})).toThrow(TypeError);
  });
});

describe('protect', () => {
  it('changes protection on page boundaries and refuses unaligned ranges', () => {
    using m = pw.map(3 * PAGE);
    m.buffer.fill(5);
    m.protect('read', { offset: PAGE, length: PAGE });
    expect(m.buffer[PAGE]).toBe(5); // reading a read-only page is fine
    expect(() => m.protect('read', { offset: 1, length: PAGE })).toThrow(bad('ERR_INVALID_ARG_VALUE'));
    expect(() => m.protect('read', { offset: 0, length: PAGE + 1 })).toThrow(bad('ERR_INVALID_ARG_VALUE'));
    m.protect('read-write');
    expect(m.protection).toBe('read-write');
    m.buffer[PAGE] = 6;
    expect(m.buffer[PAGE]).toBe(6);
  });

  it('populate-write on a read-only range is refused by the kernel, not a crash', () => {
    using m = pw.map(2 * PAGE);
    m.protect('read');
    expect(() => m.advise('populate-write')).toThrow(expect.objectContaining({ syscall: 'madvise' }));
  });
});

describe('lock', () => {
  it('locks and unlocks a range; dontneed on locked memory is refused with EINVAL', async () => {
    using m = pw.map(4 * PAGE);
    m.buffer.fill(1);
    await m.lock({ offset: 0, length: 2 * PAGE });
    expect(() => m.advise('dontneed', { length: PAGE })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(m.buffer[0]).toBe(1);
    m.unlock();
    m.advise('dontneed', { length: PAGE });
    expect(m.buffer[0]).toBe(0);
  });
});

describe('backend selection', () => {
  it('reports the active backend', () => {
    expect(['native', 'simulator']).toContain(backend);
    expect(backend).toBe(process.env.PAGEWISE_BACKEND ?? backend);
  });
});

describe('unsupported advice', () => {
  it('adds which advice the kernel lacks to the EINVAL message', () => {
    // A backend on a kernel without MADV_COLLAPSE: the probe says no and madvise gives EINVAL.
    const real = pw.backend;
    const old: Backend = {
      ...real,
      kind: real.kind,
      pageSize: real.pageSize,
      maxViewLength: real.maxViewLength,
      supports: (advice) => advice !== ADVICE.collapse.value,
      map: (req) => {
        const region = real.map(req);
        return {
          get length() {
            return region.length;
          },
          get closed() {
            return region.closed;
          },
          close: () => region.close(),
          view: (o: number, l: number) => region.view(o, l),
          advise: (o: number, l: number, a: number) => {
            if (a === ADVICE.collapse.value) throw errnoError('EINVAL', 'madvise');
            region.advise(o, l, a);
          },
        } as unknown as BackendMapping;
      },
    };
    const p = new Pagewise(old);
    expect(p.supports('collapse')).toBe(false);
    using m = p.map(PAGE);
    expect(() => m.advise('collapse')).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: 'EINVAL: invalid argument, madvise (MADV_COLLAPSE is not supported by this kernel)' }),
    );
  });
});

describe('methods called on another object', () => {
  it("give Node's ERR_INVALID_THIS, never a crash", async () => {
    const { Mapping } = await import('../../lib/index');
    const names = Object.getOwnPropertyNames(Mapping.prototype).filter((n) => n !== 'constructor');
    expect(names.length).toBeGreaterThan(15);
    for (const name of [...names, Symbol.dispose]) {
      const d = Object.getOwnPropertyDescriptor(Mapping.prototype, name)!;
      const fn = (d.get ?? d.value) as (...a: unknown[]) => unknown;
      for (const self of [{}, null, 5, Object.create(Mapping.prototype)]) {
        let error: unknown;
        try {
          await fn.call(self, 'dontneed');
        } catch (err) {
          error = err;
        }
        expect(error, String(name)).toBeInstanceOf(TypeError);
        expect(error, String(name)).toMatchObject({ code: 'ERR_INVALID_THIS' });
      }
    }
  });
});
