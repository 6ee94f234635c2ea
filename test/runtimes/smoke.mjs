// Smoke suite for runtimes that do not run vitest (Bun, Deno), run on every
// runtime of the matrix by scripts/runtimes.mjs. It is copied into a project
// that installed the packed tarball, so `pagewise` resolves like it does for a
// user: ESM named imports, native backend, every Mapping method, fileResidency,
// evict/prefetch, the arena and the cache. It also measures what the runtime
// allows (a > 4 GiB mapping.buffer; a mapping's buffer in a transfer list).
//
// Prints one line per check; the last line is JSON: { passed, failed, facts }.
// Exit status 1 when a check failed.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import {
  ADVICE_NAMES,
  backend,
  evict,
  fileResidency,
  map,
  mapFile,
  pageSize,
  pagewise,
  prefetch,
  supports,
  VolatileArena,
  VolatileCache,
} from 'pagewise';

if (!isMainThread) {
  // The receiving end of the transfer check: report what arrived (the main thread terminates it).
  parentPort.on('message', (msg) => {
    parentPort.postMessage({ length: msg.byteLength, first: msg[0] });
  });
} else {
  await main();
}

async function main() {
  const results = [];
  const facts = {};
  const check = async (name, fn) => {
    try {
      await fn();
      results.push({ name, ok: true });
      console.log(`ok   ${name}`);
    } catch (err) {
      results.push({ name, ok: false });
      console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    }
  };
  const throwsCode = (fn, code) => assert.throws(fn, (err) => err.code === code);
  const P = pageSize;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-smoke-'));

  await check('ESM named imports give the native backend, and the same instance as require()', () => {
    assert.equal(backend, 'native');
    assert.equal(P, 4096);
    assert.ok(ADVICE_NAMES.includes('free'));
    const cjs = createRequire(import.meta.url)('pagewise');
    assert.equal(cjs.pagewise, pagewise); // one module instance: no dual-package hazard
    assert.equal(cjs.map, map);
  });

  await check('map, buffer, residency, advise (dontneed rounds inward), view, detachView', () => {
    const m = map(8 * P);
    assert.equal(m.length, 8 * P);
    assert.equal(m.pageSize, P);
    assert.equal(m.protection, 'read-write');
    assert.equal(m.closed, false);
    assert.equal(m.residency().resident, 0);
    m.buffer.fill(42);
    assert.deepEqual(Array.from(m.residency().pages), [1, 1, 1, 1, 1, 1, 1, 1]);
    const advised = m.advise('dontneed', { offset: P - 1, length: 2 * P + 2 });
    assert.deepEqual(advised, { offset: P, length: 2 * P });
    assert.equal(m.buffer[P - 1], 42);
    assert.equal(m.buffer[P], 0);
    assert.equal(m.buffer[3 * P - 1], 0);
    assert.equal(m.buffer[3 * P], 42);
    const v = m.view(3 * P, 10);
    assert.equal(v.length, 10);
    assert.equal(v[0], 42);
    m.detachView(v);
    assert.equal(v.length, 0);
    assert.equal(m.buffer[3 * P], 42);
    m.close();
  });

  await check("advise('free') keeps data until reclaim; a write after it keeps the page", () => {
    const m = map(4 * P);
    m.buffer.fill(7);
    assert.deepEqual(m.advise('free'), { offset: 0, length: 4 * P });
    m.buffer[P] = 8;
    if (supports('pageout')) m.advise('pageout');
    assert.equal(m.buffer[P], 8); // written after FREE: never discarded
    assert.ok(m.buffer[0] === 7 || m.buffer[0] === 0); // either kept or reclaimed (zero), never garbage
    m.close();
  });

  await check('populate, protect, lock/unlock, resize, close, Symbol.dispose', async () => {
    const m = map(4 * P);
    await m.populate({ mode: 'write' });
    assert.equal(m.residency().resident, 4);
    m.protect('read');
    assert.equal(m.protection, 'read');
    m.protect('read-write');
    await m.lock({ onFault: true, length: P });
    m.unlock();
    m.buffer[0] = 9;
    const old = m.buffer;
    m.resize(16 * P);
    assert.equal(old.length, 0); // resize detaches old views
    assert.equal(m.length, 16 * P);
    assert.equal(m.buffer[0], 9);
    const buf = m.buffer;
    m.close();
    assert.equal(buf[0], 0); // close() releases the memory: views left behind read zeros
    assert.equal(m.closed, true);
    m.close(); // idempotent
    throwsCode(() => m.advise('dontneed'), 'ERR_MAPPING_CLOSED');
    const d = map(P);
    d[Symbol.dispose]();
    assert.equal(d.closed, true);
  });

  await check('coded errors: bad advice, bad range, unknown file', () => {
    const m = map(P);
    throwsCode(() => m.advise('dontneeed'), 'ERR_INVALID_ARG_VALUE');
    throwsCode(() => m.view(2 * P), 'ERR_OUT_OF_RANGE');
    m.close();
    throwsCode(() => mapFile(path.join(tmp, 'missing')), 'ENOENT');
  });

  // The errors Node-API hands over from the addon (errno + syscall) are shaped in lib/errors.ts
  // with node:util's system error map and node:os constants: each runtime must give the same shapes.
  await check('kernel errors shaped as Node does: EINVAL from madvise, EFAULT from an async populate, ENOENT', async () => {
    const errnoError = (code, errno, syscall) => (err) =>
      err instanceof Error && err.code === code && err.errno === errno && err.syscall === syscall && err.message.startsWith(`${code}: `);
    const file = path.join(tmp, 'errors.bin');
    fs.writeFileSync(file, Buffer.alloc(4 * P, 1));
    const fm = mapFile(file);
    assert.throws(() => fm.advise('free'), errnoError('EINVAL', -22, 'madvise')); // MADV_FREE: private anonymous memory only
    assert.throws(() => fm.advise('free'), /^Error: EINVAL: invalid argument, madvise/);
    fm.close();
    const shared = mapFile(file, { mode: 'shared' });
    fs.truncateSync(file, P); // pages past the new end would be SIGBUS: populate refuses them
    await assert.rejects(shared.populate(), errnoError('EFAULT', -14, 'madvise'));
    shared.close();
    assert.throws(() => mapFile(path.join(tmp, 'missing')), (err) => errnoError('ENOENT', -2, err.syscall)(err) && err.path === path.join(tmp, 'missing'));
    const m = map(P);
    assert.throws(() => m.view(2 * P), (err) => err instanceof RangeError && err.name === 'RangeError' && err.code === 'ERR_OUT_OF_RANGE' && String(err).startsWith('RangeError [ERR_OUT_OF_RANGE]: '));
    assert.throws(() => m.advise(7), (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE');
    m.close();
  });

  await check('a closed mapping: every method throws or rejects ERR_MAPPING_CLOSED', async () => {
    const m = map(2 * P);
    m.close();
    for (const call of [() => m.buffer, () => m.view(), () => m.residency(), () => m.advise('dontneed'), () => m.protect('read'), () => m.flushSync(), () => m.resize(P)]) {
      throwsCode(call, 'ERR_MAPPING_CLOSED');
    }
    for (const call of [() => m.populate(), () => m.flush(), () => m.lock()]) {
      await assert.rejects(call(), (err) => err instanceof Error && err.code === 'ERR_MAPPING_CLOSED');
    }
  });

  await check('mapFile private/shared, flush, flushSync, fileResidency, evict, prefetch', async () => {
    const file = path.join(tmp, 'data.bin');
    fs.writeFileSync(file, Buffer.alloc(4 * P, 1));
    const priv = mapFile(file);
    assert.equal(priv.buffer[0], 1);
    priv.buffer[0] = 2; // copy-on-write: never reaches the file
    priv.close();
    assert.equal(fs.readFileSync(file)[0], 1);
    const shared = mapFile(file, { mode: 'shared' });
    shared.buffer[0] = 3;
    await shared.flush();
    shared.buffer[P] = 4;
    shared.flushSync({ offset: P, length: 1 });
    shared.close();
    const bytes = fs.readFileSync(file);
    assert.equal(bytes[0], 3);
    assert.equal(bytes[P], 4);
    const r = fileResidency(file, { pages: true });
    assert.equal(r.total, 4);
    assert.equal(r.size, 4 * P);
    assert.equal(r.pages.length, 4);
    assert.equal(r.cached, r.pages.reduce((n, p) => n + (p & 1), 0));
    evict(file);
    prefetch(file);
    const again = fileResidency(file);
    assert.equal(again.total, 4);
    assert.ok(again.source === 'cachestat' || again.source === 'mincore');
  });

  await check('VolatileArena: alloc, unpin, purge, pin reports purged, free, close', async () => {
    const arena = new VolatileArena({ size: 1 << 20 });
    assert.equal(arena.backend, 'native');
    const b = arena.alloc(3 * P);
    b.bytes.fill(5);
    b.unpin();
    const held = arena.alloc(P); // pinned: purge never touches it
    held.bytes.fill(6);
    assert.equal(b.pin(), 'intact');
    b.unpin();
    // A span becomes volatile only once its views were collected (docs/ARENA.md).
    assert.equal(await arena.collectViews(), 0);
    assert.ok(arena.purge() >= 3 * P);
    assert.equal(b.pin(), 'purged');
    assert.equal(held.bytes[0], 6);
    b.free();
    held.free();
    assert.equal(arena.stats.buffers, 0);
    arena.close();
    assert.equal(arena.closed, true);
  });

  await check('VolatileCache: miss, hit, purged after flush() + arena.purge(), stats', async () => {
    const cache = new VolatileCache({ budget: 1 << 20 });
    let produced = 0;
    const produce = (key) => {
      produced++;
      return new TextEncoder().encode(`value of ${key}`);
    };
    const a = cache.get('a', produce);
    assert.equal(a.outcome, 'miss');
    assert.equal(new TextDecoder().decode(a.bytes.subarray(0, 10)), 'value of a');
    a.release();
    const hit = cache.get('a', produce);
    assert.equal(hit.outcome, 'hit');
    hit.release();
    cache.flush(); // the hot set lets go of the entry (and its view)
    assert.equal(await cache.arena.collectViews(), 0);
    cache.arena.purge();
    const again = cache.get('a', produce);
    assert.equal(again.outcome, 'purged');
    assert.equal(new TextDecoder().decode(again.bytes.subarray(0, 10)), 'value of a');
    again.release();
    assert.equal(produced, 2);
    assert.equal(cache.stats.hits, 1);
    assert.equal(cache.stats.purged, 1);
    cache.close();
  });

  await check('mapping.buffer over a mapping larger than 4 GiB: whole where the engine allows it', () => {
    const big = map(2 ** 32 + P, { noreserve: true });
    try {
      const whole = (() => {
        try {
          return big.buffer;
        } catch (err) {
          if (err.code !== 'ERR_MAPPING_TOO_LARGE') throw err;
          return undefined;
        }
      })();
      facts.maxViewLength = pagewise.backend.maxViewLength;
      facts.bufferOver4GiB = whole === undefined ? 'views only' : 'whole';
      if (whole === undefined) {
        assert.equal(pagewise.backend.maxViewLength, 2 ** 32);
        const tail = big.view(2 ** 32 - P, 2 * P); // the window rule: views reach every byte
        tail[2 * P - 1] = 1;
        assert.equal(big.view(2 ** 32 + P - 1, 1)[0], 1);
      } else {
        assert.ok(pagewise.backend.maxViewLength > 2 ** 32);
        assert.equal(whole.length, 2 ** 32 + P);
        whole[2 ** 32 + P - 1] = 1;
        assert.equal(big.view(2 ** 32, P)[P - 1], 1);
        assert.deepEqual(Array.from(big.residency({ offset: 2 ** 32, length: P }).pages), [1]);
      }
    } finally {
      big.close();
    }
  });

  await check("a mapping's buffer in postMessage without a transfer list: the worker gets a copy", async () => {
    const m = map(P);
    m.buffer[0] = 6;
    const worker = new Worker(fileURLToPath(import.meta.url));
    try {
      const reply = new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      worker.postMessage(m.buffer);
      const got = await reply;
      assert.deepEqual(got, { length: P, first: 6 });
      assert.equal(m.buffer.length, P);
      assert.equal(m.buffer[0], 6);
      facts.plainPostMessage = 'copy';
    } finally {
      m.close();
      await worker.terminate();
    }
  });

  // What the runtime does is recorded, not prescribed: Node 20 copies, Node 21+ and
  // Bun refuse (DataCloneError), Deno 2.9 moves the buffer to the worker (README
  // "Hazards"). The moved buffer is never read after close() here.
  await check("a mapping's buffer in a postMessage transfer list: the worker gets the bytes; close() releases the memory", async () => {
    const m = map(P);
    m.buffer[0] = 5;
    const view = m.buffer;
    const worker = new Worker(fileURLToPath(import.meta.url));
    try {
      const reply = new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      let outcome;
      try {
        worker.postMessage(view, [view.buffer]);
        const got = await reply;
        outcome = view.length === P ? 'copy' : 'moved';
        assert.equal(got.first, 5);
      } catch (err) {
        outcome = err && err.name === 'DataCloneError' ? 'DataCloneError' : `threw ${err && err.name}`;
        worker.postMessage(new Uint8Array([5])); // let the worker finish
        await reply;
      }
      facts.transfer = outcome;
      assert.ok(['copy', 'DataCloneError', 'moved'].includes(outcome), outcome);
      assert.equal(view.length, outcome === 'moved' ? 0 : P); // the sender keeps its view unless it moved
      m.close();
      if (outcome !== 'moved') assert.equal(view[0], 0); // close() released the memory: zeros, not the old bytes
    } finally {
      await worker.terminate();
    }
  });

  fs.rmSync(tmp, { recursive: true, force: true });
  const failed = results.filter((r) => !r.ok).length;
  console.log(JSON.stringify({ passed: results.length - failed, failed, facts }));
  process.exitCode = failed > 0 ? 1 : 0;
}
