// mapping.read / readSync / write / writeSync: copies that never fault (issue 14).
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrnoError } from '../lib/index';
import { copySettings, type ShortReadError, type ShortWriteError } from '../lib/safe-copy';
import { allEqual, PAGE, pattern, pw, tempFile } from './helpers';

const defaultAsyncMin = copySettings.asyncMin;
afterEach(() => {
  copySettings.asyncMin = defaultAsyncMin;
});

/** The bytes of a view as a Buffer, so that views of either class compare by content. */
const b = (v: Uint8Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

function thrown(fn: () => unknown): ErrnoError & Partial<ShortReadError & ShortWriteError> {
  try {
    fn();
  } catch (err) {
    return err as ErrnoError;
  }
  throw new Error('expected a throw');
}

describe('read / readSync', () => {
  it('copies a byte range of a file mapping (unaligned offset too) into a new Buffer or a target', async () => {
    const content = pattern(5 * PAGE + 123);
    const file = tempFile(content);
    using m = pw.mapFile(file, { offset: 1000 });
    const got = m.readSync(10, 2 * PAGE + 7);
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(b(got)).toEqual(b(content.subarray(1010, 1010 + 2 * PAGE + 7)));
    const target = new Uint8Array(3 * PAGE).fill(0xee);
    const view = m.readSync(PAGE - 1, 5, target);
    expect(view.buffer).toBe(target.buffer);
    expect(b(view)).toEqual(b(content.subarray(1000 + PAGE - 1, 1000 + PAGE + 4)));
    expect(allEqual(target, 0xee, 5)).toBe(true); // nothing past length touched
    expect(b(await m.read(0, m.length)).equals(b(content.subarray(1000)))).toBe(true);
    expect(m.readSync(m.length, 0).length).toBe(0);
  });

  it('reads anonymous memory, untouched pages as zeros', async () => {
    using m = pw.map(4 * PAGE);
    m.buffer.set(pattern(PAGE), PAGE);
    const got = await m.read(0, 3 * PAGE);
    expect(allEqual(got, 0, 0, PAGE)).toBe(true);
    expect(b(got.subarray(PAGE, 2 * PAGE))).toEqual(b(pattern(PAGE)));
    expect(allEqual(got, 0, 2 * PAGE)).toBe(true);
  });

  it('the threadpool path gives the same bytes (large copies, and small ones when forced)', async () => {
    const content = pattern(3 * 1024 * 1024 + 5);
    using m = pw.mapFile(tempFile(content));
    expect(b(await m.read(1, content.length - 1)).equals(b(content.subarray(1)))).toBe(true); // >= 1 MiB: threadpool
    copySettings.asyncMin = 0;
    const target = new Uint8Array(100);
    expect(b(await m.read(77, 100, target))).toEqual(b(content.subarray(77, 177)));
  });

  it('rejects bad arguments with Node-style codes', async () => {
    using m = pw.map(2 * PAGE);
    expect(thrown(() => m.readSync(-1, 1)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => m.readSync(0, 2 * PAGE + 1)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => m.readSync(PAGE, PAGE + 1)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => m.readSync('0' as never, 1)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => m.readSync(0, 1, [0] as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => m.readSync(0, 9, new Uint8Array(8))).code).toBe('ERR_OUT_OF_RANGE');
    await expect(m.read(0, 1.5)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(thrown(() => m.writeSync(0, 'x' as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => m.writeSync(PAGE + 1, new Uint8Array(PAGE))).code).toBe('ERR_OUT_OF_RANGE');
    m.close();
    expect(thrown(() => m.readSync(0, 1)).code).toBe('ERR_MAPPING_CLOSED');
    await expect(m.read(0, 1)).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    await expect(m.write(0, new Uint8Array(1))).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
  });

  it('past the end of a truncated file: EFAULT with bytesRead, the bytes before it copied, no signal', async () => {
    const content = pattern(8 * PAGE);
    const file = tempFile(content);
    using m = pw.mapFile(file);
    fs.truncateSync(file, 3 * PAGE + 10); // the page holding the new end stays readable
    const target = new Uint8Array(8 * PAGE);
    const err = thrown(() => m.readSync(100, 8 * PAGE - 100, target));
    expect(err.code).toBe('EFAULT');
    expect(err.syscall).toBe('process_vm_readv');
    expect(err.bytesRead).toBe(4 * PAGE - 100);
    expect(b(target.subarray(0, 3 * PAGE - 90))).toEqual(b(content.subarray(100, 3 * PAGE + 10)));
    // Entirely past the end: nothing copied.
    expect(thrown(() => m.readSync(5 * PAGE, 10)).bytesRead).toBe(0);
    copySettings.asyncMin = 0;
    await expect(m.read(4 * PAGE, PAGE)).rejects.toMatchObject({ code: 'EFAULT', bytesRead: 0 });
    await expect(m.read(PAGE, 4 * PAGE)).rejects.toMatchObject({ code: 'EFAULT', bytesRead: 3 * PAGE });
    // Below the end every read still works.
    expect(b(m.readSync(0, 3 * PAGE))).toEqual(b(content.subarray(0, 3 * PAGE)));
  });

  it('a PROT_NONE page stops the copy with EFAULT instead of SIGSEGV', () => {
    using m = pw.map(4 * PAGE);
    m.buffer.fill(7);
    m.protect('none', { offset: 2 * PAGE, length: PAGE });
    const err = thrown(() => m.readSync(0, 4 * PAGE));
    expect(err.code).toBe('EFAULT');
    expect(err.bytesRead).toBe(2 * PAGE);
    expect(thrown(() => m.writeSync(PAGE, new Uint8Array(2 * PAGE))).bytesWritten).toBe(PAGE);
  });
});

describe('buffers detached while a threadpool copy runs', () => {
  it('read(): the copy lands in a private buffer; a target detached meanwhile gets ERR_INVALID_STATE, no crash', async () => {
    const content = pattern(4 * PAGE);
    using m = pw.mapFile(tempFile(content));
    copySettings.asyncMin = 0;
    const target = new Uint8Array(2 * PAGE);
    const pending = m.read(PAGE, 2 * PAGE, target);
    const moved = new Uint8Array(structuredClone(target.buffer, { transfer: [target.buffer] }));
    await expect(pending).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    expect(allEqual(moved, 0)).toBe(true); // nothing was written into memory the caller gave away
    const kept = new Uint8Array(2 * PAGE);
    expect(b(await m.read(PAGE, 2 * PAGE, kept))).toEqual(b(content.subarray(PAGE, 3 * PAGE)));
  });

  it('write(): the source is copied at the call; detaching it afterwards changes nothing', async () => {
    const file = tempFile(new Uint8Array(2 * PAGE));
    using m = pw.mapFile(file, { mode: 'shared' });
    copySettings.asyncMin = 0;
    const source = new Uint8Array(PAGE).fill(0x5a);
    const pending = m.write(PAGE, source);
    structuredClone(source.buffer, { transfer: [source.buffer] });
    expect(await pending).toBe(PAGE);
    expect(allEqual(m.readSync(PAGE, PAGE), 0x5a)).toBe(true);
  });
});

describe('write / writeSync', () => {
  it('writes into a shared file mapping; flush() takes it to the file', async () => {
    const file = tempFile(new Uint8Array(4 * PAGE));
    using m = pw.mapFile(file, { mode: 'shared' });
    expect(m.writeSync(PAGE - 3, pattern(10))).toBe(10);
    copySettings.asyncMin = 0;
    expect(await m.write(2 * PAGE, pattern(PAGE, 2))).toBe(PAGE);
    await m.flush();
    const onDisk = fs.readFileSync(file);
    expect(onDisk.subarray(PAGE - 3, PAGE + 7)).toEqual(Buffer.from(pattern(10)));
    expect(onDisk.subarray(2 * PAGE, 3 * PAGE)).toEqual(Buffer.from(pattern(PAGE, 2)));
    expect(b(m.buffer.subarray(PAGE - 3, PAGE + 7))).toEqual(b(pattern(10)));
  });

  it('past the end of a truncated file: EFAULT with bytesWritten, no signal', () => {
    const file = tempFile(new Uint8Array(4 * PAGE));
    using m = pw.mapFile(file, { mode: 'shared' });
    fs.truncateSync(file, PAGE);
    const err = thrown(() => m.writeSync(PAGE / 2, new Uint8Array(2 * PAGE).fill(9)));
    expect(err.code).toBe('EFAULT');
    expect(err.syscall).toBe('process_vm_writev');
    expect(err.bytesWritten).toBe(PAGE / 2);
  });

  it('a read-only protection refuses the write (EFAULT, nothing written)', () => {
    using m = pw.map(2 * PAGE);
    m.protect('read');
    expect(thrown(() => m.writeSync(0, new Uint8Array(8).fill(1))).bytesWritten).toBe(0);
    expect(allEqual(m.readSync(0, 2 * PAGE), 0)).toBe(true);
  });

  it('a private file mapping takes the write copy-on-write: the file is unchanged', () => {
    const content = pattern(2 * PAGE);
    const file = tempFile(content);
    using m = pw.mapFile(file);
    m.writeSync(5, new Uint8Array([1, 2, 3]));
    expect(b(m.readSync(5, 3))).toEqual(b(new Uint8Array([1, 2, 3])));
    expect(b(new Uint8Array(fs.readFileSync(file)))).toEqual(b(content));
  });
});

describe('close while a copy is in flight', () => {
  it('settles (the bytes, or ERR_MAPPING_CLOSED) and the memory stays mapped until the copy ends', async () => {
    const size = 64 * 1024 * 1024;
    using m = pw.map(size);
    m.buffer.fill(3, 0, PAGE);
    const pending = m.read(0, size);
    m.close();
    const outcome = await pending.then(
      (bytes) => ({ ok: true, first: bytes[0], length: bytes.length }),
      (err: ErrnoError) => ({ ok: false, code: err.code }),
    );
    if (outcome.ok) expect(outcome).toEqual({ ok: true, first: 3, length: size });
    else expect(outcome).toEqual({ ok: false, code: 'ERR_MAPPING_CLOSED' });
  });
});

const DIST = path.join(__dirname, '..', 'dist', 'index.js');

describe.skipIf(!fs.existsSync(DIST))('in a worker (needs dist/)', () => {
  it('read() works there, and terminating the worker with a threadpool copy in flight disturbs nothing', async () => {
    const file = tempFile(pattern(16 * 1024 * 1024 + 3));
    const body = `
      const { parentPort, workerData } = require('node:worker_threads');
      const pw = require(workerData.dist);
      const m = pw.mapFile(workerData.file);
      m.read(1, 10).then((bytes) => {
        parentPort.postMessage(Array.from(bytes));
        for (let i = 0; i < 4; i++) void m.read(0, m.length).catch(() => {}); // still running at terminate()
        parentPort.postMessage('busy');
      });
    `;
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(body, { eval: true, workerData: { dist: DIST, file }, env: process.env });
      const messages: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        worker.on('message', (msg) => {
          messages.push(msg);
          if (msg === 'busy') resolve();
        });
        worker.once('error', reject);
      });
      await worker.terminate();
      expect(messages[0]).toEqual(Array.from(pattern(16 * 1024 * 1024 + 3).subarray(1, 11)));
    }
    // This thread is fine: its own copies still work.
    using m = pw.mapFile(file);
    expect(b(m.readSync(5, 4))).toEqual(b(pattern(16 * 1024 * 1024 + 3).subarray(5, 9)));
  });
});

// ---- the proof: another process truncates and regrows the file all the time ----

const TRUNCATOR = `
const fs = require('node:fs');
const [file, cut, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const fd = fs.openSync(file, 'r+');
const tail = fs.readFileSync(file).subarray(cut, size);
let cycles = 0;
process.stdout.write('ready\\n');
for (;;) {
  fs.ftruncateSync(fd, cut);
  fs.writeSync(fd, tail, 0, tail.length, cut); // grows the file back with the same bytes
  if (++cycles % 64 === 0 && fs.existsSync(file + '.stop')) break;
}
process.stdout.write(String(cycles) + '\\n');
`;

async function startTruncator(file: string, cut: number, size: number): Promise<{ child: ChildProcess; stop: () => Promise<number> }> {
  const child = spawn(process.execPath, ['-e', TRUNCATOR, file, String(cut), String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      if (out.startsWith('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`truncator exited early (${code})`)));
  });
  const stop = async (): Promise<number> => {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    fs.writeFileSync(`${file}.stop`, '');
    await exited;
    return Number(out.split('\n')[1]);
  };
  return { child, stop };
}

/**
 * Whether bytes read from [offset, ...) are right: below the cut they never change; at or
 * past it they are the file's bytes, or zeros where the copy raced the truncation (the
 * kernel zeroes a truncated page in place, and a read(2) of the file races it the same way).
 */
function intact(content: Uint8Array, cut: number, offset: number, got: Uint8Array): 'ok' | 'torn' {
  let torn = false;
  for (let i = 0; i < got.length; i++) {
    if (got[i] === content[offset + i]) continue;
    if (offset + i >= cut && got[i] === 0) torn = true;
    else throw new Error(`wrong byte at ${offset + i}: ${got[i]}, expected ${content[offset + i]}`);
  }
  return torn ? 'torn' : 'ok';
}

/** One random read, checked: the right bytes, or EFAULT at or past `cut` with a right prefix. */
function checkOutcome(content: Uint8Array, cut: number, offset: number, length: number, target: Uint8Array, err: unknown): 'ok' | 'short' | 'torn' {
  if (err === undefined) return intact(content, cut, offset, target.subarray(0, length));
  const e = err as ShortReadError;
  if (e.code !== 'EFAULT' || typeof e.bytesRead !== 'number') throw err;
  if (e.bytesRead >= length || offset + e.bytesRead < cut) throw new Error(`bad short read at ${offset}+${length}: ${e.bytesRead}`);
  intact(content, cut, offset, target.subarray(0, e.bytesRead));
  return 'short';
}

const READS = 100_000;

describe('a file truncated in a loop by another process while it is read 100,000 times', () => {
  const size = 32 * PAGE;
  const cut = 8 * PAGE;
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const pick = (): [number, number] => {
    const offset = random(size);
    return [offset, Math.min(size - offset, 1 + random(3 * PAGE))];
  };

  it('readSync: no signal, every call gives the right bytes or EFAULT (bytesRead, right prefix)', async () => {
    const content = pattern(size, 3);
    const file = tempFile(content);
    using m = pw.mapFile(file);
    const { stop } = await startTruncator(file, cut, size);
    const target = new Uint8Array(3 * PAGE);
    const seen = { ok: 0, short: 0, torn: 0 };
    try {
      // Run until 100,000 reads are done and both outcomes have been seen (bounded).
      const deadline = Date.now() + 120_000;
      for (let i = 0; i < READS || ((seen.short === 0 || seen.ok === 0) && Date.now() < deadline); i++) {
        const [offset, length] = pick();
        let err: unknown;
        try {
          m.readSync(offset, length, target);
        } catch (e) {
          err = e;
        }
        seen[checkOutcome(content, cut, offset, length, target, err)]++;
      }
    } finally {
      expect(await stop()).toBeGreaterThan(0);
    }
    console.info(`${pw.kind}: ${JSON.stringify(seen)}`);
    expect(seen.ok + seen.short + seen.torn).toBeGreaterThanOrEqual(READS);
    expect(seen.short).toBeGreaterThan(0);
    expect(seen.ok).toBeGreaterThan(0);
  }, 180_000);

  it('read() on the threadpool (8 in flight): no signal, the right bytes or EFAULT', async () => {
    const content = pattern(size, 4);
    const file = tempFile(content);
    using m = pw.mapFile(file, { mode: 'shared' });
    copySettings.asyncMin = 0; // every copy goes through the threadpool
    const { stop } = await startTruncator(file, cut, size);
    const seen = { ok: 0, short: 0, torn: 0 };
    let issued = 0;
    const deadline = Date.now() + 150_000;
    const more = (): boolean => issued < READS || ((seen.short === 0 || seen.ok === 0) && Date.now() < deadline);
    const lane = async (): Promise<void> => {
      const target = new Uint8Array(3 * PAGE);
      while (more()) {
        issued++;
        const [offset, length] = pick();
        let err: unknown;
        try {
          await m.read(offset, length, target);
        } catch (e) {
          err = e;
        }
        seen[checkOutcome(content, cut, offset, length, target, err)]++;
      }
    };
    try {
      await Promise.all(Array.from({ length: 8 }, lane));
    } finally {
      expect(await stop()).toBeGreaterThan(0);
    }
    console.info(`${pw.kind}: ${JSON.stringify(seen)}`);
    expect(seen.ok + seen.short + seen.torn).toBeGreaterThanOrEqual(READS);
    expect(seen.short).toBeGreaterThan(0);
    expect(seen.ok).toBeGreaterThan(0);
  }, 200_000);
});
