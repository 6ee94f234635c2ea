// Arena soak (issue 24, item 1): the alloc / read bytes / unpin+pin / free loop of the
// issue on `new VolatileArena({ size: 64 MiB, ...options })`, in a child with --expose-gc:
//
//   node --expose-gc arena-soak-child.mjs --cycles 1000000 [--options '{"quarantine":true}']
//
// Memory is the process's anonymous memory less LazyFree (smaps_rollup): what the kernel
// cannot take back; the arena's own freed spans are MADV_FREE'd after freeDelayMs, so they
// do not count once the checkpoint waited for that. As in soak-child.mjs, a warm-up first
// (JIT, V8 growing its young generation to its high-water mark: +30 MiB of committed heap
// in this loop, once), then SEGMENTS equal segments, each ended by full collections and a
// checkpoint. A leak costs every segment the same (arena-soak.test.ts judges the
// segments); the total after the warm-up is reported against the bound (< 8 MiB per
// 1,000,000 cycles).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { VolatileArena, pagewise: pw } = require('../../dist/index.js');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const CYCLES = Number(arg('cycles', '100000'));
const OPTIONS = JSON.parse(arg('options', '{}'));
const WARMUP = Math.max(20_000, Math.floor(CYCLES * 0.1));
const SEGMENTS = 8;
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

const kib = (re, text) => Number(re.exec(text)?.[1] ?? 0);
const held = () => {
  const t = fs.readFileSync('/proc/self/smaps_rollup', 'utf8');
  // Less V8's own heap: it sizes its generations in one-time steps (Node 24: +64 MiB over a
  // run), which would hide or fake a leak of memory outside the heap, where the issue saw it.
  return (kib(/\nAnonymous:\s+(\d+)/, t) - kib(/\nLazyFree:\s+(\d+)/, t)) / 1024 - process.memoryUsage().heapTotal / 2 ** 20;
};
const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function checkpoint() {
  for (let k = 0; k < 4; k++) {
    globalThis.gc();
    await tick();
  }
  // Spans released by those collections are freed now: freeDelayMs (50 ms) later they are
  // MADV_FREE'd (LazyFree). Read after that, with no collection in between.
  await sleep(150);
  return held();
}

const arena = new VolatileArena({ size: 64 * 2 ** 20, ...OPTIONS });
let i = 0;
async function run(n) {
  for (const end = i + n; i < end; i++) {
    const b = arena.alloc(1 + (i % 5) * 3000);
    b.bytes[0] = 1;
    if (i & 1) {
      b.unpin();
      b.pin();
    }
    b.free();
    if ((i & 1023) === 0) await tick();
  }
}

const start = await checkpoint();
await run(WARMUP);
const afterWarmup = await checkpoint();
const heapAfterWarmup = process.memoryUsage().heapTotal;
const steps = [];
let last = afterWarmup;
const per = Math.floor(CYCLES / SEGMENTS);
for (let s = 0; s < SEGMENTS; s++) {
  await run(per);
  const now = await checkpoint();
  steps.push(Math.round((now - last) * 100) / 100);
  last = now;
}
const st = arena.stats;
arena.close();
console.log(
  JSON.stringify({
    backend: pw.kind,
    options: OPTIONS,
    cycles: per * SEGMENTS,
    warmup: WARMUP,
    startMiB: Math.round(start * 10) / 10,
    warmupGrowthMiB: Math.round((afterWarmup - start) * 10) / 10,
    growthMiB: Math.round((last - afterWarmup) * 100) / 100,
    steps,
    heapTotalGrowthMiB: Math.round(((process.memoryUsage().heapTotal - heapAfterWarmup) / 2 ** 20) * 10) / 10,
    regions: st.regions,
    quarantinedBytes: st.quarantinedBytes,
    heldBytes: st.heldBytes,
  }),
);
