// One test per crash or wrong answer the hardening work found (see
// docs/RELIABILITY.md, "Bugs found"). The crashing ones run in a child process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';

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
