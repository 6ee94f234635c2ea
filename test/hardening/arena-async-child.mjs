// Node's async APIs (zlib, crypto, fs) using arena and cache bytes while they are
// freed, released, deleted or closed, in a child process (a crash must be
// observed). Prints one JSON line. Backend from PAGEWISE_BACKEND.
//
//   node --expose-gc arena-async-child.mjs [rounds]
//
// Per round and operation: alloc b1, start the operation on b1.bytes, free b1,
// alloc b2 of the same size and fill it; when the operation called back, b2 must
// still hold its fill ('overwritten' counts the rounds where it did not: the
// new owner's bytes were changed by the old owner's async work). Then the same
// with arena.close(), cache handles released and deleted, and cache.close().
// No round may overwrite, with `quarantine: true` or the default arena.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { VolatileArena, VolatileCache, pagewise: pw } = require(path.join(here, '..', '..', 'dist', 'index.js'));
const rounds = Number(process.argv[2] ?? 4);
const SIZE = 2 * 2 ** 20;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-arena-async-'));
const file = path.join(dir, 'src');
fs.writeFileSync(file, crypto.randomBytes(SIZE));
const src = fs.openSync(file, 'r');
const sink = fs.openSync(path.join(dir, 'sink'), 'w');
const out = { backend: pw.kind, rounds, modes: {}, failures: [] };
const fail = (what) => out.failures.length < 50 && out.failures.push(what);
const tick = () => new Promise((r) => setTimeout(r, 5));

// Operations that write into the bytes (the danger for a new owner) and that read them.
const writers = {
  'crypto.randomFill': (v, cb) => crypto.randomFill(v, cb),
  'fs.read (writes into the bytes)': (v, cb) => fs.read(src, v, 0, v.length, 0, cb),
};
const readers = {
  'fs.write': (v, cb) => fs.write(sink, v, 0, v.length, 0, cb),
  'crypto.scrypt': (v, cb) => crypto.scrypt(v, 'salt', 16, cb),
  'crypto.hash stream': (v, cb) => {
    const h = crypto.createHash('sha256');
    h.update(v);
    setImmediate(() => cb(null, h.digest()));
  },
  // zlib aborts Node itself (node_zlib.cc CHECK) when its input is detached mid-stream:
  // only where free() keeps views attached (quarantine on the kernel).
  'zlib.deflate': (v, cb) => zlib.deflate(v, cb),
};

function untilCalled(op, view) {
  return new Promise((resolve) => op(view, (err) => resolve(err ? err.code ?? err.message : null)));
}

function isAll(bytes, value) {
  for (let i = 0; i < bytes.length; i += 512) if (bytes[i] !== value) return false;
  return bytes.length === 0 || bytes[bytes.length - 1] === value;
}

async function allocWaiting(arena, size, m) {
  // Quarantined spans come back once the garbage collector took their views: wait for it, bounded.
  for (let i = 0; ; i++) {
    try {
      return arena.alloc(size);
    } catch (e) {
      if (e.code !== 'ERR_ARENA_FULL' || i >= 200) throw e;
      m.waitsForGc++;
      globalThis.gc?.();
      await tick();
    }
  }
}

async function mode(name, options) {
  const m = { callbacks: 0, errors: {}, overwritten: {}, rounds: 0, waitsForGc: 0, closeRaces: 0, cacheRaces: 0 };
  out.modes[name] = m;
  const keepsViews = options.quarantine === true && pw.kind === 'native';
  const ops = { ...writers, ...Object.fromEntries(Object.entries(readers).filter(([k]) => keepsViews || !k.startsWith('zlib'))) };
  const note = (op, err) => {
    m.callbacks++;
    if (err) m.errors[`${op}: ${err}`] = (m.errors[`${op}: ${err}`] ?? 0) + 1;
  };
  const arena = new VolatileArena({ size: 8 * SIZE, decayMs: -1, ...options });
  for (let round = 0; round < rounds; round++) {
    m.rounds++;
    // free() then reuse.
    for (const [op, run] of Object.entries(ops)) {
      const b1 = await allocWaiting(arena, SIZE, m);
      b1.bytes.fill(1);
      const done = untilCalled(run, b1.bytes);
      b1.free();
      const b2 = await allocWaiting(arena, SIZE, m);
      b2.bytes.fill(0x77);
      note(op, await done);
      if (!isAll(b2.bytes, 0x77)) m.overwritten[op] = (m.overwritten[op] ?? 0) + 1;
      b2.free();
    }
    // arena.close() while the operations run (a new arena for each).
    {
      const a = new VolatileArena({ size: 8 * SIZE, ...options });
      const waits = Object.entries(ops).map(([op, run]) => {
        const b = a.alloc(SIZE);
        b.bytes.fill(2);
        return untilCalled(run, b.bytes).then((err) => note(op, err));
      });
      a.close();
      await Promise.all(waits);
      m.closeRaces += waits.length;
    }
    // Cache handles released and deleted, then the cache closed, while the operations run.
    {
      const cache = new VolatileCache({ budget: 4 * SIZE, arenaSize: 8 * SIZE, ...options });
      const waits = [];
      let k = 0;
      for (const [op, run] of Object.entries(ops)) {
        const h = cache.get(`k${k++}`, { size: SIZE, fill: (t) => t.fill(3) });
        waits.push(untilCalled(run, h.bytes).then((err) => note(op, err)));
        h.release();
        if (k % 2 === 0) cache.delete(`k${k - 1}`);
      }
      const fresh = cache.get('fresh', { size: SIZE, fill: (t) => t.fill(0x55) });
      cache.close();
      await Promise.all(waits);
      m.cacheRaces += waits.length;
      try {
        fresh.bytes;
        fail(`${name}: bytes of a handle after cache.close() did not throw`);
      } catch (e) {
        if (e.code !== 'ERR_BUFFER_FREED') fail(`${name}: bytes after cache.close(): ${e.code ?? e.message}`);
      }
    }
    globalThis.gc?.();
    await tick();
  }
  arena.close();
  const expected = rounds * Object.keys(ops).length * 3;
  if (m.callbacks !== expected) fail(`${name}: ${m.callbacks} callbacks of ${expected}`);
  // The default arena protects too since issue 16 (F3, arena part).
  for (const [op, n] of Object.entries(m.overwritten)) fail(`${name}: ${op} overwrote the next owner's bytes in ${n} of ${rounds} rounds`);
  for (const e of Object.keys(m.errors)) if (!/detached/i.test(e)) fail(`${name}: ${e}`);
}

try {
  await mode('quarantine', { quarantine: true });
  await mode('default', {});
} finally {
  fs.closeSync(src);
  fs.closeSync(sink);
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
if (out.failures.length > 0) process.exitCode = 1;
