// One test per crash or wrong answer the hardening work found (see
// docs/RELIABILITY.md, "Bugs found"). The crashing ones run in a child process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { optionKeys } from '../../lib/validate';

const pw = pagewise;
const PAGE = pw.pageSize;
const DIST = path.join(__dirname, '..', '..', 'dist', 'index.js');

function child(body: string): { status: number | null; signal: NodeJS.Signals | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['-e', `const pw = require(${JSON.stringify(DIST)});\n${body}`], {
    encoding: 'utf8',
    env: process.env,
  });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

describe('regressions', () => {
  it('an error message never reads a view: detachView(view of a PROT_NONE mapping) on another mapping (was SIGSEGV)', () => {
    const r = child(`
      const a = pw.map(4096), b = pw.map(4096);
      const v = a.buffer;
      a.protect('none');
      const codes = [];
      try { b.detachView(v); } catch (e) { codes.push(e.code); }
      try { b.protect('read', { offset: 1, extra: v }); } catch (e) { codes.push(e.code); }
      try { pw.mapFile(Buffer.from(v.buffer, 0, 0)); } catch (e) { codes.push(e.code); }
      console.log(codes.join(','));`);
    expect(r.signal, r.err).toBeNull();
    expect(r.status, r.err).toBe(0);
    expect(r.out.trim()).toBe('ERR_INVALID_ARG_VALUE,ERR_INVALID_ARG_VALUE,ENOENT');
  });

  it('error messages describe views and buffers without their contents', () => {
    using m = pw.map(PAGE);
    expect(() => m.detachView(new Uint8Array(3))).toThrow(/Received Uint8Array\(3 bytes\)/);
    expect(() => m.protect('read', { offset: 1 })).toThrow(/Received \{ offset: 1 \}/);
  });

  it('resize() cannot grow a shared anonymous mapping past its shmem object (was SIGBUS on the new pages)', () => {
    using m = pw.map(2 * PAGE, { shared: true });
    m.buffer.fill(4);
    expect(() => m.resize(3 * PAGE)).toThrow(expect.objectContaining({ code: 'ERR_OPERATION_NOT_SUPPORTED' }));
    m.resize(PAGE); // shrinking is fine
    m.resize(2 * PAGE - 1); // and growing back within the original size
    expect(m.buffer.every((b) => b === 4)).toBe(true);
    using p = pw.map(PAGE); // private anonymous memory still grows
    p.resize(16 * PAGE);
    p.buffer[16 * PAGE - 1] = 1;
  });

  it('hugePages with noreserve is refused (was SIGBUS on first touch with an empty huge page pool)', () => {
    for (const hugePages of [true, '2MiB', '1GiB'] as const) {
      expect(() => pw.map(PAGE, { hugePages, noreserve: true })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    try {
      pw.map(PAGE, { hugePages: true }).close(); // reserved at map() time: ENOMEM when the pool is empty
    } catch (err) {
      expect((err as { code: string }).code).toBe('ENOMEM');
    }
  });

  it.skipIf(pw.kind !== 'native')('the addon itself refuses those two (defence in depth; simulator: no addon)', async () => {
    const { loadNativeAddon } = await import('../../lib/native');
    const addon = loadNativeAddon();
    expect(() => addon.map(PAGE, 3, false, -1, 0, false, true, 21)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const shared = addon.map(PAGE, 3, true, -1, 0, false, false, 0);
    expect(() => shared.resize(2 * PAGE)).toThrow(expect.objectContaining({ code: 'ERR_OPERATION_NOT_SUPPORTED' }));
    shared.close();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-reg-'));
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, Buffer.alloc(PAGE));
    const fd = fs.openSync(f, 'r');
    const fileMap = addon.map(PAGE, 1, false, fd, 0, false, false, 0);
    fs.closeSync(fd);
    expect(() => fileMap.resize(4 * PAGE)).toThrow(expect.objectContaining({ code: 'ERR_OPERATION_NOT_SUPPORTED' }));
    fileMap.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fileResidency of a range that starts at or past the end of the file is empty (was: the last partial page)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-reg-'));
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, Buffer.alloc(PAGE + 10));
    expect(pw.fileResidency(f, { offset: PAGE + 10 }).total).toBe(0);
    expect(pw.fileResidency(f, { offset: 10 * PAGE }).total).toBe(0);
    expect(pw.fileResidency(f, { offset: PAGE + 9 }).total).toBe(1);
    expect(pw.fileResidency(f).total).toBe(2);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

// Issue 24 item 4: inputs that slipped past validation.
describe('validation bypasses (issue 24)', () => {
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (err) {
      return (err as { code?: string }).code;
    }
    return undefined;
  };

  it('advise() and advise(undefined) on a fresh mapping are refused, not run as MADV_NORMAL', () => {
    using m = pw.map(4 * PAGE);
    expect(codeOf(() => (m.advise as (a?: unknown) => unknown)())).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => m.advise(undefined as never))).toBe('ERR_INVALID_ARG_TYPE');
    m.advise('random');
    expect(codeOf(() => m.advise(undefined as never))).toBe('ERR_INVALID_ARG_TYPE');
    // A valid first call still works after the refused ones.
    using n = pw.map(PAGE);
    expect(n.advise('normal')).toEqual({ offset: 0, length: PAGE });
  });

  it('a typed array, an array or a class instance as an options/range object is refused up front', () => {
    using m = pw.map(4 * PAGE);
    m.buffer.fill(9);
    // 200 M elements: refused before any key is enumerated (was a stall, then an uncoded RangeError).
    const big = new Uint8Array(200_000_000);
    expect(codeOf(() => m.advise('remove', big as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => m.residency(big as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => m.advise('dontneed', [0, PAGE] as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => m.advise('dontneed', new Date() as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => pw.map(PAGE, new Map() as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => pw.fileResidency(__filename, new Float64Array(2) as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(m.buffer.every((b) => b === 9)).toBe(true);
    // Plain objects, also without a prototype, are still options.
    expect(m.residency(Object.assign(Object.create(null) as object, { offset: 0, length: PAGE })).total).toBe(1);
  });

  it('watchMemoryPressure() checks every option whatever the environment', async () => {
    const { watchMemoryPressure } = await import('../../lib/index');
    for (const headroom of ['x', true, Number.NaN, -1, 1.5]) {
      expect(codeOf(() => watchMemoryPressure({ usageHeadroom: headroom as never }).close())).toMatch(/^ERR_(INVALID_ARG_TYPE|OUT_OF_RANGE)$/);
    }
    const hint = (options: unknown, guess: string) => {
      let e: Error & { code?: string } = new Error('accepted');
      try {
        watchMemoryPressure(options as never).close();
      } catch (err) {
        e = err as Error & { code?: string };
      }
      expect(e.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(e.message).toContain(`did you mean '${guess}'?`);
    };
    hint({ sorces: 'auto' }, 'sources');
    hint({ singal: new AbortController().signal }, 'signal');
    hint({ psi: { moderat: 'some 1 2' } }, 'moderate');
    hint({ vmpressure: { critcal: 'low' } }, 'critical');
    expect(codeOf(() => watchMemoryPressure({ sources: ['psy'] as never }).close())).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => watchMemoryPressure({ sources: 'synthetic', psi: { moderate: 'sometimes' } }).close())).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => watchMemoryPressure({ sources: 'synthetic', vmpressure: { critical: 'high' as never } }).close())).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => watchMemoryPressure({ sources: 'synthetic', psi: [] as never }).close())).toBe('ERR_INVALID_ARG_TYPE');
    // Valid options still make a watcher.
    const w = watchMemoryPressure({ sources: 'synthetic', usageHeadroom: 0, psi: { moderate: false }, vmpressure: { critical: 'medium' } });
    expect(w.supported).toBe(false);
    w.close();
  });

  it('collectMetrics() refuses unknown keys with a hint, before touching the registry', async () => {
    const { collectMetrics } = await import('../../lib/index');
    let e: Error & { code?: string } = new Error('accepted');
    try {
      collectMetrics({ cache: {} } as never).close();
    } catch (err) {
      e = err as Error & { code?: string };
    }
    expect(e.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(e.message).toContain("did you mean 'caches'?");
    expect(codeOf(() => collectMetrics({ mappings: 'yes' } as never).close())).toBe('ERR_INVALID_ARG_TYPE');
  });

  it("'len' gets a hint for 'length' as 'ofset' gets one for 'offset' (issue 25)", () => {
    using m = pw.map(PAGE);
    for (const [typo, guess] of [['len', 'length'], ['ofset', 'offset'], ['off', 'offset']]) {
      let message = '';
      try {
        m.residency({ [typo]: 1 } as never);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain(`did you mean '${guess}'?`);
    }
  });
});

describe('option key lists (issue 21)', () => {
  it('are frozen copies of the keys given (the compiler checks them against the interface: test/types/strict.ts)', () => {
    const keys = optionKeys<{ a?: number; b?: string }>()(['a', 'b'] as const);
    expect(keys).toEqual(['a', 'b']);
    expect(Object.isFrozen(keys)).toBe(true);
  });
});
