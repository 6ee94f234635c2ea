// Issue 16 scenarios, each in its own process (a crash must be observed, not end
// the test run). Prints one JSON line. Backend from PAGEWISE_BACKEND.
//
//   node --expose-gc issue16-child.mjs <scenario> [rounds]
//     async-close   Node's threadpool (zlib, crypto, fs) using a view while close() runs
//     released      whenViewReleased() resolves only after the async work on a detached view ended
//     special-files FIFO, socket, devices, directory, /proc for every file-taking call; a FIFO swapped in after the check
//     paths         Buffer (non-UTF-8) and URL paths reach open(2) byte for byte
//     bounds        residency vectors sized by user input
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const pagewise = require(path.join(here, '..', '..', 'dist', 'index.js'));
const pw = pagewise.pagewise;
const PAGE = pw.pageSize;
const [scenario, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-i16-'));
const out = { scenario, backend: pw.kind, rounds };
const codeOf = (fn) => {
  try {
    const r = fn();
    if (r && typeof r.close === 'function') r.close();
    return 'ok';
  } catch (e) {
    return e.code ?? `NO CODE: ${e.message}`;
  }
};
const tick = () => new Promise((r) => setTimeout(r, 5));

async function asyncClose() {
  const size = 8 * 2 ** 20;
  const file = path.join(dir, 'data');
  fs.writeFileSync(file, crypto.randomBytes(size));
  const sink = fs.openSync(path.join(dir, 'sink'), 'w');
  const src = fs.openSync(file, 'r');
  const ops = {
    'zlib.deflate': (v, cb) => zlib.deflate(v, cb),
    'zlib.gzip': (v, cb) => zlib.gzip(v, cb),
    'crypto.randomFill': (v, cb) => crypto.randomFill(v, cb),
    'crypto.scrypt': (v, cb) => crypto.scrypt(v, 'salt', 16, cb),
    'fs.write': (v, cb) => fs.write(sink, v, 0, v.length, 0, cb),
    'fs.read (writes into the view)': (v, cb) => fs.read(src, v, 0, v.length, 0, cb),
    'fs.promises.writeFile': (v, cb) => fs.promises.writeFile(path.join(dir, 'sink2'), v).then(() => cb(null), cb),
  };
  const calls = {};
  const errors = [];
  for (let round = 0; round < rounds; round++) {
    const waits = [];
    for (const [name, op] of Object.entries(ops)) {
      // zlib with an input detached mid-stream aborts Node itself (node_zlib.cc CHECK), pagewise or not.
      for (const how of name.startsWith('zlib') ? ['close'] : ['close', 'detachView+close']) {
        const m = round % 2 === 0 ? pw.map(size) : pw.mapFile(file, { mode: round % 4 === 1 ? 'private' : 'shared' });
        const view = how === 'close' ? m.buffer : m.view(0, size);
        waits.push(
          new Promise((resolve) => {
            op(view, (err) => {
              const key = `${name} ${how}`;
              calls[key] = (calls[key] ?? 0) + 1;
              if (err) errors.push(`${key}: ${err.code ?? err.message}`);
              resolve();
            });
          }),
        );
        if (how === 'detachView+close') {
          try {
            m.detachView(view);
          } catch (e) {
            errors.push(`detachView: ${e.code}`);
          }
        }
        m.close();
      }
    }
    await Promise.all(waits);
    if (globalThis.gc) globalThis.gc();
  }
  fs.closeSync(sink);
  fs.closeSync(src);
  Object.assign(out, { calls, errors });
}

async function released() {
  const size = 32 * 2 ** 20;
  const m = pw.map(size);
  let view = m.view(0, size);
  let cbAt = 0;
  let releasedAt = 0;
  const order = [];
  m.whenViewReleased(view).then(() => {
    releasedAt = performance.now();
    order.push('released');
  });
  crypto.randomFill(view, () => {
    cbAt = performance.now();
    order.push('callback');
  });
  m.detachView(view);
  view = undefined;
  let gcRounds = 0;
  while (releasedAt === 0 && gcRounds < 500) {
    globalThis.gc();
    gcRounds++;
    await tick();
  }
  m.close();
  Object.assign(out, { order, gcRounds, callbackFirst: cbAt > 0 && cbAt <= releasedAt });
}

function listenSocket(file) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(file, () => resolve(server));
  });
}

async function specialFiles() {
  const fifo = path.join(dir, 'fifo');
  fs.writeFileSync(path.join(dir, 'regular'), 'x'.repeat(PAGE));
  spawnSyncOk('mkfifo', [fifo]);
  const sock = path.join(dir, 'sock');
  const server = await listenSocket(sock);
  const targets = { fifo, socket: sock, directory: dir, '/dev/null': '/dev/null', '/dev/zero': '/dev/zero', '/proc/self/status': '/proc/self/status', '/proc/self/maps': '/proc/self/maps' };
  const calls = {
    'mapFile private': (f) => pw.mapFile(f),
    'mapFile shared': (f) => pw.mapFile(f, { mode: 'shared' }),
    fileResidency: (f) => pw.fileResidency(f),
    'fileResidency pages': (f) => pw.fileResidency(f, { pages: true }),
    evict: (f) => pw.evict(f),
    prefetch: (f) => pw.prefetch(f),
  };
  const results = {};
  for (const [name, target] of Object.entries(targets)) {
    for (const [call, fn] of Object.entries(calls)) {
      for (const [form, arg] of [['path', target], ['Buffer', Buffer.from(target)], ['URL', pathToFileURL(target)]]) {
        results[`${call} ${name} (${form})`] = codeOf(() => fn(arg));
      }
    }
  }
  // A FIFO swapped in after the check: a shell flips a symlink between a regular file and the FIFO.
  const link = path.join(dir, 'flip');
  fs.symlinkSync(path.join(dir, 'regular'), link);
  const flipper = spawn('sh', ['-c', `while :; do ln -sfn "${fifo}" "${link}"; ln -sfn "${path.join(dir, 'regular')}" "${link}"; done`], { stdio: 'ignore' });
  const swap = {};
  const names = Object.keys(calls);
  for (let i = 0; i < rounds * 200; i++) {
    const call = names[i % names.length];
    const code = codeOf(() => calls[call](link));
    swap[code] = (swap[code] ?? 0) + 1;
    if (i % 50 === 0) await tick(); // let the shell run
  }
  const exited = new Promise((r) => flipper.once('exit', r));
  flipper.kill();
  await exited;
  server.close();
  Object.assign(out, { results, swap });
}

function spawnSyncOk(cmd, args) {
  const r = require('node:child_process').spawnSync(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} failed`);
}

function paths() {
  const real = Buffer.concat([Buffer.from(dir + '/f'), Buffer.from([0xff]), Buffer.from('f')]);
  const decoy = path.join(dir, 'f\uFFFDf');
  fs.writeFileSync(real, 'REAL'.repeat(PAGE / 4));
  fs.writeFileSync(decoy, 'DECY'.repeat(PAGE / 4));
  const read = (m) => {
    const s = Buffer.from(m.buffer.subarray(0, 4)).toString('latin1');
    m.close();
    return s;
  };
  const url = new URL(`file://${dir}/f%FFf`);
  const r = {
    'Buffer private': read(pw.mapFile(real)),
    'URL private': read(pw.mapFile(url)),
    'Buffer fileResidency size': pw.fileResidency(real).size,
  };
  const s = pw.mapFile(real, { mode: 'shared' });
  s.buffer.set(Buffer.from('WRIT'));
  s.flushSync();
  s.close();
  const u = pw.mapFile(url, { mode: 'shared' });
  u.buffer.set(Buffer.from('URLW'), 4);
  u.flushSync();
  u.close();
  pw.evict(real);
  pw.prefetch(url);
  r['real file after shared writes'] = fs.readFileSync(real).subarray(0, 8).toString('latin1');
  r['decoy after shared writes'] = fs.readFileSync(decoy).subarray(0, 8).toString('latin1');
  r['Buffer with a null byte'] = codeOf(() => pw.mapFile(Buffer.from('a\0b')));
  r['URL with an encoded slash'] = codeOf(() => pw.mapFile(new URL(`file://${dir}/a%2Fb`)));
  r['http URL'] = codeOf(() => pw.mapFile(new URL('http://example.com/x')));
  Object.assign(out, r);
}

function bounds() {
  const r = {};
  const sparse = path.join(fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/pagewise-i16-') : dir, 'sparse');
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, 2 ** 44 + 17 * PAGE); // 16 TiB and a bit: 2^32 + 17 pages
  r['fileResidency pages of 16 TiB'] = codeOf(() => pw.fileResidency(sparse, { pages: true }));
  if (pw.kind === 'native') {
    // The simulator walks its model page by page: 2^32 iterations.
    const counts = pw.fileResidency(sparse);
    r['fileResidency counts of 16 TiB'] = [counts.cached, counts.total];
  }
  const part = pw.fileResidency(sparse, { pages: true, offset: 2 ** 44, length: 17 * PAGE });
  r['fileResidency pages of a part'] = [part.pages.length, part.cached];
  fs.rmSync(path.dirname(sparse), { recursive: true, force: true });
  if (pw.kind === 'native') {
    const m = pw.map(2 ** 44 + PAGE, { noreserve: true });
    r['residency of 16 TiB + 1 page'] = codeOf(() => m.residency());
    r['residency of a part'] = m.residency({ offset: 2 ** 44 - PAGE, length: 2 * PAGE }).total;
    m.close();
    const { loadNativeAddon } = require(path.join(here, '..', '..', 'dist', 'native.js'));
    const addon = loadNativeAddon();
    const fd = fs.openSync(path.join(here, 'issue16-child.mjs'), 'r');
    r['raw fileResidency(fd, 0, 2**53-1, true)'] = codeOf(() => addon.fileResidency(fd, 0, 2 ** 53 - 1, true));
    r['raw fileResidency(fd, 0, 2**53-1, false) total'] = addon.fileResidency(fd, 0, 2 ** 53 - 1, false).total;
    fs.closeSync(fd);
    const raw = addon.map(2 ** 44 + PAGE, 3, false, -1, 0, false, true, 0);
    r['raw residency of 16 TiB + 1 page'] = codeOf(() => raw.residency(0, 2 ** 44 + PAGE));
    // The residency target is the caller's array, checked at every call: a transferred one is refused.
    const target = new Uint8Array(4);
    structuredClone(target.buffer, { transfer: [target.buffer] });
    globalThis.gc?.();
    r['raw residencyInto a transferred array'] = codeOf(() => raw.residencyInto(0, PAGE, target));
    raw.close();
    r['addon exports residencyScratch'] = 'residencyScratch' in addon;
  }
  r['backend.residencyScratch'] = pw.backend.residencyScratch === undefined ? 'absent' : 'reachable';
  Object.assign(out, r);
}

try {
  if (scenario === 'async-close') await asyncClose();
  else if (scenario === 'released') await released();
  else if (scenario === 'special-files') await specialFiles();
  else if (scenario === 'paths') paths();
  else if (scenario === 'bounds') bounds();
  else throw new Error(`unknown scenario ${scenario}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
}
console.log(JSON.stringify(out));
