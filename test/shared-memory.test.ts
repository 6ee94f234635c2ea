// createSharedMemory: a sealed memfd nobody can shrink, shared with a child process and a worker (issue 14).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { ErrnoError } from '../lib/index';
import { allEqual, onKernel, PAGE, pattern, pw } from './helpers';

const DIST = path.join(__dirname, '..', 'dist', 'index.js');
const haveDist = fs.existsSync(DIST);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as ErrnoError).code;
  }
  return undefined;
}

describe.skipIf(!onKernel)('createSharedMemory (native only: the simulator cannot make a sealed memfd)', () => {
  it('is a shared mapping of a memfd that refuses to shrink (EPERM), and grows unless sealGrow', () => {
    using shm = pw.createSharedMemory(4 * PAGE, { name: 'sigbus-test' });
    expect(shm.size).toBe(4 * PAGE);
    expect(shm.mapping.shared).toBe(true);
    expect(shm.mapping.length).toBe(4 * PAGE);
    expect(fs.readlinkSync(`/proc/self/fd/${shm.fd}`)).toBe('/memfd:sigbus-test (deleted)');
    shm.mapping.buffer.set(pattern(4 * PAGE));
    expect(codeOf(() => fs.ftruncateSync(shm.fd, PAGE))).toBe('EPERM');
    expect(codeOf(() => fs.ftruncateSync(shm.fd, 0))).toBe('EPERM');
    expect(fs.fstatSync(shm.fd).size).toBe(4 * PAGE);
    fs.ftruncateSync(shm.fd, 8 * PAGE); // growing is allowed without sealGrow
    expect(fs.fstatSync(shm.fd).size).toBe(8 * PAGE);
    expect(Buffer.from(shm.mapping.buffer).equals(Buffer.from(pattern(4 * PAGE)))).toBe(true);

    using fixed = pw.createSharedMemory(PAGE, { sealGrow: true });
    expect(codeOf(() => fs.ftruncateSync(fixed.fd, 2 * PAGE))).toBe('EPERM');
    expect(codeOf(() => fs.ftruncateSync(fixed.fd, 0))).toBe('EPERM');
  });

  it('close() unmaps and closes the descriptor; arguments are checked', () => {
    const shm = pw.createSharedMemory(PAGE);
    const fd = shm.fd;
    shm.close();
    shm.close();
    expect(shm.closed).toBe(true);
    expect(shm.mapping.closed).toBe(true);
    expect(codeOf(() => fs.fstatSync(fd))).toBe('EBADF');
    expect(codeOf(() => shm.fd)).toBe('ERR_MAPPING_CLOSED');
    expect(codeOf(() => pw.createSharedMemory(0))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => pw.createSharedMemory(PAGE, { name: 'x'.repeat(250) }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => pw.createSharedMemory(PAGE, { sealGrow: 1 as never }))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('residency and the advice that applies to shmem: DONTNEED keeps, REMOVE zeroes, PAGEOUT keeps; FREE is EINVAL', () => {
    using shm = pw.createSharedMemory(4 * PAGE);
    const m = shm.mapping;
    m.buffer.set(pattern(4 * PAGE));
    expect(m.residency().resident).toBe(4);
    m.advise('dontneed');
    expect(Buffer.from(m.readSync(0, 4 * PAGE)).equals(Buffer.from(pattern(4 * PAGE)))).toBe(true);
    expect(m.residency().resident).toBe(4); // the shmem page cache keeps them
    m.advise('pageout'); // no swap here: written shmem pages stay
    expect(Buffer.from(m.readSync(0, 4 * PAGE)).equals(Buffer.from(pattern(4 * PAGE)))).toBe(true);
    m.advise('remove', { offset: PAGE, length: PAGE });
    expect(Array.from(m.residency().pages)).toEqual([1, 0, 1, 1]);
    expect(allEqual(m.readSync(PAGE, PAGE), 0)).toBe(true);
    expect(codeOf(() => m.advise('free'))).toBe('EINVAL');
  });

  it.skipIf(!haveDist)('two processes see each other\'s writes; the child cannot shrink it either (needs dist/)', () => {
    using shm = pw.createSharedMemory(2 * PAGE, { name: 'two-processes' });
    shm.mapping.buffer.set(Buffer.from('hello from parent'));
    const child = `
      const fs = require('node:fs');
      const pw = require(${JSON.stringify(DIST)});
      const m = pw.mapFile(3, { mode: 'shared' });
      const seen = Buffer.from(m.readSync(0, 17)).toString();
      m.writeSync(${PAGE}, Buffer.from('hello from child'));
      let truncate = 'allowed';
      try { fs.ftruncateSync(3, 0); } catch (e) { truncate = e.code; }
      process.stdout.write(JSON.stringify({ backend: pw.backend, seen, truncate, size: fs.fstatSync(3).size }));
    `;
    const r = spawnSync(process.execPath, ['-e', child], { stdio: ['ignore', 'pipe', 'pipe', shm.fd], encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ backend: 'native', seen: 'hello from parent', truncate: 'EPERM', size: 2 * PAGE });
    expect(Buffer.from(shm.mapping.view(PAGE, 16)).toString()).toBe('hello from child');
  });

  it.skipIf(!haveDist)('a worker maps the same pages with mapFile(fd) (needs dist/)', async () => {
    using shm = pw.createSharedMemory(2 * PAGE);
    shm.mapping.buffer.set(Buffer.from('from main'));
    const body = `
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      const pw = require(workerData.dist);
      const m = pw.mapFile(workerData.fd, { mode: 'shared' });
      const seen = Buffer.from(m.readSync(0, 9)).toString();
      m.writeSync(workerData.page, Buffer.from('from worker'));
      let truncate = 'allowed';
      try { fs.ftruncateSync(workerData.fd, 0); } catch (e) { truncate = e.code; }
      m.close();
      parentPort.postMessage({ seen, truncate });
    `;
    const worker = new Worker(body, { eval: true, workerData: { dist: DIST, fd: shm.fd, page: PAGE } });
    const reply = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(reply).toEqual({ seen: 'from main', truncate: 'EPERM' });
    expect(Buffer.from(shm.mapping.view(PAGE, 11)).toString()).toBe('from worker');
    expect(fs.fstatSync(shm.fd).size).toBe(2 * PAGE);
  });
});

it.skipIf(onKernel)('createSharedMemory on the simulator: ERR_OPERATION_NOT_SUPPORTED (simulator only)', () => {
  expect(codeOf(() => pw.createSharedMemory(PAGE))).toBe('ERR_OPERATION_NOT_SUPPORTED');
});
