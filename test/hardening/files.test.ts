// Files: truncation under a mapping, private (default) mappings written from
// JavaScript, descriptors without the access a mapping needs, offsets past
// 2 GiB and 4 GiB. The truncation cases run in a child (truncate-child.mjs)
// so that a signal would be observed instead of ending the test run.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';
import { readablePackage } from '../unprivileged';

const pw = pagewise;
const PAGE = pw.pageSize;
const onKernel = pw.kind === 'native';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-files-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: Uint8Array): string {
  const f = path.join(dir, `f${n++}`);
  fs.writeFileSync(f, content);
  return f;
}
function bytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

describe('a file truncated under its mapping', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('populate and every API path give an error or succeed, never a signal (child process)', () => {
    const r = runChild<Record<string, Record<string, string>>>('truncate-child.mjs', ['api'], { gc: false });
    expect(r.signal, why(r)).toBeNull();
    expect(r.status, why(r)).toBe(0);
    const results = r.json!;
    expect(Object.keys(results)).toHaveLength(6);
    for (const [name, outcomes] of Object.entries(results)) {
      for (const [op, outcome] of Object.entries(outcomes)) {
        expect(outcome, `${name}: ${op}`).toMatch(/^(ok|n\/a|ERR_[A-Z_]+|E[A-Z]+)$/);
      }
      // The safe way to touch pages: EFAULT where a JavaScript access would be SIGBUS.
      expect(outcomes['populate'], name).toBe('EFAULT');
      expect(outcomes['populate read past'], name).toBe('EFAULT');
      expect(outcomes['advise populate-read'], name).toBe('EFAULT');
      expect(outcomes['mapFile old length'], name).toBe('ERR_OUT_OF_RANGE');
      expect(outcomes['close'], name).toBe('ok');
    }
  });

  it.skipIf(!onKernel)('the documented hazard is real: a JavaScript read past the new end is SIGBUS (simulator: reads an ArrayBuffer)', () => {
    const r = runChild('truncate-child.mjs', ['touch'], { gc: false });
    expect(r.stdout).toContain('reading past the new end');
    expect(r.signal, why(r)).toBe('SIGBUS');
  });
});

describe('private (default) file mappings written from JavaScript', () => {
  it('writes never crash and never reach the file, whatever is done to the mapping', async () => {
    const content = bytes(5 * PAGE + 123, 1);
    const f = file(content);
    for (const how of ['path', 'read-only fd', 'read-write fd'] as const) {
      const fd = how === 'path' ? -1 : fs.openSync(f, how === 'read-only fd' ? 'r' : 'r+');
      const m = pw.mapFile(how === 'path' ? f : fd);
      expect(m.shared).toBe(false);
      m.buffer.fill(0xee);
      m.view(PAGE + 1, 10).fill(0x11);
      await m.flush({ invalidate: false });
      m.flushSync();
      await m.populate({ mode: 'write' });
      m.advise('populate-write');
      m.advise('pageout');
      m.advise('cold');
      expect(m.buffer[0]).toBe(0xee);
      m.close();
      if (fd >= 0) fs.closeSync(fd);
      expect(new Uint8Array(fs.readFileSync(f)), how).toEqual(content);
    }
  });

  it('dontneed drops the private copy and shows the file again; the file never changed', () => {
    const content = bytes(2 * PAGE, 2);
    const f = file(content);
    using m = pw.mapFile(f);
    m.buffer.fill(0);
    m.advise('dontneed');
    expect(m.buffer).toEqual(content);
    expect(new Uint8Array(fs.readFileSync(f))).toEqual(content);
  });
});

describe('descriptors and files without the access a mapping needs', () => {
  it('read-only and write-only descriptors get a clear ERR_INVALID_ARG_VALUE, not EACCES from mmap', () => {
    const f = file(bytes(PAGE, 3));
    const ro = fs.openSync(f, 'r');
    const wo = fs.openSync(f, fs.constants.O_WRONLY);
    const ap = fs.openSync(f, 'a');
    try {
      expect(() => pw.mapFile(ro, { mode: 'shared' })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('read-only') }),
      );
      for (const fd of [wo, ap]) {
        for (const mode of ['private', 'shared'] as const) {
          expect(() => pw.mapFile(fd, { mode })).toThrow(
            expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('write-only') }),
          );
        }
      }
      using m = pw.mapFile(ro); // private over a read-only descriptor: fine
      expect(m.buffer[0]).toBe(bytes(1, 3)[0]);
    } finally {
      for (const fd of [ro, wo, ap]) fs.closeSync(fd);
    }
  });

  it.skipIf(process.getuid?.() !== 0)('a read-only file mapped shared by a user who cannot write it fails at open (EACCES, with the path), not in mmap', () => {
    const sub = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-ro-'));
    try {
      fs.chmodSync(sub, 0o755);
      const f = path.join(sub, 'ro.bin');
      fs.writeFileSync(f, bytes(PAGE, 4));
      fs.chmodSync(f, 0o444);
      const dist = path.join(readablePackage(), 'dist', 'index.js'); // a copy uid 65534 can read (the checkout may be 0700)
      const script = `
        const pw = require(${JSON.stringify(dist)});
        const out = {};
        try { pw.mapFile(${JSON.stringify(f)}, { mode: 'shared' }); out.shared = 'ok'; } catch (e) { out.shared = [e.code, e.syscall, e.message]; }
        try { const m = pw.mapFile(${JSON.stringify(f)}); m.buffer[0] = 1; m.close(); out.private = 'ok'; } catch (e) { out.private = [e.code, e.message]; }
        console.log(JSON.stringify(out));`;
      const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', env: process.env });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim()) as { shared: string[]; private: string };
      expect(out.shared[0]).toBe('EACCES');
      expect(out.shared[1]).toBe('open');
      expect(out.shared[2]).toContain(f);
      expect(out.private).toBe('ok');
      expect(fs.readFileSync(f)[0]).toBe(bytes(1, 4)[0]);
    } finally {
      fs.rmSync(sub, { recursive: true, force: true });
    }
  });
});

describe('offsets past 2 GiB and 4 GiB (sparse file)', () => {
  const SIZE = 2 ** 32 + 3 * PAGE + 5;
  const marks: Array<[number, number]> = [
    [2 ** 31 - 1, 0x31],
    [2 ** 31 + 5, 0x32],
    [2 ** 32 - 2, 0x41],
    [2 ** 32 + 17, 0x42],
    [SIZE - 1, 0x43],
  ];
  function big(): string {
    const f = path.join(dir, `big${n++}`);
    const fd = fs.openSync(f, 'w+');
    fs.ftruncateSync(fd, SIZE);
    for (const [at, v] of marks) fs.writeSync(fd, Uint8Array.of(v), 0, 1, at);
    fs.closeSync(fd);
    return f;
  }

  it('maps at unaligned offsets past 2^31 and 2^32 and reads the right bytes', () => {
    const f = big();
    for (const [at, v] of marks) {
      for (const back of [0, 1, 100, PAGE + 3]) {
        if (at - back < 0) continue;
        using m = pw.mapFile(f, { offset: at - back, length: Math.min(back + 1, SIZE - (at - back)) });
        expect(m.buffer[back], `${at} - ${back}`).toBe(v);
      }
    }
    using tail = pw.mapFile(f, { offset: 2 ** 32 });
    expect(tail.length).toBe(3 * PAGE + 5);
    expect(tail.buffer[17]).toBe(0x42);
    expect(tail.residency().total).toBe(4);
    expect(() => pw.mapFile(f, { offset: SIZE + 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => pw.mapFile(f, { offset: 2 ** 32, length: 4 * PAGE })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('a shared mapping past 4 GiB writes to the right place', async () => {
    const f = big();
    {
      using m = pw.mapFile(f, { mode: 'shared', offset: 2 ** 32 + 10, length: 100 });
      m.buffer[7] = 0x77; // file offset 2^32 + 17
      await m.flush();
    }
    const fd = fs.openSync(f, 'r');
    const one = Buffer.alloc(1);
    fs.readSync(fd, one, 0, 1, 2 ** 32 + 17);
    fs.closeSync(fd);
    expect(one[0]).toBe(0x77);
  });

  it('fileResidency / evict / prefetch take ranges past 4 GiB', () => {
    const f = big();
    const r = pw.fileResidency(f, { offset: 2 ** 32, length: 3 * PAGE + 5 });
    expect(r.total).toBe(4);
    const withPages = pw.fileResidency(f, { offset: 2 ** 31 + 5, length: PAGE, pages: true });
    expect(withPages.total).toBe(2);
    pw.prefetch(f, { offset: 2 ** 32, length: PAGE });
    pw.evict(f, { offset: 2 ** 31, length: 2 ** 31 + 3 * PAGE });
    expect(pw.fileResidency(f, { offset: 2 ** 32 + 2 ** 40 }).total).toBe(0);
  });
});
