// Q10. VolatileCache in place of lru-cache: memory of many small entries (the kernel's
// figures), the hit path for small, medium and large values, fetch() deduplication.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { check, fmtMiB, fmtNs, fmtRatio, interleave, isMain, loadPagewise, main, median, parseArgs } from './lib/common.mjs';

export const meta = {
  id: 10,
  title: 'VolatileCache vs lru-cache: small-entry memory, hits of every size, fetch()',
  question:
    '10,000 × 200 B entries: effective memory ≤ 1.0× and RSS ≤ 1.5× of lru-cache (Buffers, maxSize); hit-dominated workload (skewed keys, all resident) ≥ 0.5× of lru-cache for 200 B, 16 KiB and 256 KiB values; 100 concurrent fetch() of one missing key run fetchMethod once.',
};

const require = createRequire(import.meta.url);
const self = fileURLToPath(import.meta.url);

/** The kernel's figures for this process (/proc/self/smaps_rollup), in bytes. */
function rollup() {
  const text = fs.readFileSync('/proc/self/smaps_rollup', 'utf8');
  const kb = (name) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0) * 1024;
  const rss = kb('Rss');
  const lazyFree = kb('LazyFree');
  // Effective: what the kernel cannot take back without swap (anonymous, not lazily freed).
  return { rss, lazyFree, effective: kb('Anonymous') - lazyFree };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- memory: one child per variant ----
const MEM_ENTRIES = 10_000;
const MEM_SIZE = 200;

async function memoryChild(variant) {
  const pw = await loadPagewise();
  const { LRUCache } = require('lru-cache');
  const value = (i) => {
    const b = Buffer.alloc(MEM_SIZE, i & 0xff);
    b.writeUInt32LE(i, 0);
    return b;
  };
  let keep;
  // Warm up the code paths with a throwaway cache, then measure from a settled baseline.
  if (variant.startsWith('volatile')) {
    const w = new pw.VolatileCache({ budget: 1 << 20 });
    for (let i = 0; i < 100; i++) w.set(`w${i}`, value(i));
    w.close();
  }
  globalThis.gc();
  await sleep(100);
  const before = rollup();
  if (variant === 'lru-cache-strings') {
    keep = new LRUCache({ max: MEM_ENTRIES * 2 });
    for (let i = 0; i < MEM_ENTRIES; i++) keep.set(`key:${i}`, value(i).toString('latin1'));
  } else if (variant === 'lru-cache-buffers') {
    keep = new LRUCache({ maxSize: 64 << 20, sizeCalculation: (v) => v.length });
    for (let i = 0; i < MEM_ENTRIES; i++) keep.set(`key:${i}`, value(i));
  } else if (variant === 'volatile-scratch') {
    // The cache copies values in, so a producer may render every value into one buffer.
    keep = new pw.VolatileCache({ name: 'bench-small' });
    const scratch = Buffer.alloc(MEM_SIZE);
    for (let i = 0; i < MEM_ENTRIES; i++) {
      scratch.fill(i & 0xff);
      scratch.writeUInt32LE(i, 0);
      keep.set(`key:${i}`, scratch);
    }
  } else {
    keep = new pw.VolatileCache({ name: 'bench-small' });
    for (let i = 0; i < MEM_ENTRIES; i++) keep.set(`key:${i}`, value(i));
  }
  await sleep(300); // as the issue measured: 300 ms after filling (the cache's entries have gone volatile by then)
  globalThis.gc();
  const after = rollup();
  const stats = variant.startsWith('volatile') ? keep.stats : undefined;
  // Every value still readable and right (volatile: unless the kernel dropped it).
  let ok = 0;
  for (let i = 0; i < MEM_ENTRIES; i++) {
    if (variant.startsWith('volatile')) {
      const h = keep.get(`key:${i}`);
      if (h !== undefined) {
        const b = h.bytes;
        if ((b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0 === i) ok++;
        h.release();
      }
    } else ok++;
  }
  process.stdout.write(JSON.stringify({ rss: after.rss - before.rss, effective: after.effective - before.effective, lazyFree: after.lazyFree - before.lazyFree, ok, stats: stats && { bytes: stats.bytes, valueBytes: stats.valueBytes, slabPages: stats.slabPages } }));
}

function spawnMemory(variant) {
  const r = spawnSync(process.execPath, ['--expose-gc', self, '--child', 'memory', variant], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`memory child ${variant} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- hits: one child per size, VolatileCache and lru-cache interleaved in it ----
const HIT_SIZES = [
  { size: 200, keys: 10_000 },
  { size: 16 * 1024, keys: 1_000 },
  { size: 256 * 1024, keys: 128 },
];

async function hitsChild(sizeArg, opsArg, roundsArg) {
  const size = Number(sizeArg);
  const ops = Number(opsArg);
  const rounds = Number(roundsArg);
  const { keys } = HIT_SIZES.find((s) => s.size === size);
  const pw = await loadPagewise();
  const { LRUCache } = require('lru-cache');
  const budget = 2 * keys * Math.max(size, 4096);
  const cache = new pw.VolatileCache({ budget, name: 'bench-hits' });
  const lru = new LRUCache({ maxSize: budget, sizeCalculation: (v) => v.length });
  for (let k = 0; k < keys; k++) {
    const b = Buffer.alloc(size, k & 0xff);
    cache.set(k, b);
    lru.set(k, Buffer.from(b));
  }
  // Skewed keys: 80% of requests on 20% of the keys (deterministic).
  const seq = new Uint32Array(ops);
  let x = 12345;
  for (let i = 0; i < ops; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const hot = x % 10 < 8;
    seq[i] = hot ? (x >>> 8) % Math.max(1, Math.floor(keys / 5)) : (x >>> 8) % keys;
  }
  let sink = 0;
  const volatile = () => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) {
      const h = cache.get(seq[i]);
      sink += h.bytes[7];
      h.release();
    }
    return Number(process.hrtime.bigint() - t) / ops;
  };
  const lruCache = () => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) sink += lru.get(seq[i])[7];
    return Number(process.hrtime.bigint() - t) / ops;
  };
  // A service yields to the event loop between requests: so do the rounds (the cache's timers run).
  const s = await interleave(
    [
      { name: 'volatile', fn: async () => { const ns = volatile(); await sleep(1); return ns; } },
      { name: 'lru-cache', fn: async () => { const ns = lruCache(); await sleep(1); return ns; } },
    ],
    rounds,
  );
  const st = cache.stats;
  process.stdout.write(JSON.stringify({ samples: s, hits: st.hits, misses: st.misses, purged: st.purged, softPins: st.arena.softPins, pins: st.arena.pins, sink: sink > 0 }));
  cache.close();
}

function spawnHits(size, ops, rounds) {
  const r = spawnSync(process.execPath, [self, '--child', 'hits', String(size), String(ops), String(rounds)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`hits child ${size} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- fetch(): concurrent misses of one key ----
async function fetchDedupe(pw) {
  let calls = 0;
  const cache = new pw.VolatileCache({
    name: 'bench-fetch',
    fetchMethod: async (key) => {
      calls++;
      await sleep(20);
      return Buffer.alloc(64 * 1024, 7);
    },
  });
  const handles = await Promise.all(Array.from({ length: 100 }, () => cache.fetch('page')));
  const right = handles.filter((h) => h.bytes.length === 64 * 1024 && h.bytes.every((b) => b === 7)).length;
  for (const h of handles) h.release();
  cache.close();
  return { calls, right };
}

async function run({ full }) {
  const pw = await loadPagewise();
  const rows = [];
  const notes = [];
  // Memory.
  const variants = ['lru-cache-strings', 'lru-cache-buffers', 'volatile', 'volatile-scratch'];
  // Fresh processes, interleaved; the median run of each variant (by effective memory).
  const memRuns = Object.fromEntries(variants.map((v) => [v, []]));
  await interleave(variants.map((v) => ({ name: v, fn: () => { memRuns[v].push(spawnMemory(v)); return 0; } })), full ? 7 : 5);
  const mem = {};
  for (const v of variants) {
    const runs = [...memRuns[v]].sort((a, b) => a.effective - b.effective);
    mem[v] = { ...runs[runs.length >> 1], runs: runs.map((r) => +(r.effective / 1048576).toFixed(1)) };
  }
  const base = mem['lru-cache-buffers'];
  const names = {
    'lru-cache-strings': 'lru-cache, string values',
    'lru-cache-buffers': 'lru-cache, Buffer values, maxSize',
    volatile: 'VolatileCache, defaults, set(key, a fresh Buffer per value)',
    'volatile-scratch': 'VolatileCache, defaults, set(key, one Buffer reused for every value)',
  };
  for (const v of variants) {
    const m = mem[v];
    const effRatio = m.effective / base.effective;
    const rssRatio = m.rss / base.rss;
    const targeted = v.startsWith('volatile');
    const eff = check(effRatio, 'le', 1.0);
    const rss = check(rssRatio, 'le', 1.5);
    rows.push({
      variant: `${MEM_ENTRIES.toLocaleString('en')} × ${MEM_SIZE} B: ${names[v]}`,
      median: `RSS +${(m.rss / 1048576).toFixed(1)} MiB, effective +${(m.effective / 1048576).toFixed(1)} MiB`,
      ratio: `effective ${fmtRatio(effRatio)}, RSS ${fmtRatio(rssRatio)} of lru-cache (Buffers)`,
      ...(targeted ? { target: 'effective ≤ 1.0×, RSS ≤ 1.5×', met: eff.met && rss.met } : {}),
      note: `median of ${m.runs.length} runs (effective MiB: ${m.runs.join(', ')}); LazyFree +${(m.lazyFree / 1048576).toFixed(1)} MiB; ${m.ok} values read back right${m.stats ? `; cache counts ${m.stats.bytes} B occupied (${m.stats.valueBytes} B of values) on ${m.stats.slabPages} slab pages` : ''}`,
    });
  }
  // Hits.
  const ops = full ? 200_000 : 100_000;
  const rounds = full ? 31 : 21;
  // Several processes: both caches' times move together within a process, but the ratio
  // differs from one process to the next by more than within one (0.47–0.64 for the same
  // code here), with the memory each process was given. The rows pool every process's pairs.
  const processes = full ? 3 : 1;
  const hits = {};
  for (const { size, keys } of HIT_SIZES) {
    const runs = Array.from({ length: processes }, () => spawnHits(size, size >= 256 * 1024 ? ops / 2 : ops, rounds));
    hits[size] = runs;
    const volatileNs = runs.flatMap((r) => r.samples.volatile);
    const lruNs = runs.flatMap((r) => r.samples['lru-cache']);
    const v = median(volatileNs);
    const l = median(lruNs);
    // Rounds run A B B A …: each VolatileCache round is paired with the lru-cache round next to
    // it in time (same load on this shared machine), and the ratio is the median of the pairs.
    const pairsOf = (r) => r.samples.volatile.map((ns, i) => r.samples['lru-cache'][i] / ns);
    const pairs = runs.flatMap(pairsOf);
    const ratio = median(pairs);
    const c = check(ratio, 'ge', 0.5);
    const r = runs[0];
    rows.push({
      variant: `hit: get() + bytes + release(), ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} values, ${keys.toLocaleString('en')} keys`,
      median: `${fmtNs(v)} (lru-cache get() ${fmtNs(l)})`,
      ratio: `${fmtRatio(ratio)} of lru-cache (median of ${pairs.length} paired rounds; ratio of medians ${fmtRatio(l / v)})`,
      ...c,
      note: `80% of gets on 20% of the keys, all resident; ${rounds} interleaved rounds in each of ${processes} process${processes === 1 ? '' : 'es'}${processes === 1 ? '' : ` (their own medians: ${runs.map((x) => fmtRatio(median(pairsOf(x)))).join(', ')})`}; first process: hits ${r.hits}, misses ${r.misses}, purged ${r.purged}, arena pins ${r.pins} (soft ${r.softPins}): the rest never left the cache's hot set`,
    });
  }
  // fetch().
  const f = await fetchDedupe(pw);
  rows.push({
    variant: '100 concurrent fetch() of one missing key (64 KiB value, fetchMethod takes 20 ms)',
    median: `fetchMethod ran ${f.calls}×`,
    ratio: `${f.right}/100 handles with the right bytes`,
    target: 'fetchMethod once',
    met: f.calls === 1 && f.right === 100,
  });
  notes.push(
    'The fresh-Buffer row holds ~2 MiB more than the reused-Buffer row: the 10,000 200-byte Buffers the caller made were copied and freed, and glibc keeps freed small blocks in its heap (counted as Anonymous). lru-cache keeps those Buffers as its values.',
    `Memory: one fresh process per variant (--expose-gc), figures from /proc/self/smaps_rollup: deltas between a baseline after gc() and 300 ms after filling (then gc()). Effective = Anonymous − LazyFree (what the kernel cannot take back without swap). Keys are 'key:<i>' strings in every variant.`,
    `Hits: the same deterministic key sequence for both caches; ${ops.toLocaleString('en')} gets per round (256 KiB: half), rounds interleaved A B B A …, the loop yields 1 ms between rounds (the cache's timers run, as between a service's requests). Medians of the per-op means.`,
  );
  return { ...meta, rows, notes, params: { ops, rounds }, raw: { mem, hits, fetch: f } };
}

const args = parseArgs();
if (isMain(import.meta.url) && args.child === 'memory') await memoryChild(args.rest[0]);
else if (isMain(import.meta.url) && args.child === 'hits') await hitsChild(...args.rest);
else if (isMain(import.meta.url)) await main(meta, run);
