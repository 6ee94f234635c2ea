// Q9. Page flags, write tracking, batched advice and incremental checkpoints
// (issue 26), each beside a C program doing the same syscalls in the same run:
// bench/c/pagemap_scan.c (PAGEMAP_SCAN, userfaultfd WP-async) and
// bench/c/batch_free.c (a loop of madvise vs one process_madvise).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { check, compileC, fmtMs, fmtNs, fmtRatio, GiB, isMain, loadPagewise, main, median, MiB, nowNs, runC } from './lib/common.mjs';

export const meta = {
  id: 9,
  title: 'Page flags, write tracking, batched advice, incremental checkpoints',
  question:
    'mapping.pageFlags() of 1 GiB vs one PAGEMAP_SCAN in C (≤ 1.2×); tracker.written() of 1 GiB with 1 % of pages written vs the ' +
    'C scan (≤ 2×); adviseRanges() of 1,000 one-page ranges vs a C loop of 1,000 madvise calls (≤ 0.5×); an incremental ' +
    'checkpoint of 1 GiB with 1 % written vs a full write (≥ 20× fewer bytes, ≥ 5× faster). Also: the cost of the first write to a write-protected page.',
};

const ms = (t0) => Number(nowNs() - t0) / 1e6;
/** CPU time of this process in ms since `c0` (process.cpuUsage(): user + system). */
const cpuMs = (c0) => {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1000;
};

export async function run({ full = false } = {}) {
  const pw = await loadPagewise();
  const page = pw.pageSize;
  const rounds = full ? 15 : 7;
  const size = GiB;
  const rows = [];
  const notes = [
    'Measured on a shared, loaded 2-core VM: the ratios (each measured in one run) are the result, not the absolute times.',
    'Scan targets are judged on CPU time (process.cpuUsage() around the call; CLOCK_THREAD_CPUTIME_ID in C): under load the wall clock mostly measures waiting for a CPU. Wall-clock rows are shown beside them.',
  ];

  // ---- page flags: every other 2 MiB written, the rest populated for reading (zero page), no THP (as the C program) ----
  const scanBin = compileC('pagemap_scan');
  {
    const chunk = 2 * MiB;
    let sink = 0;
    // Each round maps and fills afresh, as each C process does: how fast the kernel walks the
    // page tables differs from one mapping to the next by up to ±20 % here (where they landed in
    // memory), so one mapping scanned every round would compare one draw against fifteen.
    const prepare = () => {
      const m = pw.map(size);
      m.advise('nohugepage');
      for (let off = 0; off < size; off += chunk) {
        if ((off / chunk) % 2 === 0) m.view(off, chunk).fill(1);
        else {
          // Read one byte per page on this thread, as the C program does: the same page-table
          // state on both sides (populate() would fault them in on a libuv worker instead).
          const v = m.view(off, chunk);
          for (let i = 0; i < chunk; i += page) sink += v[i];
        }
      }
      return m;
    };
    const js = [];
    const c = [];
    const jsCpu = [];
    const cCpu = [];
    let runs = 0;
    // Blocks of 5 calls on a fresh mapping, alternating with a C process making 5 scans of its own mapping of the same shape.
    for (let r = 0; r < rounds; r++) {
      const m = prepare();
      m.pageFlags(); // warm-up (the first call of a round also builds the addon's scan buffer)
      for (let i = 0; i < 5; i++) {
        const c0 = process.cpuUsage();
        const t0 = nowNs();
        runs = m.pageFlags().runs.length;
        js.push(ms(t0));
        jsCpu.push(cpuMs(c0));
      }
      m.close();
      const out = runC(scanBin, ['flags', size / MiB, 5]);
      c.push(...out.scan_ns.map((ns) => ns / 1e6));
      cCpu.push(...out.scan_cpu_ns.map((ns) => ns / 1e6));
    }
    if (sink < 0) throw new Error('unreachable: the zero page reads as 0');
    const ratio = median(jsCpu) / median(cCpu);
    rows.push({ variant: 'pageFlags() of 1 GiB (PAGEMAP_SCAN), CPU time', median: fmtMs(median(jsCpu)), ratio: `${fmtRatio(ratio)} of C`, ...check(ratio, 'le', 1.2), note: `${runs} runs; C PAGEMAP_SCAN ${fmtMs(median(cCpu))} of CPU` });
    rows.push({ variant: 'pageFlags() of 1 GiB (PAGEMAP_SCAN), wall clock', median: fmtMs(median(js)), ratio: `${fmtRatio(median(js) / median(c))} of C`, note: `C ${fmtMs(median(c))}: on this loaded VM most of either is time spent waiting for a CPU` });
  }

  // ---- written(): 1 GiB, 1 % of the pages written (every 100th), then the scan; C does the same ----
  {
    const m = pw.map(size);
    m.advise('nohugepage');
    m.view(0, size).fill(1);
    let t0 = nowNs();
    const t = m.trackWrites();
    const protectMs = ms(t0);
    const pages = size / page;
    const u8 = m.view(0, size);
    // One store per 100th page; the same function (warmed) times the stores to protected and to writable pages.
    const store = (value, at) => {
      const t1 = nowNs();
      for (let p = 0; p < pages; p += 100) u8[p * page + at] = value;
      return Number(nowNs() - t1) / Math.ceil(pages / 100);
    };
    // Warm-up: the stores, and written() itself (it makes one object per run: a few calls in
    // V8's interpreter would cost more than the kernel's scan).
    for (let i = 0; i < 10; i++) {
      store(i, 3);
      t.written();
      t.reset();
    }
    const js = [];
    const jsCpu = [];
    const firstWrite = [];
    const plain = [];
    let found = 0;
    for (let r = 0; r < rounds + 1; r++) {
      firstWrite.push(store(r, 0)); // protected: each store takes the write-protect fault
      // The scan follows the writes directly, as in the C program: stores in between would
      // evict the page-table lines the scan reads (measured: +21 % on the kernel's scan alone).
      const c0 = process.cpuUsage();
      t0 = nowNs();
      found = t.written().length;
      if (r > 0) {
        js.push(ms(t0));
        jsCpu.push(cpuMs(c0));
      }
      plain.push(store(r, 1)); // the same pages, writable again now: no fault
      t.reset();
    }
    const plainWrite = median(plain);
    t.close();
    m.close();
    const c = runC(scanBin, ['written', size / MiB, 10, rounds]);
    const cScan = median(c.scan_ns) / 1e6;
    const cCpu = median(c.scan_cpu_ns) / 1e6;
    const ratio = median(jsCpu) / cCpu;
    rows.push({ variant: 'tracker.written() of 1 GiB, 1 % written, CPU time', median: fmtMs(median(jsCpu)), ratio: `${fmtRatio(ratio)} of C`, ...check(ratio, 'le', 2), note: `${found} runs; C scan ${fmtMs(cCpu)} of CPU` });
    rows.push({ variant: 'tracker.written() of 1 GiB, 1 % written, wall clock', median: fmtMs(median(js)), ratio: `${fmtRatio(median(js) / cScan)} of C`, note: `C scan ${fmtMs(cScan)}; trackWrites() (register + protect 1 GiB) ${fmtMs(protectMs)}, C ${fmtNs(c.protect_ns)}` });
    rows.push({ variant: 'first write to a write-protected page', median: fmtNs(median(firstWrite)), ratio: `${fmtRatio(median(firstWrite) / plainWrite)} of a plain store`, note: `JavaScript, one store per page 400 KiB apart: ${fmtNs(plainWrite)} per store to the same pages once writable; C: ${fmtNs(c.first_write_ns)} vs ${fmtNs(c.plain_write_ns)}` });
  }

  // ---- batched advice: 1,000 one-page ranges (one page apart) after re-dirtying them, as bench/c/batch_free.c ----
  for (const [advice, value] of [['dontneed', 4], ['free', 8]]) {
    const n = 1000;
    const freeBin = compileC('batch_free');
    const m = pw.map(2 * n * page);
    const ranges = Array.from({ length: n }, (_, i) => ({ offset: 2 * i * page, length: page }));
    const u8 = m.buffer;
    const js = [];
    for (let r = 0; r < rounds * 4 + 5; r++) {
      for (let i = 0; i < u8.length; i += page) u8[i] = r;
      const t0 = nowNs();
      m.adviseRanges(advice, ranges);
      if (r >= 5) js.push(Number(nowNs() - t0));
    }
    m.close();
    const c = runC(freeBin, [n, 1, rounds * 4, value]);
    const ratio = median(js) / median(c.madvise_ns);
    const cBatch = median(c.process_madvise_ns) / median(c.madvise_ns);
    rows.push({
      variant: `adviseRanges('${advice}') of 1,000 one-page ranges`,
      median: fmtNs(median(js)),
      ratio: `${fmtRatio(ratio)} of a C madvise loop`,
      ...check(ratio, 'le', 0.5),
      note: `C: loop of 1,000 madvise ${fmtNs(median(c.madvise_ns))}, one process_madvise ${fmtNs(median(c.process_madvise_ns))} (${fmtRatio(cBatch)} of the loop: the kernel's floor for this advice)`,
    });
  }

  // ---- incremental checkpoint: 1 GiB, 1 % of the pages written, examples/checkpoint.mjs ----
  {
    const { Checkpointer, touch } = await import('../examples/checkpoint.mjs');
    const dir = fs.mkdtempSync(path.join(process.env.PAGEWISE_BENCH_DIR || os.tmpdir(), 'pagewise-checkpoint-'));
    const m = pw.map(size);
    try {
      m.view(0, size).fill(7);
      const cp = new Checkpointer(m, dir);
      const fullMs = [];
      const incMs = [];
      let fullBytes = 0;
      let incBytes = 0;
      const cpRounds = full ? 5 : 3;
      for (let r = 0; r < cpRounds; r++) {
        let t0 = nowNs();
        fullBytes = cp.full();
        fullMs.push(ms(t0));
        touch(m, 1, r + 1);
        t0 = nowNs();
        incBytes = cp.incremental();
        incMs.push(ms(t0));
      }
      cp.close();
      const bytesRatio = fullBytes / incBytes;
      const timeRatio = median(fullMs) / median(incMs);
      rows.push({ variant: 'incremental checkpoint of 1 GiB, 1 % written: bytes', median: `${(incBytes / MiB).toFixed(1)} MiB`, ratio: `${fmtRatio(bytesRatio)} fewer than full`, ...check(bytesRatio, 'ge', 20), note: `full ${(fullBytes / MiB).toFixed(0)} MiB` });
      rows.push({ variant: 'incremental checkpoint of 1 GiB, 1 % written: time', median: fmtMs(median(incMs)), ratio: `${fmtRatio(timeRatio)} faster than full`, ...check(timeRatio, 'ge', 5), note: `full write ${fmtMs(median(fullMs))}; full = image file written and fsynced, incremental = written() + reset() + one log record (writev) + fsync (examples/checkpoint.mjs)` });
    } finally {
      m.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return { ...meta, rows, notes, params: { rounds, size } };
}

if (isMain(import.meta.url)) await main(meta, run);
