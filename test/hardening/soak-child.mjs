// Soak: map / write / advise / close cycles, run as a child process:
//
//   node --expose-gc test/hardening/soak-child.mjs --cycles 1000000 [--json out.json]
//
// After a warm-up of WARMUP cycles (V8 heap, JIT, malloc arenas settle) and a
// full GC, RSS and the /proc/self/maps line count are taken as the baseline;
// after the soak and a full GC they are compared (RSS growth must stay under
// 5 MiB, the maps line count must not grow). Every 10th cycle maps a file, the
// rest anonymous memory of 1 to 16 pages, private or shared; advice rotates
// through the advice that is valid for the kind of mapping.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const pw = require('../../dist/index.js');

function argv(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const CYCLES = Number(argv('cycles', '100000'));
const JSON_OUT = argv('json', undefined);
const WARMUP = Math.min(20_000, Math.max(2_000, Math.floor(CYCLES / 10)));
const PAGE = pw.pageSize;
const MiB = 2 ** 20;

if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-soak-'));
const FILE = path.join(dir, 'soak.bin');
fs.writeFileSync(FILE, Buffer.alloc(16 * PAGE, 5));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const PRIVATE_ANON = ['dontneed', 'free', 'willneed', 'cold', 'pageout', 'normal', 'sequential', 'random'];
const SHARED = ['dontneed', 'willneed', 'cold', 'normal', 'remove'];
const FILE_ADVICE = ['dontneed', 'willneed', 'cold', 'random', 'sequential'];

const rss = () => process.memoryUsage.rss();
const mapsLines = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length;
const fileLines = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(FILE)).length;
// V8 maps heap pages and malloc arenas on its own: a few lines of noise. A leak
// of pagewise mappings would add one line per cycle (hundreds of thousands).
const LINE_NOISE = 8;
const checkpoints = [];
const tick = () => new Promise((r) => setImmediate(r));
async function collect() {
  for (let i = 0; i < 8; i++) {
    gc();
    await tick();
  }
}

let errors = 0;
const errorKinds = {};
function cycles(from, to) {
  for (let i = from; i < to; i++) {
    const file = i % 10 === 9;
    const shared = !file && i % 7 === 3;
    const pages = 1 + (i % 16);
    const m = file ? pw.mapFile(FILE, { length: pages * PAGE - (i % 3) }) : pw.map(pages * PAGE - (i % 5), { shared });
    const list = file ? FILE_ADVICE : shared ? SHARED : PRIVATE_ANON;
    try {
      if (!file) m.buffer[(i * 131) % m.length] = i & 0xff;
      m.advise(list[i % list.length], i % 2 ? undefined : { offset: PAGE * (i % pages) });
    } catch (err) {
      errors++;
      const key = `${err?.code} ${list[i % list.length]} ${file ? 'file' : shared ? 'shared' : 'private'}`;
      errorKinds[key] = (errorKinds[key] ?? 0) + 1;
    }
    m.close();
  }
}

const started = Date.now();
const BATCH = 10_000;
async function run(from, to) {
  for (let i = from; i < to; i += BATCH) {
    cycles(i, Math.min(to, i + BATCH));
    await tick(); // let finalizers of collected wrappers run
    if (to - from > 2 * BATCH && ((i - from) / BATCH) % Math.max(1, Math.floor((to - from) / BATCH / 10)) === 0) {
      checkpoints.push(mapsLines());
    }
  }
}
await run(0, WARMUP);
await collect();
const baseline = { rss: rss(), lines: mapsLines() };
await run(WARMUP, WARMUP + CYCLES);
await collect();
// Finalizers run as late as V8 decides (later on a loaded machine): wait for the condition, bounded.
let collectRounds = 0;
while (collectRounds < 300 && (fileLines() !== 0 || mapsLines() > baseline.lines + LINE_NOISE)) {
  await collect();
  collectRounds++;
}
const end = { rss: rss(), lines: mapsLines(), fileLines: fileLines(), collectRounds };

const growthMiB = (end.rss - baseline.rss) / MiB;
const failures = [];
if (errors > 0) failures.push(`${errors} cycles threw`);
if (growthMiB >= 5) failures.push(`RSS grew by ${growthMiB.toFixed(2)} MiB`);
// Mid-run, a closed mapping whose view V8 has not collected yet keeps its range reserved
// (zero pages, see docs/RELIABILITY.md): transient lines until the next GC. A leak adds
// one line per cycle (10,000 per checkpoint), so checkpoints get a looser bound than the end.
const CHECKPOINT_NOISE = 64;
const maxLines = Math.max(...checkpoints, end.lines);
if (end.lines > baseline.lines + LINE_NOISE) failures.push(`/proc/self/maps grew from ${baseline.lines} to ${end.lines} lines (after ${collectRounds} GC rounds)`);
if (maxLines > baseline.lines + CHECKPOINT_NOISE) failures.push(`/proc/self/maps reached ${maxLines} lines mid-run (baseline ${baseline.lines})`);
if (end.fileLines !== 0) failures.push(`${end.fileLines} mappings of the soak file are left`);
const result = {
  backend: pw.backend,
  cycles: CYCLES,
  warmup: WARMUP,
  baseline,
  end,
  rssGrowthMiB: Number(growthMiB.toFixed(3)),
  mapsLinesCheckpoints: checkpoints,
  mapsLineGrowth: end.lines - baseline.lines,
  mapsLinePeakGrowth: maxLines - baseline.lines,
  seconds: (Date.now() - started) / 1000,
  failures: failures.length,
  failureText: failures,
  errorKinds,
};
const out = JSON.stringify(result);
if (JSON_OUT) fs.writeFileSync(JSON_OUT, out);
console.log(out);
process.exitCode = failures.length === 0 ? 0 : 1;
