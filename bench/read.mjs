// Q8. The cost of safety: mapping.readSync() / read() (process_vm_readv, cannot
// fault) vs copying out of a view of the same mapping (buffer.subarray().set(),
// raises SIGBUS if the file was truncated) vs fs.readSync from the file, for
// 4 KiB, 1 MiB and 64 MiB copies out of a cached, populated 64 MiB file mapping.
import * as fs from 'node:fs';
import { ensureBigFile, fmtMs, fmtRatio, interleave, isMain, loadPagewise, main, median, MiB, nowNs, warmFile } from './lib/common.mjs';

export const meta = {
  id: 8,
  title: 'The cost of safety: read() vs a view copy vs fs.readSync',
  question:
    'Time per copy of 4 KiB, 1 MiB and 64 MiB out of a cached, populated 64 MiB file mapping into a reused buffer: mapping.readSync() and mapping.read() (process_vm_readv on the calling process: a truncated file gives EFAULT, never SIGBUS) vs view.subarray().set() (a plain memory copy, SIGBUS if the file was truncated) vs fs.readSync() of the same bytes. No target: this measures what safety costs.',
};

const SIZES = [
  { label: '4 KiB', bytes: 4096, calls: 20000 },
  { label: '1 MiB', bytes: MiB, calls: 200 },
  { label: '64 MiB', bytes: 64 * MiB, calls: 4 },
];

export async function run({ full = false } = {}) {
  const pw = await loadPagewise();
  const rounds = full ? 12 : 5;
  const file = ensureBigFile(64 * MiB, 'pagewise-bench-64m.bin');
  warmFile(file);
  const m = pw.mapFile(file);
  await m.populate();
  const view = m.buffer;
  const fd = fs.openSync(file, 'r');
  const rows = [];
  const params = { file, rounds, sizes: SIZES, asyncThreshold: '1 MiB (read() copies smaller ones on the calling thread)' };
  try {
    for (const { label, bytes, calls } of SIZES) {
      const target = Buffer.allocUnsafeSlow(bytes);
      const slots = Math.floor((64 * MiB) / bytes);
      // Spread the offsets over the file, the same sequence for every variant.
      const offsetOf = (i) => ((i * 7919) % slots) * bytes;
      const perCall = (fn) => async () => {
        const t0 = nowNs();
        for (let i = 0; i < calls; i++) await fn(offsetOf(i));
        return Number(nowNs() - t0) / 1e6 / calls;
      };
      const variants = [
        { name: 'view.subarray().set()', fn: perCall((off) => target.set(view.subarray(off, off + bytes))) },
        { name: 'mapping.readSync()', fn: perCall((off) => m.readSync(off, bytes, target)) },
        { name: 'mapping.read()', fn: perCall((off) => m.read(off, bytes, target)) },
        { name: 'fs.readSync()', fn: perCall((off) => fs.readSync(fd, target, 0, bytes, off)) },
      ];
      // Warm up (JIT, first touches of the target) before measuring.
      for (const v of variants) await v.fn();
      const samples = await interleave(variants, rounds);
      const copy = median(samples['view.subarray().set()']);
      const fsRead = median(samples['fs.readSync()']);
      for (const v of variants) {
        const ms = median(samples[v.name]);
        const gbps = bytes / (ms / 1000) / 1e9;
        rows.push({
          variant: `${label} ${v.name}`,
          median: `${fmtMs(ms)} (${gbps.toFixed(2)} GB/s)`,
          ratio: v.name === 'view.subarray().set()' ? '1.00×' : `${fmtRatio(ms / copy)} of the view copy; ${fmtRatio(ms / fsRead)} of fs.readSync`,
          note:
            v.name === 'mapping.read()'
              ? bytes >= MiB
                ? 'threadpool round trip included'
                : 'below the threshold: copied on the calling thread, plus a Promise'
              : v.name === 'view.subarray().set()'
                ? 'not safe: SIGBUS if the file shrank'
                : v.name === 'fs.readSync()'
                  ? 'safe (a short read at the end of the file)'
                  : 'safe (EFAULT with bytesRead)',
        });
      }
    }
  } finally {
    fs.closeSync(fd);
    m.close();
  }
  const notes = [
    `Each sample is the mean time per call over a batch (${SIZES.map((s) => `${s.calls} × ${s.label}`).join(', ')}); ${rounds} interleaved rounds; medians. The mapping is populated and the file fully cached, so no variant faults or reads from disk.`,
    'process_vm_readv pins the source pages (get_user_pages) and copies page by page; fs.readSync copies from the page cache through read(2); the view copy is a memcpy in V8. The ratio to the view copy is the cost of never raising SIGBUS.',
  ];
  return { ...meta, rows, notes, params };
}

if (isMain(import.meta.url)) await main(meta, run);
