// How long from a process approaching its memory limit to its volatile memory being purged?
//
// A child in a fresh cgroup v1 memory cgroup (limit 256 MiB) holds 96 MiB of unpinned arena
// spans (MADV_FREE'd: still charged to the cgroup), then allocates fresh memory 1 MiB per
// event-loop turn, reading memory.usage_in_bytes after each step. A watchMemoryPressure()
// listener purges the unpinned spans on 'critical' (VolatileArena.handlePressure when the
// arena has it, else the public arena.purge(): MADV_PAGEOUT, DONTNEED for the rest).
// Measured per run, from the monotonic clock:
//   wake -> delivery     the native thread's poll() return to the JavaScript listener
//   approach -> delivery the first step that found usage over the threshold to the listener
//   delivery -> purged   the purge itself
// plus the usage just before and after the purge. Standalone (needs root-ish cgroup access):
//   node bench/pressure-delay.mjs [runs=10]   (VERBOSE=1 prints every run)
// Not part of bench/run.mjs: it needs a writable memory cgroup and takes a while.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const LIMIT_MIB = 256;
const UNPINNED_MIB = 96;
const now = () => Number(process.hrtime.bigint()) / 1e6;

async function child() {
  const pagewise = require(path.join(ROOT, 'dist', 'index.js'));
  const { ownCgroups } = require(path.join(ROOT, 'dist', 'cgroup.js'));
  const usageFile = path.join(ownCgroups().v1, 'memory.usage_in_bytes');
  const limit = Number(fs.readFileSync(path.join(ownCgroups().v1, 'memory.limit_in_bytes'), 'utf8'));
  const threshold = limit - Math.max(8 * MiB, Math.floor(limit / 10)); // the watcher's default
  const usage = () => Number(fs.readFileSync(usageFile, 'utf8'));
  // 'arena': unpinned VolatileArena spans; 'mapping': one Mapping MADV_FREE'd, purged with
  // MADV_DONTNEED (what a critical handler costs without the arena's PAGEOUT + residency pass).
  const mode = process.argv[3];
  let purge;
  let handler;
  if (mode === 'mapping') {
    const m = pagewise.map(UNPINNED_MIB * MiB);
    m.buffer.fill(7);
    m.advise('free');
    purge = () => m.advise('dontneed');
    handler = 'Mapping.advise(dontneed)';
  } else {
    const arena = new pagewise.VolatileArena({ size: 2 * UNPINNED_MIB * MiB, decayMs: -1 });
    const spans = [];
    for (let i = 0; i < UNPINNED_MIB; i++) {
      const b = arena.alloc(MiB);
      b.bytes.fill(i + 1);
      spans.push(b);
    }
    for (const b of spans) b.unpin();
    if (typeof arena.handlePressure === 'function') {
      purge = () => arena.handlePressure('critical');
      handler = 'VolatileArena.handlePressure(critical)';
    } else {
      purge = () => arena.purge();
      handler = 'VolatileArena.purge()';
    }
  }
  const r = { threshold, limit, usageAtStart: usage() };
  let done = false;
  const watcher = pagewise.watchMemoryPressure({}, (e) => {
    if (e.level !== 'critical' || r.deliveredAt !== undefined) return;
    r.deliveredAt = now();
    r.detectedAt = e.detectedAt;
    r.source = e.source;
    r.usageBeforePurge = usage();
    purge();
    r.handler = handler;
    r.purgedAt = now();
    r.usageAfterPurge = usage();
    done = true;
  });
  r.sources = watcher.sources.map((s) => s.kind);
  const held = [];
  await new Promise((resolve) => {
    const step = () => {
      held.push(Buffer.alloc(MiB, 1));
      const u = usage();
      if (r.approachAt === undefined && u >= threshold) r.approachAt = now();
      if (done || u >= limit - 2 * MiB || held.length > LIMIT_MIB) return resolve();
      setImmediate(step);
    };
    step();
  });
  r.freshMiB = held.length;
  watcher.close();
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function runOnce(parent, mode) {
  const dir = path.join(parent, `pressure-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(LIMIT_MIB * MiB));
    const c = spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs'), process.execPath, fileURLToPath(import.meta.url), 'child', mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    const [code, signal] = await new Promise((resolve) => c.on('close', (cd, s) => resolve([cd, s])));
    const line = out.split('\n').find((l) => l.startsWith('{'));
    return { code, signal, ...(line ? JSON.parse(line) : {}) };
  } finally {
    for (let i = 0; i < 100; i++) {
      try {
        fs.rmdirSync(dir);
        break;
      } catch {
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  }
}

function stats(values, unit = 'ms') {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return 'n/a';
  const med = v[Math.floor(v.length / 2)];
  return `median ${med.toFixed(2)} ${unit}, min ${v[0].toFixed(2)}, max ${v.at(-1).toFixed(2)} (n=${v.length})`;
}

async function main() {
  const { ownCgroups } = require(path.join(ROOT, 'dist', 'cgroup.js'));
  const parent = ownCgroups().v1;
  if (parent === undefined) {
    console.log('pressure-delay: no cgroup v1 memory controller here: nothing measured');
    return;
  }
  const runs = Number(process.argv[2] ?? 10);
  for (const mode of ['arena', 'mapping']) await measure(parent, mode, runs);
}

async function measure(parent, mode, runs) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const r = await runOnce(parent, mode);
    results.push(r);
    if (process.env.VERBOSE) console.log(JSON.stringify(r));
  }
  const ok = results.filter((r) => r.deliveredAt !== undefined && r.approachAt !== undefined);
  console.log(`\n${process.version}, ${runs} runs, limit ${LIMIT_MIB} MiB, ${UNPINNED_MIB} MiB unpinned; handler ${ok[0]?.handler ?? '?'}`);
  console.log(`  critical event delivered in ${ok.length}/${runs} runs; survived ${results.filter((r) => r.code === 0).length}/${runs}`);
  console.log(`  wake -> delivery:     ${stats(ok.map((r) => r.deliveredAt - r.detectedAt))}`);
  console.log(`  approach -> delivery: ${stats(ok.map((r) => r.deliveredAt - r.approachAt))}`);
  console.log(`  delivery -> purged:   ${stats(ok.map((r) => r.purgedAt - r.deliveredAt))}`);
  console.log(`  approach -> purged:   ${stats(ok.map((r) => r.purgedAt - r.approachAt))}`);
  console.log(`  cgroup usage before purge: ${stats(ok.map((r) => r.usageBeforePurge / MiB), 'MiB')}`);
  console.log(`  cgroup usage after purge:  ${stats(ok.map((r) => r.usageAfterPurge / MiB), 'MiB')}`);
}

if (process.argv[2] === 'child') await child();
else await main();
