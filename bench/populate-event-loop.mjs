// Q6. Populate off the event loop: event-loop delay (perf_hooks
// monitorEventLoopDelay, 1 ms resolution) while a cold 1 GiB file mapping is
// populated with async populate() vs touching every page from JavaScript.
import * as fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBigFile, fmtMs, fmtRatio, GiB, interleave, isMain, loadPagewise, main, median, msSince, nowNs } from './lib/common.mjs';

export const meta = {
  id: 6,
  title: 'Populate off the event loop (cold 1 GiB file)',
  question:
    'Event-loop delay (monitorEventLoopDelay, resolution 1 ms) while a cold 1 GiB file mapping is faulted in: idle baseline vs `await mapping.populate()` vs touching one byte per page from JavaScript. ' +
    'Target: async populate keeps p99 delay near idle.',
};

function touchRead(u8, page) {
  let s = 0;
  for (let i = 0; i < u8.length; i += page) s += u8[i];
  return s;
}

async function measure(pw, file, mode, idleMs) {
  if (mode !== 'idle') pw.evict(file);
  const cold = mode === 'idle' ? undefined : pw.fileResidency(file).percent;
  const h = monitorEventLoopDelay({ resolution: 1 });
  // A 1 ms interval keeps the loop busy with timers the way a server would be.
  let ticks = 0;
  const iv = setInterval(() => ticks++, 1);
  await sleep(20);
  h.enable();
  // The histogram records the gap between consecutive timer callbacks, starting at the
  // second one: let it tick before the measured work starts.
  await sleep(10);
  const t0 = nowNs();
  if (mode === 'idle') await sleep(idleMs);
  else {
    const m = pw.mapFile(file);
    if (mode === 'async populate') await m.populate();
    else touchRead(m.buffer, pw.pageSize);
    m.close();
  }
  const ms = msSince(t0);
  await sleep(5); // let the timer that was blocked report its delay
  h.disable();
  clearInterval(iv);
  const toMs = (ns) => ns / 1e6;
  return { ms, p50: toMs(h.percentile(50)), p99: toMs(h.percentile(99)), max: toMs(h.max), count: h.count, ticks, coldPercent: cold };
}

export async function run({ full = false } = {}) {
  const pw = await loadPagewise();
  const file = ensureBigFile(GiB);
  const rounds = full ? 7 : 3;
  // Check that evict really makes the file cold (clean pages only).
  pw.evict(file);
  const after = pw.fileResidency(file).percent;
  const res = { idle: [], 'async populate': [], 'sync JS touch': [] };
  let idleMs = 500;
  await interleave(
    ['async populate', 'sync JS touch', 'idle'].map((name) => ({
      name,
      fn: async () => {
        const r = await measure(pw, file, name, idleMs);
        if (name === 'async populate') idleMs = Math.max(200, Math.round(r.ms));
        res[name].push(r);
        return r.p99;
      },
    })),
    rounds,
  );
  const med = (n, k) => median(res[n].map((r) => r[k]));
  const idleP99 = med('idle', 'p99');
  const asyncP99 = med('async populate', 'p99');
  const syncP99 = med('sync JS touch', 'p99');
  // "Near idle": within 2 ms (two timer resolutions) or 1.5× of the idle p99.
  const near = asyncP99 <= Math.max(idleP99 * 1.5, idleP99 + 2);
  const rows = [
    { variant: 'idle (setTimeout for the populate duration)', median: `p99 ${fmtMs(idleP99)}`, ratio: '1.00×', note: `p50 ${fmtMs(med('idle', 'p50'))}, max ${fmtMs(med('idle', 'max'))}` },
    {
      variant: 'await mapping.populate() (MADV_POPULATE_READ on the thread pool)',
      median: `p99 ${fmtMs(asyncP99)}`,
      ratio: `${fmtRatio(asyncP99 / idleP99)} of idle`,
      target: 'near idle (≤ max(1.5× idle, idle + 2 ms))',
      met: near,
      note: `p50 ${fmtMs(med('async populate', 'p50'))}, max ${fmtMs(med('async populate', 'max'))}; took ${fmtMs(med('async populate', 'ms'))} for 1 GiB`,
    },
    {
      variant: 'touch one byte per page from JavaScript (sync page faults)',
      median: `p99 ${fmtMs(syncP99)}`,
      ratio: `${fmtRatio(syncP99 / idleP99)} of idle`,
      note: `max ${fmtMs(med('sync JS touch', 'max'))}: the loop blocks for the whole read; took ${fmtMs(med('sync JS touch', 'ms'))} (${fmtRatio(med('sync JS touch', 'ms') / med('async populate', 'ms'))} of populate's time)`,
    },
  ];
  const notes = [
    `Before each populate / touch run the file is evicted (posix_fadvise DONTNEED via pagewise.evict; residency after evict: ${after.toFixed(1)}%, per-run ${res['async populate'].map((r) => r.coldPercent?.toFixed(1) + '%').join(', ')}), so every run reads 1 GiB from the disk.`,
    `monitorEventLoopDelay({ resolution: 1 }) with a 1 ms setInterval running; the histogram is enabled only for the measured window (idle = a sleep as long as the async populate took). ${rounds} interleaved rounds, medians of each run's percentiles.`,
    'A synchronous touch loop produces few, very long delay samples (the whole read is one blocked stretch), so its p99 ≈ its max; populate() runs madvise(MADV_POPULATE_READ) in chunks on the libuv thread pool and the event loop keeps ticking.',
  ];
  return { ...meta, rows, notes, params: { file, size: GiB, rounds }, raw: res };
}

if (isMain(import.meta.url)) await main(meta, run);
