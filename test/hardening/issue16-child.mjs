// Issue 16 scenarios, each in its own process (a crash must be observed, not end
// the test run). Prints one JSON line. Backend from PAGEWISE_BACKEND.
//
//   node --expose-gc issue16-child.mjs <scenario> [rounds]
//     async-close   Node's threadpool (zlib, crypto, fs) using a view while close() runs
//     resize        resize() (moving grow, in-place shrink) while crypto writes through a view
//     resize-queued resize() (shrink, then grow) while crypto / fs writes through an old view are queued
//                   on Node's threadpool: they land in memory given up, never in the mapping's
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

// resize() while crypto.randomFill writes 64 MiB through a view: a moving grow and an in-place shrink.
async function resizeRace() {
  const waits = [];
  for (let i = 0; i < rounds * 4; i++) {
    const grow = pw.map(64 * 2 ** 20);
    const blocker = pw.map(PAGE); // makes growing in place unlikely: the range moves
    waits.push(new Promise((r) => crypto.randomFill(grow.view(0, 64 * 2 ** 20), r)));
    grow.resize(256 * 2 ** 20);
    const shrink = pw.map(64 * 2 ** 20);
    waits.push(new Promise((r) => crypto.randomFill(shrink.view(0, 64 * 2 ** 20), r)));
    shrink.resize(PAGE);
    grow.close();
    shrink.close();
    blocker.close();
  }
  const errors = (await Promise.all(waits)).filter(Boolean).length;
  Object.assign(out, { callbacks: waits.length, errors });
}

// Node's threadpool is held busy (reads from an empty FIFO) so that the writes through
// the old views deterministically run after both resizes. Shrinking with a view alive
// puts zero pages over the range given up, so the grow cannot happen in place: on the
// kernel the whole range moves and the old addresses become zero pages. The simulator
// must give the mapping memory of its own too, instead of the memory the old view holds.
async function resizeQueued() {
  const size = 64 * PAGE;
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifo = path.join(dir, 'hold');
  spawnSyncOk('mkfifo', [fifo]);
  const hold = fs.openSync(fifo, 'r+'); // O_RDWR: opening a FIFO so never blocks on Linux
  const cases = {};
  for (let round = 0; round < rounds; round++) {
    const held = [];
    for (let i = 0; i < threads; i++) held.push(new Promise((r) => fs.read(hold, Buffer.alloc(1), 0, 1, null, r)));
    const file = path.join(dir, `src${round}`);
    fs.writeFileSync(file, Buffer.alloc(size, 0xee));
    const src = fs.openSync(file, 'r');
    const ops = {
      'crypto.randomFill': (v, cb) => crypto.randomFill(v, cb),
      'fs.read (writes into the view)': (v, cb) => fs.read(src, v, 0, v.length, 0, cb),
    };
    const mappings = [];
    const done = [];
    for (const [name, op] of Object.entries(ops)) {
      const m = pw.map(size);
      m.buffer.fill(0x5a);
      const view = m.view(0, size);
      done.push(new Promise((r) => op(view, (err) => r(err ? `${name}: ${err.code ?? err.message}` : undefined))));
      m.resize(PAGE); // the queued write has not started: threads are all held
      m.resize(size);
      mappings.push([name, m]);
    }
    fs.writeSync(hold, Buffer.alloc(threads)); // let the threadpool go
    await Promise.all(held);
    const errors = (await Promise.all(done)).filter(Boolean);
    for (const [name, m] of mappings) {
      const bytes = m.view(0, size);
      let first = 0;
      while (first < PAGE && bytes[first] === 0x5a) first++;
      let rest = PAGE;
      while (rest < size && bytes[rest] === 0) rest++;
      // Kept page: 0x5a throughout; pages regrown: zeros.
      const c = (cases[name] ??= { rounds: 0, keptPageIntact: 0, regrownZero: 0, errors: [] });
      c.rounds++;
      if (first === PAGE) c.keptPageIntact++;
      if (rest === size) c.regrownZero++;
      c.errors.push(...errors.filter((e) => e.startsWith(name)));
      m.close();
    }
    fs.closeSync(src);
  }
  fs.closeSync(hold);
  Object.assign(out, { threads, cases });
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
  fs.symlinkSync(fifo, path.join(dir, 'to-fifo'));
  targets['symlink to the fifo'] = path.join(dir, 'to-fifo');
  const block = ['/dev/loop0', '/dev/sda', '/dev/vda'].find((d) => fs.existsSync(d));
  if (block) targets['block device'] = block;
  // Descriptors of the same files (a socket's own descriptor for the socket: its path cannot be opened).
  const fds = {};
  for (const [name, target] of Object.entries(targets)) {
    try {
      fds[name] = name === 'socket' ? server._handle.fd : fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      out.fdsNotOpened = [...(out.fdsNotOpened ?? []), `${name}: ${e.code}`];
    }
  }
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
      const forms = [['path', target], ['Buffer', Buffer.from(target)], ['URL', pathToFileURL(target)]];
      if (fds[name] !== undefined) forms.push(['fd', fds[name]]);
      for (const [form, arg] of forms) {
        results[`${call} ${name} (${form})`] = codeOf(() => fn(arg));
      }
    }
  }
  for (const [name, fd] of Object.entries(fds)) if (name !== 'socket') fs.closeSync(fd);
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
  flipper.kill('SIGKILL');
  await exited;
  await new Promise((r) => server.close(r)); // libuv unlinks the socket file on close
  await new Promise((r) => setTimeout(r, 50)); // an `ln` the shell had started
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
  else if (scenario === 'resize') await resizeRace();
  else if (scenario === 'resize-queued') await resizeQueued();
  else if (scenario === 'special-files') await specialFiles();
  else if (scenario === 'paths') paths();
  else if (scenario === 'bounds') bounds();
  else throw new Error(`unknown scenario ${scenario}`);
} finally {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  } catch (err) {
    console.error(`could not remove ${dir}: ${err.code}`); // a temporary directory, not a finding
  }
}
// The same expectations as issue16.test.ts, so that the full run counts a failure too.
const failures = [];
const want = (ok, what) => ok || failures.push(what);
if (scenario === 'async-close') {
  for (const [k, n] of Object.entries(out.calls)) want(n === rounds, `${k}: ${n} callbacks of ${rounds}`);
  want(Object.keys(out.calls).length === 12, `${Object.keys(out.calls).length} operations called back, 12 expected`);
  for (const e of out.errors) want(e.includes('detachView+close'), e);
} else if (scenario === 'resize') {
  want(out.errors === 0 && out.callbacks === rounds * 8, `${out.callbacks} callbacks, ${out.errors} errors`);
} else if (scenario === 'resize-queued') {
  for (const [k, c] of Object.entries(out.cases)) {
    want(c.keptPageIntact === rounds && c.regrownZero === rounds, `${k}: a write through an old view reached the resized mapping (kept page intact ${c.keptPageIntact}, regrown pages zero ${c.regrownZero} of ${rounds})`);
    want(c.errors.length === 0, `${k}: ${c.errors}`);
  }
  want(Object.keys(out.cases).length === 2, 'both operations ran');
} else if (scenario === 'released') {
  want(out.order.join() === 'callback,released', `order ${out.order}`);
} else if (scenario === 'special-files') {
  for (const [k, v] of Object.entries(out.results)) want(['ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE', 'ok'].includes(v), `${k}: ${v}`);
  for (const k of Object.keys(out.swap)) want(['ok', 'ERR_INVALID_ARG_VALUE', 'ENOENT'].includes(k), `swap: ${k}`);
} else if (scenario === 'paths') {
  want(out['Buffer private'] === 'REAL' && out['URL private'] === 'REAL', 'read the decoy');
  want(out['decoy after shared writes'] === 'DECYDECY', 'wrote the decoy');
} else if (scenario === 'bounds') {
  for (const [k, v] of Object.entries(out)) if (typeof v === 'string' && v.startsWith('NO CODE')) failures.push(`${k}: ${v}`);
}
out.failures = failures;
console.log(JSON.stringify(out));
if (failures.length > 0) process.exitCode = 1;
