// Lifetime races, run as a child process (node --expose-gc):
//
//   node --expose-gc test/hardening/races-child.mjs --rounds 300 --gc 3000 --workers 20 [--json out.json]
//
//  A. close() while populate / flush / lock are in flight, at every point:
//     immediately, after a microtask, after a macrotask, after one settles.
//  B. mappings left to the garbage collector (some with windows kept alive,
//     some with work in flight) interleaved with explicit closes.
//  C. worker threads that map memory and files, start async work, and are
//     terminated at random moments (or call process.exit themselves).
//
// How "/proc/self/maps returns to its baseline" is measured:
//  - Exactly, for file mappings: every file mapping made here maps one
//    uniquely named temporary file, so the lines naming it must drop to 0.
//  - With the noise removed, for everything: the libuv threadpool is started
//    (one populate() first), one worker is started and terminated, and the
//    garbage collector is run before the baseline is taken; afterwards the
//    total line count must be within SLACK lines of it and VmSize within
//    64 MiB (the test maps many GiB in total).
//  - Sentinels: mappings with known content that live through everything: a
//    double munmap of a range the kernel had handed out again would unmap or
//    corrupt them (or V8's heap), and the process would die or the check fail.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const pw = require('../../dist/index.js');
const DIST = require.resolve('../../dist/index.js');

function argv(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const ROUNDS = argv('rounds', 200);
const GC_MAPPINGS = argv('gc', 2000);
const WORKERS = argv('workers', 12);
const jsonAt = process.argv.indexOf('--json');
const JSON_OUT = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
const PAGE = pw.pageSize;
const MiB = 2 ** 20;
// V8's own heap regions vary from run to run (Node 22: +10 to +22 lines with and without
// workers, on the same code); a leak of the 2,250 abandoned mappings would add thousands.
const SLACK = 48;

if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-races-'));
const FILE = path.join(dir, `races-unique-${process.pid}.bin`);
fs.writeFileSync(FILE, Buffer.alloc(4 * MiB, 0x33));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const mapsText = () => fs.readFileSync('/proc/self/maps', 'utf8');
const mapsLines = () => mapsText().split('\n').filter(Boolean).length;
const fileLines = () => mapsText().split('\n').filter((l) => l.includes(FILE)).length;
const vmSize = () => Number(/VmSize:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function collect() {
  for (let i = 0; i < 6; i++) {
    gc();
    await tick();
    await sleep(2);
  }
}
// Finalizers run on later turns of the event loop, as late as V8 decides (later on a
// loaded machine): collect until `done()` holds, bounded; the checks below then fail
// with the figures if it never did.
let collectRounds = 0;
async function collectUntil(done, maxRounds = 500) {
  for (let i = 0; i < maxRounds && !done(); i++) {
    gc();
    await tick();
    await sleep(5);
    collectRounds++;
  }
}

const failures = [];
function expectSettled(outcome, what) {
  if (outcome.status === 'fulfilled') return 'resolved';
  const code = outcome.reason?.code;
  if (outcome.reason instanceof Error && code === 'ERR_MAPPING_CLOSED') return code;
  // e.g. EBUSY: flush({ invalidate: true }) racing lock() on the same pages.
  if (outcome.reason instanceof Error && /^E[A-Z]+$/.test(code) && typeof outcome.reason.syscall === 'string') return 'errno';
  failures.push(`${what}: unexpected rejection ${outcome.reason?.stack ?? outcome.reason}`);
  return 'other';
}

// A rotating xorshift so the schedule is varied but reproducible.
let seed = 0x9e3779b9;
const rand = (n) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};

const workerBody = `
  const { parentPort, workerData } = require('node:worker_threads');
  const pw = require(workerData.dist);
  const keep = [];
  for (let i = 0; i < 20; i++) {
    const m = i % 3 === 2 ? pw.mapFile(workerData.file, { mode: i % 2 ? 'shared' : 'private' }) : pw.map(64 * 1024 + i, { shared: i % 2 === 1 });
    const b = m.buffer;
    b[0] = 1;
    keep.push(m, b);
    if (i % 4 === 0) keep.push(m.populate().catch(() => {}), m.flush().catch(() => {}));
    if (i % 5 === 0) m.close();
  }
  const big = pw.map(256 * 1024 * 1024, { noreserve: true });
  keep.push(big, big.populate().catch(() => {}), big.lock({ onFault: true }).catch(() => {}));
  if (workerData.exit) process.exit(0);
  parentPort.postMessage('ready');
  setInterval(() => {}, 1000);
`;

async function runWorker(mode) {
  const w = new Worker(workerBody, { eval: true, workerData: { dist: DIST, file: FILE, exit: mode === 'exit' } });
  const exited = new Promise((r) => w.once('exit', r));
  w.on('error', (err) => failures.push(`worker error: ${err?.stack ?? err}`));
  if (mode === 'immediate') {
    await w.terminate();
  } else if (mode === 'exit') {
    await exited;
  } else {
    await new Promise((r) => w.once('message', r));
    if (mode === 'delayed') await sleep(rand(5));
    await w.terminate();
  }
  await exited;
}

// ---------------------------------------------------------------------------

const started = Date.now();
// Warm up: threadpool threads, a worker's first start, lazy allocations.
await (async () => {
  const m = pw.map(PAGE);
  await m.populate();
  await m.flush();
  await m.lock();
  m.close();
  const f = pw.mapFile(FILE);
  f.close();
  await runWorker('ready');
})();
await collect();
const baseline = { lines: mapsLines(), fileLines: fileLines(), vmSize: vmSize() };

const sentinels = [];
for (let i = 0; i < 8; i++) {
  const m = pw.map(PAGE * (i + 1), { shared: i % 2 === 1 });
  m.buffer.fill(0xa0 + i);
  sentinels.push(m);
}
const sentinelsIntact = () =>
  sentinels.every((m, i) => {
    const b = m.buffer;
    for (let j = 0; j < b.length; j += 511) if (b[j] !== 0xa0 + i) return false;
    return b[b.length - 1] === 0xa0 + i;
  });

// Each phase runs in a function: a suspended top-level await keeps the last
// values of module-level loop variables alive, which would pin a mapping.
// A. close() during populate / flush / lock.
const outcomes = { resolved: 0, ERR_MAPPING_CLOSED: 0, errno: 0, other: 0 };
let racesRun = 0;
async function phaseA() {
  for (let round = 0; round < ROUNDS; round++) {
    const file = round % 3 === 2;
    const m = file
      ? pw.mapFile(FILE, { mode: round % 2 ? 'shared' : 'private' })
      : pw.map((1 + rand(64)) * MiB + rand(PAGE), { noreserve: true, shared: round % 5 === 1 });
    const view = m.view(0, PAGE);
    const work = [];
    const n = 1 + rand(4);
    for (let k = 0; k < n; k++) {
      const which = rand(4);
      if (which === 0) work.push(m.populate({ mode: rand(2) ? 'read' : 'write' }));
      else if (which === 1) work.push(m.flush({ invalidate: rand(2) === 1 }));
      else if (which === 2) work.push(m.lock({ onFault: rand(2) === 1 }));
      else work.push(m.populate({ offset: PAGE, length: PAGE }));
    }
    // Handlers first: a rejection must never go unhandled while we wait below.
    const settledAll = Promise.all(
      work.map((p) => p.then(() => ({ status: 'fulfilled' }), (reason) => ({ status: 'rejected', reason }))),
    );
    switch (rand(5)) {
      case 0:
        break; // close right away, in the same tick
      case 1:
        await Promise.resolve();
        break;
      case 2:
        await tick();
        break;
      case 3:
        await Promise.race(work.map((p) => p.catch(() => {})));
        break;
      default:
        await sleep(rand(3));
    }
    if (rand(2)) {
      try {
        m.resize(2 * PAGE); // busy while work is in flight
      } catch (err) {
        if (err?.code !== 'ERR_MAPPING_BUSY' && err?.code !== 'ERR_OPERATION_NOT_SUPPORTED') failures.push(`resize: ${err?.stack}`);
      }
    }
    m.close();
    // resize() detached it, or close() left it attached over zero pages.
    if (view.length !== 0 && view.some((b) => b !== 0)) failures.push('close() left the mapping visible through a view (it must read zeros)');
    m.close(); // idempotent
    const settled = await settledAll;
    for (const s of settled) outcomes[expectSettled(s, `round ${round}`)]++;
    racesRun += work.length;
    if (round % 50 === 0 && !sentinelsIntact()) failures.push(`sentinels changed at round ${round}`);
  }
}

// B. Mappings left to the garbage collector, interleaved with explicit closes.
let abandoned = 0;
let closedExplicitly = 0;
async function phaseB() {
  let kept = [];
  for (let i = 0; i < GC_MAPPINGS; i++) {
    const m = i % 10 === 9 ? pw.mapFile(FILE, { length: 64 * 1024 }) : pw.map(PAGE * (1 + (i % 16)), { shared: i % 7 === 0 });
    const w = m.view(0, PAGE);
    w[0] = i & 0xff;
    if (i % 3 === 0) kept.push(w); // a window outlives its Mapping object
    if (i % 11 === 0) m.populate().catch(() => {});
    if (i % 4 === 0) {
      m.close();
      closedExplicitly++;
    } else abandoned++;
    if (i % 500 === 499) {
      gc();
      await tick();
    }
    if (kept.length > 400) kept = kept.slice(200);
  }
}

// C. Worker threads terminated with mappings and work in flight.
async function phaseC() {
  const modes = ['ready', 'delayed', 'immediate', 'exit'];
  for (let i = 0; i < WORKERS; i++) await runWorker(modes[i % modes.length]);
}

await phaseA();
await phaseB();
await phaseC();

// VmSize also grows by 64 MiB per glibc malloc arena that the threadpool or workers create: not a leak.
const settled = () => fileLines() === 0 && mapsLines() <= baseline.lines + SLACK && vmSize() <= baseline.vmSize + 64 * MiB;
await collectUntil(settled);
const after = { lines: mapsLines(), fileLines: fileLines(), vmSize: vmSize() };
const intact = sentinelsIntact();
for (const m of sentinels) m.close();
await collectUntil(settled);
const end = { lines: mapsLines(), fileLines: fileLines(), vmSize: vmSize() };

if (!intact) failures.push('sentinel mappings changed');
if (end.fileLines !== 0) failures.push(`${end.fileLines} lines of /proc/self/maps still map the test file`);
if (end.lines > baseline.lines + SLACK) failures.push(`/proc/self/maps grew from ${baseline.lines} to ${end.lines} lines`);
if (end.vmSize > baseline.vmSize + 256 * MiB) failures.push(`VmSize grew from ${baseline.vmSize} to ${end.vmSize} (after ${collectRounds} GC rounds)`);
if (outcomes.other > 0) failures.push(`${outcomes.other} unexpected outcomes`);

const result = {
  backend: pw.backend,
  rounds: ROUNDS,
  racesRun,
  outcomes,
  gcMappings: GC_MAPPINGS,
  collectRounds,
  abandoned,
  closedExplicitly,
  workers: WORKERS,
  baseline,
  after,
  end,
  sentinelsIntact: intact,
  seconds: (Date.now() - started) / 1000,
  failures: failures.length,
  failureText: failures.slice(0, 5),
};
const out = JSON.stringify(result);
if (JSON_OUT) fs.writeFileSync(JSON_OUT, out);
console.log(out);
process.exitCode = failures.length === 0 ? 0 : 1;
