// Q11. Volatile memory and Node's I/O (issue 22): how long a released span takes to become
// volatile when the only signal is the collection of its views, with and without a view
// still referenced; how many bytes stay non-volatile because something references them in
// a service scenario (slow HTTP clients); and, with --full, the arena soak of issue 24 at
// its full size (1,000,000 cycles, default options and quarantine: true).
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { fmtMiB, isMain, loadPagewise, main, median, MiB, quantile, ROOT } from './lib/common.mjs';

export const meta = {
  id: 11,
  title: 'Volatile memory under Node I/O: release → volatile, bytes held by live references',
  question:
    'Time from release() to volatile for a span whose view nothing references (the engine collects it on its own schedule, in a service loop that allocates) and for one a slow reader holds for 300 ms; ' +
    'with a moderate pressure signal 10 ms after the release; bytes held non-volatile by live references in an HTTP service with slow clients; the arena soak of issue 24 (--full).',
};

/** How long one buffer is watched: past it, it counts as "not volatile yet". */
const LIMIT_MS = 5000;
const turn = () => new Promise((r) => setImmediate(r));

/** A service-like loop: every turn allocates some short-lived JavaScript garbage (as request handling does). */
function garbage() {
  const xs = [];
  for (let i = 0; i < 200; i++) xs.push({ i, s: `request ${i}`, a: [i, i + 1, i + 2] });
  return xs.length;
}

/** Release → volatile for `n` buffers; `hold(view)` may keep the view referenced for a while. */
async function releaseToVolatile(pw, n, { holdMs = 0, pressureAfterMs = -1 } = {}) {
  const arena = new pw.VolatileArena({ size: 64 * MiB, unpinDelayMs: 50 });
  const times = [];
  let late = 0;
  for (let k = 0; k < n; k++) {
    const b = arena.alloc(256 * 1024);
    ((bytes) => {
      bytes.fill(k & 0xff);
      if (holdMs > 0) setTimeout(() => bytes.length, holdMs); // a slow reader keeps the view until then
    })(b.bytes);
    b.unpin();
    const t0 = performance.now();
    let pressed = false;
    while (b.state !== 'volatile') {
      if (!pressed && pressureAfterMs >= 0 && performance.now() - t0 >= pressureAfterMs) {
        arena.handlePressure('moderate');
        pressed = true;
      }
      garbage();
      await turn();
      if (performance.now() - t0 > LIMIT_MS) break;
    }
    times.push(performance.now() - t0);
    if (b.state !== 'volatile') late++;
    b.free();
  }
  const s = arena.stats;
  arena.close();
  return { times, late, heldBuffers: s.heldBuffers, collectionsRequested: s.collectionsRequested };
}

/** An HTTP service with a VolatileCache and slow clients; samples the bytes held back by live references. */
async function service(pw, { seconds, bodyMiB }) {
  const arena = new pw.VolatileArena({ size: 512 * MiB });
  const cache = new pw.VolatileCache({ budget: 256 * MiB, arena });
  const body = (k) => new Uint8Array(bodyMiB * MiB).fill(k & 0xff);
  const server = http.createServer((req, res) => {
    const h = cache.get(Number(req.url.slice(1)), body);
    res.end(h.bytes);
    pw.releaseAfter(res, h);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const samples = [];
  const sampler = setInterval(() => {
    const s = arena.stats;
    samples.push({ held: s.heldBytes, quarantined: s.quarantinedBytes, unpinned: s.unpinnedBytes, volatile: s.volatileBytes });
  }, 20);
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const client = async (id) => {
    while (performance.now() < end) {
      const slow = id % 2 === 0;
      await new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET /${(id * 7 + done) % 16} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
        if (slow) {
          socket.pause();
          setTimeout(() => socket.resume(), 150 + (done % 5) * 60);
        }
        socket.on('data', () => {});
        socket.on('end', resolve);
        socket.on('error', resolve);
      });
      done++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => client(i)));
  clearInterval(sampler);
  server.close();
  const st = arena.stats;
  cache.close();
  arena.close();
  const held = samples.map((x) => x.held + x.quarantined);
  return { requests: done, samples: samples.length, heldMax: Math.max(...held), heldMean: held.reduce((a, b) => a + b, 0) / held.length, volatileMean: samples.reduce((a, x) => a + x.volatile, 0) / samples.length, stats: st };
}

function soak(options, cycles) {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(ROOT, 'test', 'hardening', 'arena-soak-child.mjs'), '--cycles', String(cycles), '--options', JSON.stringify(options)], {
    encoding: 'utf8',
    env: { ...process.env, PAGEWISE_BACKEND: 'native' },
    timeout: 1_800_000,
  });
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

export async function run({ full = false } = {}) {
  const pw = await loadPagewise();
  const rows = [];
  const notes = [];
  const raw = {};
  const n = full ? 20 : 6;
  const fmt = (r) => `median ${median(r.times).toFixed(1)} ms, p90 ${quantile(r.times, 0.9).toFixed(1)} ms; ${r.late} of ${r.times.length} not volatile after ${LIMIT_MS} ms`;
  const free = await releaseToVolatile(pw, n);
  const held = await releaseToVolatile(pw, n, { holdMs: 300 });
  const pressed = await releaseToVolatile(pw, n, { pressureAfterMs: 10 });
  raw.releaseToVolatile = { free, held, pressed };
  rows.push(
    { variant: 'release → volatile, view unreferenced (no pressure signal)', median: fmt(free), note: `unpinDelayMs 50; the loop allocates short-lived objects every turn; ${free.heldBuffers} times held back at the due time, then the engine\'s collection or the one the arena asks for while anything is held (at most one a second and 50× its cost)` },
    { variant: 'release → volatile, a slow reader holds the view 300 ms', median: fmt(held), note: 'held (ordinary memory) while referenced, then volatile after the next collection' },
    { variant: 'release → volatile, view unreferenced, moderate pressure after 10 ms', median: fmt(pressed), note: `the arena requested ${pressed.collectionsRequested} collections (at most one a second, plus one in the next turn)` },
  );
  const svc = await service(pw, { seconds: full ? 10 : 4, bodyMiB: 4 });
  raw.service = svc;
  rows.push({
    variant: 'HTTP service, 4 MiB bodies, 8 clients (half pause 150–390 ms), releaseAfter(res, h)',
    median: `held by live references: mean ${fmtMiB(svc.heldMean)}, max ${fmtMiB(svc.heldMax)}`,
    note: `${svc.requests} requests; sampled every 20 ms (${svc.samples} samples): held = heldBytes + quarantinedBytes; volatile mean ${fmtMiB(svc.volatileMean)}; heldBuffers ${svc.stats.heldBuffers}`,
  });
  if (full) {
    for (const options of [{}, { quarantine: true }]) {
      const s = soak(options, 1_000_000);
      raw[`soak ${JSON.stringify(options)}`] = s;
      rows.push({
        variant: `arena soak (issue 24): 1,000,000 alloc / bytes / unpin+pin / free cycles, ${JSON.stringify(options)}`,
        median: `${s.growthMiB >= 0 ? '+' : ''}${s.growthMiB} MiB after warm-up`,
        target: '< 8 MiB',
        met: s.growthMiB < 8,
        note: `anonymous less LazyFree, 8 segments: ${s.steps.join(', ')} MiB; warm-up (${s.warmup} cycles) +${s.warmupGrowthMiB} MiB (V8 sizing its young generation)`,
      });
    }
  }
  notes.push('Loopback only; the machine may be loaded (ratios and orders of magnitude, not absolute figures). No --expose-gc: collections are V8\'s own, plus those the arena requests while spans are held (at most one a second, and 50 × the last one\'s duration, backed off while they free nothing) and on pressure.');
  return { ...meta, rows, notes, raw };
}

if (isMain(import.meta.url)) await main(meta, run);
