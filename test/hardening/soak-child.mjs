// Soak: map / write / advise / close cycles, run as a child process:
//
//   node --expose-gc test/hardening/soak-child.mjs --cycles 1000000 [--json out.json]
//
// After a warm-up (JIT, malloc arenas, the threadpool settle) and a full GC, the
// measured cycles run in SEGMENTS equal segments, each ended by a full GC and a
// checkpoint of RSS and the /proc/self/maps line count. A leak costs the same in
// every segment; a runtime's own sizing does not scale with cycles: Node 24's V8
// doubles its young generation and keeps pooled heap pages at a moment it picks (seen
// anywhere in the first 200,000 cycles: +3 to +8 MiB RSS, +8 to +16 maps lines, once),
// and the malloc arenas of V8's GC threads grow to their high-water mark over the first
// ~100,000 cycles; after that RSS is flat over 500,000 more cycles. So the leak rate is
// the MEDIAN growth per segment (a step lands in one or two of them); it must stay under
// 1 MiB and 4 lines per segment (100,000 cycles: 12,500 a segment; measured without a
// leak: median 0.47 MiB at most, on a loaded machine; a leak of 100 bytes a cycle
// injected into the native map(): 1.37 MiB). The totals only get loose bounds, against
// gross leaks. Every 10th cycle maps a file (its lines in /proc/self/maps must return
// to 0), the rest anonymous memory of 1 to 16 pages, private or shared; advice rotates
// through the advice valid for the kind of mapping.
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
const WARMUP = Math.min(30_000, Math.max(2_000, Math.floor(CYCLES * 0.3)));
const SEGMENTS = 8;
const PAGE = pw.pageSize;
const MiB = 2 ** 20;
// Per-segment median limits (the leak rate) and total limits (gross leaks; the
// largest one-time sizing step seen on any runtime is +8 MiB and +16 lines).
const SEGMENT_RSS_MIB = 1;
const SEGMENT_LINES = 4; // V8 maps and unmaps heap pages: Node 26 moved by -8 to +5 lines a segment
const TOTAL_RSS_MIB = 16;
const TOTAL_LINES = 32;
// Mid-run (no GC first), closed mappings whose views V8 has not collected yet still
// hold their zero pages (see docs/RELIABILITY.md): transient lines. A leak adds one
// line per cycle, thousands per sample.
const PEAK_LINES = 96;

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
const samples = [];
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
    samples.push(mapsLines());
  }
}
// Finalizers run as late as V8 decides (later on a loaded machine): wait, bounded, until
// no mapping of the soak file is left (exactly measurable), then take the checkpoint.
async function checkpoint() {
  await collect();
  let rounds = 0;
  while (rounds < 300 && fileLines() !== 0) {
    await collect();
    rounds++;
  }
  return { rss: rss(), lines: mapsLines(), fileLines: fileLines(), collectRounds: rounds };
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

await run(0, WARMUP);
const baseline = await checkpoint();
const checkpoints = [baseline];
for (let k = 0; k < SEGMENTS; k++) {
  const from = WARMUP + Math.floor((k * CYCLES) / SEGMENTS);
  await run(from, WARMUP + Math.floor(((k + 1) * CYCLES) / SEGMENTS));
  checkpoints.push(await checkpoint());
}
const end = checkpoints[checkpoints.length - 1];
const rssSteps = checkpoints.slice(1).map((c, k) => (c.rss - checkpoints[k].rss) / MiB);
const lineSteps = checkpoints.slice(1).map((c, k) => c.lines - checkpoints[k].lines);
const segmentRssMiB = median(rssSteps);
const segmentLines = median(lineSteps);
const growthMiB = (end.rss - baseline.rss) / MiB;
const peakLines = Math.max(...samples, ...checkpoints.map((c) => c.lines));

const failures = [];
if (errors > 0) failures.push(`${errors} cycles threw`);
const perSegment = `${(CYCLES / SEGMENTS).toLocaleString('en')} cycles`;
if (segmentRssMiB >= SEGMENT_RSS_MIB) failures.push(`RSS grew by ${segmentRssMiB.toFixed(3)} MiB per ${perSegment} (median; steps ${rssSteps.map((x) => x.toFixed(2)).join(' ')})`);
if (segmentLines > SEGMENT_LINES) failures.push(`/proc/self/maps grew by ${segmentLines} lines per ${perSegment} (median; steps ${lineSteps.join(' ')})`);
if (growthMiB >= TOTAL_RSS_MIB) failures.push(`RSS grew by ${growthMiB.toFixed(2)} MiB in total`);
if (end.lines > baseline.lines + TOTAL_LINES) failures.push(`/proc/self/maps grew from ${baseline.lines} to ${end.lines} lines`);
if (peakLines > baseline.lines + PEAK_LINES) failures.push(`/proc/self/maps reached ${peakLines} lines mid-run (baseline ${baseline.lines})`);
if (end.fileLines !== 0) failures.push(`${end.fileLines} mappings of the soak file are left (after ${end.collectRounds} GC rounds)`);
const result = {
  backend: pw.backend,
  runtime: process.versions.node,
  cycles: CYCLES,
  warmup: WARMUP,
  segments: SEGMENTS,
  baseline,
  end,
  rssGrowthMiB: Number(growthMiB.toFixed(3)),
  segmentRssGrowthMiB: Number(segmentRssMiB.toFixed(3)),
  segmentLineGrowth: segmentLines,
  rssSteps: rssSteps.map((x) => Number(x.toFixed(3))),
  lineSteps,
  mapsLineGrowth: end.lines - baseline.lines,
  mapsLinePeakGrowth: peakLines - baseline.lines,
  seconds: (Date.now() - started) / 1000,
  failures: failures.length,
  failureText: failures,
  errorKinds,
};
const out = JSON.stringify(result);
if (JSON_OUT) fs.writeFileSync(JSON_OUT, out);
console.log(out);
process.exitCode = failures.length === 0 ? 0 : 1;
