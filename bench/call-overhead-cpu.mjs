// Diagnostic for Q2 (bench/call-overhead.mjs) on a loaded machine: the per-call CPU time
// (process.cpuUsage() around 20,000 calls; time spent waiting for a CPU is not counted) of
// one-page advise / residency through pagewise, through the raw addon with its numbers as
// N-API arguments or from its call-argument array, and of the N-API floor
// (bench/c/napi_floor.c), interleaved in one process. Prints the ratios to the floor.
//   node bench/call-overhead-cpu.mjs
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { compileC, distPath, loadPagewise, median, MiB } from './lib/common.mjs';

const pw = await loadPagewise();
const require = createRequire(import.meta.url);
const addon = require(require('node-gyp-build').path(path.join(distPath(), '..')));
const include = path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node');
const mod = { exports: {} };
process.dlopen(mod, compileC('napi_floor', ['-shared', '-fPIC', `-I${include}`]));
const floor = mod.exports;

const P = pw.pageSize;
const N = 20_000;
const m = pw.map(MiB);
m.buffer.fill(1);
const region = addon.map(MiB, 3, false, -1, 0, false, false, 0);
region.view(0, MiB).fill(1);
const args = addon.callArgs;
const range = { offset: 0, length: P };
let sink = 0;
const cpuPerCall = (loop) => {
  const c = process.cpuUsage();
  loop();
  const d = process.cpuUsage(c);
  return ((d.user + d.system) * 1000) / N;
};
const variants = {
  'floor madvise': () => cpuPerCall(() => { for (let i = 0; i < N; i++) floor.madvise(); }),
  'addon advise, N-API arguments': () => cpuPerCall(() => { for (let i = 0; i < N; i++) region.advise(0, P, 3); }),
  'addon adviseArgs, call-argument array': () => cpuPerCall(() => { for (let i = 0; i < N; i++) { args[0] = 0; args[1] = P; args[2] = 3; region.adviseArgs(); } }),
  'pagewise advise': () => cpuPerCall(() => { for (let i = 0; i < N; i++) m.advise('willneed', range); }),
  'floor mincore': () => cpuPerCall(() => { for (let i = 0; i < N; i++) floor.mincore(); }),
  'addon residencyBits, N-API arguments': () => cpuPerCall(() => { for (let i = 0; i < N; i++) sink += region.residencyBits(0, P); }),
  'addon residencyBitsArgs, call-argument array': () => cpuPerCall(() => { for (let i = 0; i < N; i++) { args[0] = 0; args[1] = P; sink += region.residencyBitsArgs(); } }),
  'pagewise residency': () => cpuPerCall(() => { for (let i = 0; i < N; i++) sink += m.residency(range).resident; }),
};
const names = Object.keys(variants);
for (const n of names) variants[n]();
const samples = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < 21; r++) for (const n of r % 2 ? [...names].reverse() : names) samples[n].push(variants[n]());
const med = Object.fromEntries(names.map((n) => [n, median(samples[n])]));
for (const n of names) {
  const base = n.includes('advise') ? med['floor madvise'] : med['floor mincore'];
  console.log(`${n.padEnd(46)} ${med[n].toFixed(0).padStart(6)} ns CPU  ${(med[n] / base).toFixed(3)}× of the floor`);
}
m.close();
region.close();
if (sink < 0) console.log(sink);
