// Volatile bytes handed to Node's own I/O (issue 22), in a child process so that an abort
// is a failure the parent sees. One scenario per run; prints one JSON line
// { scenario, backend, checked, wrong, failures }. Backend from PAGEWISE_BACKEND.
//
//   node node-io-child.mjs <scenario> [MiB]
//
// http-obvious / net-obvious: const h = cache.get(k, render); res.end(h.bytes); h.release();
// http-helper / net-helper:   the same with releaseAfter(res, h).
//   Clients on loopback pause 150–400 ms and then read slowly; meanwhile the server churns
//   the cache and the arena (other keys, flush, purge, pressure) so that any span that
//   became volatile or was reused under a pending write would show in the body.
// async: unpin/release/free/close while zlib (one-shot, a backpressured stream), crypto.randomFill,
//   fs.write, FileHandle.write and a slow socket hold the bytes; every result is checked.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { VolatileArena, VolatileCache, releaseAfter, pagewise: pw } = require(path.join(here, '..', '..', 'dist', 'index.js'));
const scenario = process.argv[2];
const MiB = 2 ** 20;
const sizeMiB = Number(process.argv[3] ?? 4);
const out = { scenario, backend: pw.kind, sizeMiB, checked: 0, wrong: 0, failures: [] };
const fail = (what) => {
  out.wrong++;
  if (out.failures.length < 20) out.failures.push(what);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Deterministic body for a key: a seeded pattern (cheap to regenerate and to check). */
function body(key, size) {
  const b = Buffer.allocUnsafe(size);
  let x = (key * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}
const expected = new Map();
const want = (key, size) => {
  let b = expected.get(key);
  if (b === undefined) expected.set(key, (b = body(key, size)));
  return b;
};
function check(label, got, exp) {
  out.checked++;
  if (got.length !== exp.length) return fail(`${label}: ${got.length} bytes, expected ${exp.length}`);
  const i = Buffer.compare(got, exp) === 0 ? -1 : got.findIndex((v, k) => v !== exp[k]);
  if (i >= 0) fail(`${label}: first wrong byte at ${i}`);
}

/** Churn the arena while responses are pending: other keys, flush, purge, pressure. */
function churn(cache, arena, size, stop) {
  let k = 1000;
  return (async () => {
    while (!stop.done) {
      const h = cache.get(k++ % 1010, () => body(k, size));
      h.release();
      arena.flush();
      arena.purge();
      if (k % 5 === 0) cache.handlePressure('critical');
      if (typeof globalThis.gc === 'function') globalThis.gc();
      await sleep(20);
    }
  })();
}

/** A slow client: connects, waits, then reads in small slices with pauses. */
function slowRead(socket, { pauseMs, skipHeaders }) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    socket.pause();
    let reading = false;
    socket.on('data', (c) => {
      chunks.push(c);
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
    socket.on('end', () => {
      let all = Buffer.concat(chunks);
      if (skipHeaders) all = all.subarray(all.indexOf('\r\n\r\n') + 4);
      resolve(all);
    });
    socket.on('error', reject);
    setTimeout(() => {
      reading = true;
      socket.resume();
    }, pauseMs);
    void reading;
  });
}

async function serve(kind, helper) {
  const size = sizeMiB * MiB;
  const arena = new VolatileArena({ size: 16 * size + 64 * MiB });
  const cache = new VolatileCache({ budget: 8 * size + 64 * MiB, arena });
  const keys = [1, 2, 3];
  const respond = (key, w) => {
    const h = cache.get(key, () => body(key, size));
    if (helper) {
      w.end(h.bytes);
      releaseAfter(w, h);
    } else {
      w.end(h.bytes);
      h.release();
    }
  };
  const server =
    kind === 'http'
      ? http.createServer((req, res) => respond(Number(req.url.slice(1)), res))
      : net.createServer((s) => s.once('data', (d) => respond(Number(String(d)), s)));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const stop = { done: false };
  const churning = churn(cache, arena, 64 * 1024, stop);
  const requests = [];
  for (let round = 0; round < 2; round++) {
    for (const key of keys) {
      const pauseMs = 150 + ((round * 7 + key * 13) % 5) * 60; // 150..390 ms
      requests.push(
        (async () => {
          const socket = net.connect(port, '127.0.0.1');
          socket.setRecvBufferSize?.(16 * 1024);
          await new Promise((r) => socket.once('connect', r));
          socket.write(kind === 'http' ? `GET /${key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n` : String(key));
          if (kind === 'net') socket.end();
          const got = await slowRead(socket, { pauseMs, skipHeaders: kind === 'http' });
          check(`${kind} key ${key} round ${round}`, got, want(key, size));
        })(),
      );
    }
    await sleep(50);
  }
  await Promise.all(requests);
  stop.done = true;
  await churning;
  server.close();
  out.arena = arena.stats;
  cache.close();
  arena.close();
}

async function asyncCases() {
  const size = sizeMiB * MiB;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-node-io-'));
  const fd = fs.openSync(path.join(dir, 'sink'), 'w+');
  const fh = await fs.promises.open(path.join(dir, 'sink2'), 'w+');
  // Every way to let go of the bytes, then churn the arena so a reused or volatile span shows.
  const endings = {
    unpin: (a, b) => {
      b.unpin();
    },
    free: (a, b) => {
      b.free();
      for (let i = 0; i < 4; i++) a.alloc(size).bytes.fill(0xee);
    },
    close: (a) => {
      a.close();
    },
  };
  const settle = (a) => {
    if (a.closed) return;
    a.flush();
    a.purge();
    a.handlePressure('critical');
  };
  const cases = {
    'zlib one-shot': (v) =>
      new Promise((res, rej) => zlib.gzip(v, (err, z) => (err ? rej(err) : res(zlib.gunzipSync(z))))),
    'zlib stream with backpressure': (v) =>
      new Promise((res, rej) => {
        const d = zlib.createDeflate();
        d.write(v);
        d.end();
        const parts = [];
        setTimeout(() => {
          d.on('data', (c) => parts.push(c));
          d.on('end', () => res(zlib.inflateSync(Buffer.concat(parts))));
          d.on('error', rej);
        }, 200);
      }),
    'crypto.randomFill': null, // writes: checked separately below
    'fs.write': (v) =>
      new Promise((res, rej) =>
        fs.write(fd, v, 0, v.length, 0, (err) => (err ? rej(err) : res(fs.readFileSync(path.join(dir, 'sink')).subarray(0, v.length)))),
      ),
    'FileHandle.write': async (v) => {
      await fh.write(v, 0, v.length, 0);
      const b = Buffer.alloc(v.length);
      await fh.read(b, 0, v.length, 0);
      return b;
    },
    'slow socket': (v) =>
      new Promise((res, rej) => {
        const server = net.createServer((s) => s.end(v));
        server.listen(0, '127.0.0.1', () => {
          const c = net.connect(server.address().port, '127.0.0.1');
          slowRead(c, { pauseMs: 250, skipHeaders: false }).then((got) => {
            server.close();
            res(got);
          }, rej);
        });
      }),
  };
  for (const [ending, end] of Object.entries(endings)) {
    for (const [name, op] of Object.entries(cases)) {
      const a = new VolatileArena({ size: 8 * size });
      const b = a.alloc(size);
      const exp = body(name.length * 31 + ending.length, size);
      b.bytes.set(exp);
      if (op === null) {
        // randomFill writes into the bytes: the new owner of the span must never see it.
        const v = b.bytes;
        const done = new Promise((r) => crypto.randomFill(v, r));
        end(a, b);
        settle(a);
        const others = a.closed ? [] : [a.alloc(size), a.alloc(size)];
        for (const o of others) o.bytes.fill(0x5a);
        await done;
        for (const o of others) check(`${ending} / ${name}: new owner`, Buffer.from(o.bytes), Buffer.alloc(size, 0x5a));
        if (others.length === 0) out.checked++;
      } else {
        const result = op(b.bytes);
        end(a, b);
        settle(a);
        if (typeof globalThis.gc === 'function') globalThis.gc();
        await sleep(10);
        settle(a);
        check(`${ending} / ${name}`, Buffer.from(await result), exp);
      }
      a.close();
    }
  }
  // The cache: release, delete and close while a slow socket and zlib hold the entry's bytes.
  for (const ending of ['release', 'delete', 'close']) {
    const arena = new VolatileArena({ size: 16 * size });
    const c = new VolatileCache({ budget: 8 * size, arena });
    const exp = body(7 + ending.length, size);
    const h = c.get('k', () => exp);
    const z = new Promise((res, rej) => zlib.gzip(h.bytes, (err, r) => (err ? rej(err) : res(zlib.gunzipSync(r)))));
    const s = cases['slow socket'](h.bytes);
    h.release();
    if (ending === 'delete') c.delete('k');
    if (ending === 'close') {
      c.close();
      arena.close();
    } else {
      arena.flush();
      c.handlePressure('critical');
      c.get('other', () => Buffer.alloc(size, 1)).release();
      arena.purge();
    }
    check(`cache ${ending} / zlib`, Buffer.from(await z), exp);
    check(`cache ${ending} / slow socket`, Buffer.from(await s), exp);
    c.close();
    arena.close();
  }
  await fh.close();
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
}

const run = {
  'http-obvious': () => serve('http', false),
  'http-helper': () => serve('http', true),
  'net-obvious': () => serve('net', false),
  'net-helper': () => serve('net', true),
  async: () => asyncCases(),
}[scenario];
if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
await run();
console.log(JSON.stringify(out));
