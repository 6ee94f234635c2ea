// Q2. Call overhead: one-page advise and residency calls from JavaScript vs a
// tight C loop of the same syscalls (bench/c/call_overhead.c), and vs
// @riaskov/mmap-io for the calls both libraries have.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { check, compileC, distPath, fmtNs, fmtRatio, interleave, isMain, loadPagewise, main, median, MiB, nowNs, runC } from './lib/common.mjs';

export const meta = {
  id: 2,
  title: 'Call overhead: one-page advise() and residency()',
  question:
    'Per-call time of a one-page madvise(MADV_WILLNEED) and a one-page mincore through pagewise, vs a tight C loop of the same syscalls and vs @riaskov/mmap-io (advise, incore). ' +
    'Targets: pagewise ≤ 1.15× of C per call (below the N-API floor on this VM); within 1.05× of the N-API floor measured in the same run (issue 26); no slower than mmap-io.',
};

const WILLNEED = 3;

function loadMmapIo() {
  const require = createRequire(import.meta.url);
  try {
    return { mod: require('@riaskov/mmap-io'), error: undefined };
  } catch (err) {
    return { mod: undefined, error: err.message.split('\n')[0] };
  }
}

export async function run({ full = false } = {}) {
  const pw = await loadPagewise();
  const page = pw.pageSize;
  const bin = compileC('call_overhead');
  const calls = full ? 200_000 : 50_000; // per sample
  const rounds = full ? 15 : 7;
  const cReps = 2; // samples per C process per round

  const m = pw.map(MiB);
  m.buffer.fill(1);
  const range = { offset: 0, length: page };

  // The raw addon underneath pagewise (no TypeScript validation), as a diagnostic.
  const require = createRequire(import.meta.url);
  let addonRegion;
  let addon;
  try {
    // The addon file the package itself loads (node-gyp-build: prebuilds/ or build/).
    addon = require(require('node-gyp-build').path(path.join(distPath(), '..')));
    addonRegion = addon.map(MiB, 3, false, -1, 0, false, false, 0);
    addonRegion.view(0, MiB).fill(1); // view() is a Uint8Array: fill it, not a copy
  } catch {
    addonRegion = undefined;
  }

  // The TypeScript layer alone: the public API over a backend whose calls do nothing
  // (no N-API transition, no syscall), to see what validation and rounding cost.
  const real = pw.pagewise.backend;
  const noop = new pw.Pagewise({
    ...real,
    kind: real.kind,
    pageSize: page,
    maxViewLength: real.maxViewLength,
    supports: () => true,
    map: () => ({ length: MiB, closed: false, advise() {}, residencyBits: () => 1, residencyInto() {}, residency: (o, l) => new Uint8Array(l / page), close() {} }),
  }).map(MiB);

  // The floor: an N-API function with no arguments and no receiver making the same
  // syscall on a fixed page (bench/c/napi_floor.c), and an empty one.
  let floor;
  let floorError;
  try {
    const include = path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node');
    const mod = { exports: {} };
    process.dlopen(mod, compileC('napi_floor', ['-shared', '-fPIC', `-I${include}`]));
    floor = mod.exports;
  } catch (err) {
    floorError = String(err.message).split('\n')[0];
  }
  const protoAdvise = addonRegion && Object.getPrototypeOf(addonRegion).advise;
  const protoResidencyBits = addonRegion && Object.getPrototypeOf(addonRegion).residencyBits;

  const { mod: mmapio, error: mmapioError } = loadMmapIo();
  let mbuf;
  if (mmapio) {
    mbuf = mmapio.map(MiB, mmapio.PROT_READ | mmapio.PROT_WRITE, mmapio.MAP_PRIVATE | 0x20 /* MAP_ANONYMOUS */, -1, 0);
    mbuf.fill(1);
  }
  const mpage = mbuf?.subarray(0, page);

  // Tight loops: the call under test is ~0.3-1.5 µs, so the loop and the clock
  // must cost far less than that. One hrtime pair per `calls` calls adds < 1 ns per call;
  // a per-iteration harness (tinybench times every iteration) would add tens of ns.
  let sink = 0;
  let intoVector;
  const loop = {
    'pagewise advise': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) m.advise('willneed', range);
      return Number(nowNs() - t0) / calls;
    },
    'pagewise residency': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += m.residency(range).resident;
      return Number(nowNs() - t0) / calls;
    },
    'TS layer advise (no-op backend)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) noop.advise('willneed', range);
      return Number(nowNs() - t0) / calls;
    },
    'TS layer residency (no-op backend)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += noop.residency(range).resident;
      return Number(nowNs() - t0) / calls;
    },
    'addon residencyInto (no TS layer)': () => {
      intoVector ??= new Uint8Array(4096);
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) addonRegion.residencyInto(0, page, intoVector);
      return Number(nowNs() - t0) / calls;
    },
    'addon residencyBits (no TS layer)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += addonRegion.residencyBits(0, page);
      return Number(nowNs() - t0) / calls;
    },
    'addon advise (no TS layer)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) addonRegion.advise(0, page, WILLNEED);
      return Number(nowNs() - t0) / calls;
    },
    'addon adviseArgs (no TS layer)': () => {
      // Exactly the call Mapping.advise makes: the numbers stored into the call-argument array, then the bound function.
      const args = addon.callArgs;
      const f = addonRegion.adviseArgs;
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) {
        args[0] = 0;
        args[1] = page;
        args[2] = WILLNEED;
        f();
      }
      return Number(nowNs() - t0) / calls;
    },
    'addon residencyBitsArgs (no TS layer)': () => {
      const args = addon.callArgs;
      const f = addonRegion.residencyBitsArgs;
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) {
        args[0] = 0;
        args[1] = page;
        sink += f();
      }
      return Number(nowNs() - t0) / calls;
    },
    'addon advise, prototype (receiver check)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) protoAdvise.call(addonRegion, 0, page, WILLNEED);
      return Number(nowNs() - t0) / calls;
    },
    'addon residencyBits, prototype (receiver check)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += protoResidencyBits.call(addonRegion, 0, page);
      return Number(nowNs() - t0) / calls;
    },
    'floor madvise': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) floor.madvise();
      return Number(nowNs() - t0) / calls;
    },
    'floor mincore': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) floor.mincore();
      return Number(nowNs() - t0) / calls;
    },
    'floor madvise, arguments': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) floor.madviseArgs(0, page, WILLNEED);
      return Number(nowNs() - t0) / calls;
    },
    'floor mincore, arguments': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += floor.mincoreArgs(0, page);
      return Number(nowNs() - t0) / calls;
    },
    'floor empty': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) floor.empty();
      return Number(nowNs() - t0) / calls;
    },
    'addon residency (no TS layer)': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += addonRegion.residency(0, page)[0] & 1;
      return Number(nowNs() - t0) / calls;
    },
    'mmap-io advise': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) mmapio.advise(mbuf, 0, page, WILLNEED);
      return Number(nowNs() - t0) / calls;
    },
    'mmap-io incore': () => {
      const t0 = nowNs();
      for (let i = 0; i < calls; i++) sink += mmapio.incore(mpage)[1];
      return Number(nowNs() - t0) / calls;
    },
    'C madvise': () => runC(bin, ['madvise', WILLNEED, calls, cReps]).ns_per_call,
    'C mincore': () => runC(bin, ['mincore', 0, calls, cReps]).ns_per_call,
  };
  const names = Object.keys(loop).filter((n) => (n.startsWith('addon') ? addonRegion : n.startsWith('mmap-io') ? mmapio : n.startsWith('floor') ? floor : true));
  // Warm-up (JIT) for every JS variant.
  for (const n of names) if (!n.startsWith('C ')) loop[n]();
  const s = await interleave(names.map((name) => ({ name, fn: loop[name] })), rounds);
  const med = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)]));
  m.close();
  addonRegion?.close();

  const rows = [];
  const r = (a, b) => med[a] / med[b];
  const adv = check(r('pagewise advise', 'C madvise'), 'le', 1.15);
  const res = check(r('pagewise residency', 'C mincore'), 'le', 1.15);
  rows.push(
    { variant: 'C madvise(WILLNEED), 1 page', median: fmtNs(med['C madvise']), ratio: '1.00×', note: 'tight C loop, return value checked' },
    { variant: "pagewise advise('willneed', 1 page)", median: fmtNs(med['pagewise advise']), ratio: `${fmtRatio(adv.met !== undefined ? r('pagewise advise', 'C madvise') : NaN)} of C`, ...adv, note: `+${(med['pagewise advise'] - med['C madvise']).toFixed(0)} ns per call over C` },
  );
  if (addonRegion) {
    rows.push({ variant: 'raw addon advise (diagnostic)', median: fmtNs(med['addon advise (no TS layer)']), ratio: `${fmtRatio(r('addon advise (no TS layer)', 'C madvise'))} of C`, note: `the call pagewise makes: plain N-API function bound to the mapping (reads 3 numbers, checks the range), without the TypeScript layer; TypeScript layer in place = pagewise − this = ${(med['pagewise advise'] - med['addon advise (no TS layer)']).toFixed(0)} ns` });
    rows.push({ variant: 'raw addon advise through the prototype (diagnostic)', median: fmtNs(med['addon advise, prototype (receiver check)']), ratio: `${fmtRatio(r('addon advise, prototype (receiver check)', 'C madvise'))} of C`, note: `the same with the receiver check (type tag + unwrap): +${(med['addon advise, prototype (receiver check)'] - med['addon advise (no TS layer)']).toFixed(0)} ns` });
  }
  if (floor) {
    rows.push({ variant: 'N-API floor: madvise, no arguments (diagnostic)', median: fmtNs(med['floor madvise']), ratio: `${fmtRatio(r('floor madvise', 'C madvise'))} of C`, note: `bench/c/napi_floor.c: the cheapest N-API call making this syscall; an empty N-API call costs ${fmtNs(med['floor empty'])}` });
    rows.push({ variant: 'N-API floor: madvise reading (offset, length, advice) (diagnostic)', median: fmtNs(med['floor madvise, arguments']), ratio: `${fmtRatio(r('floor madvise, arguments', 'C madvise'))} of C`, note: 'bench/c/napi_floor.c: the floor plus the N-API reads of the three numbers advise takes, no checks' });
  }
  if (floor) {
    const f = check(r('pagewise advise', 'floor madvise'), 'le', 1.05);
    rows.push({ variant: "pagewise advise('willneed', 1 page) vs the N-API floor", median: fmtNs(med['pagewise advise']), ratio: `${fmtRatio(r('pagewise advise', 'floor madvise'))} of the floor`, ...f, note: `floor ${fmtNs(med['floor madvise'])} (no arguments, same run); advise passes its numbers through the addon's call-argument array, not as N-API arguments` });
  }
  if (floor && addonRegion) {
    const a = med['addon adviseArgs (no TS layer)'];
    rows.push({ variant: 'the addon call advise() makes, without its JavaScript (diagnostic)', median: fmtNs(a), ratio: `${fmtRatio(a / med['floor madvise'])} of the floor`, note: `numbers stored into the call-argument array, then the bound adviseArgs: all of pagewise but the TypeScript layer; the 1.05× target leaves ${(1.05 * med['floor madvise'] - a).toFixed(0)} ns for validation, rounding and the result object` });
  }
  rows.push({ variant: 'TypeScript layer of advise (diagnostic)', median: fmtNs(med['TS layer advise (no-op backend)']), ratio: '', note: 'public API over a backend that does nothing: validation + rounding only' });
  if (mmapio) {
    const vs = check(r('pagewise advise', 'mmap-io advise'), 'le', 1.0);
    rows.push({ variant: 'mmap-io advise(buf, 0, page, WILLNEED)', median: fmtNs(med['mmap-io advise']), ratio: `pagewise/mmap-io = ${fmtRatio(r('pagewise advise', 'mmap-io advise'))}`, ...vs, target: '≤ 1.00× (no slower)', note: 'NAN addon, no argument validation beyond types' });
  }
  rows.push(
    { variant: 'C mincore, 1 page', median: fmtNs(med['C mincore']), ratio: '1.00×', note: 'tight C loop into a 1-byte vector' },
    { variant: 'pagewise residency(1 page)', median: fmtNs(med['pagewise residency']), ratio: `${fmtRatio(r('pagewise residency', 'C mincore'))} of C`, ...res, note: `+${(med['pagewise residency'] - med['C mincore']).toFixed(0)} ns per call over C (returns a fresh Uint8Array + counts)` },
  );
  if (addonRegion) {
    rows.push({ variant: 'raw addon residency (diagnostic)', median: fmtNs(med['addon residency (no TS layer)']), ratio: `${fmtRatio(r('addon residency (no TS layer)', 'C mincore'))} of C`, note: 'N-API call without the TypeScript layer, allocating the vector' });
    rows.push({ variant: 'raw addon residencyBits (diagnostic)', median: fmtNs(med['addon residencyBits (no TS layer)']), ratio: `${fmtRatio(r('addon residencyBits (no TS layer)', 'C mincore'))} of C`, note: `the call pagewise makes for up to 32 pages: bound to the mapping, two numbers in, the residency bits out as a number; TypeScript layer in place = pagewise − this = ${(med['pagewise residency'] - med['addon residencyBits (no TS layer)']).toFixed(0)} ns` });
    rows.push({ variant: 'raw addon residencyBits through the prototype (diagnostic)', median: fmtNs(med['addon residencyBits, prototype (receiver check)']), ratio: `${fmtRatio(r('addon residencyBits, prototype (receiver check)', 'C mincore'))} of C`, note: `the same with the receiver check: +${(med['addon residencyBits, prototype (receiver check)'] - med['addon residencyBits (no TS layer)']).toFixed(0)} ns` });
    rows.push({ variant: 'raw addon residencyInto (diagnostic)', median: fmtNs(med['addon residencyInto (no TS layer)']), ratio: `${fmtRatio(r('addon residencyInto (no TS layer)', 'C mincore'))} of C`, note: 'the call pagewise makes for 33 pages or more: into the caller\'s Uint8Array (a typed-array argument: several V8 calls to read it)' });
  }
  if (floor) {
    rows.push({ variant: 'N-API floor: mincore, no arguments (diagnostic)', median: fmtNs(med['floor mincore']), ratio: `${fmtRatio(r('floor mincore', 'C mincore'))} of C`, note: 'bench/c/napi_floor.c: the cheapest N-API call making this syscall' });
    rows.push({ variant: 'N-API floor: mincore reading (offset, length), returning a number (diagnostic)', median: fmtNs(med['floor mincore, arguments']), ratio: `${fmtRatio(r('floor mincore, arguments', 'C mincore'))} of C`, note: 'bench/c/napi_floor.c: the floor plus what residencyBits must do through N-API (two number reads, one number made), no checks' });
  }
  if (floor) {
    const f = check(r('pagewise residency', 'floor mincore'), 'le', 1.05);
    rows.push({ variant: 'pagewise residency(1 page) vs the N-API floor', median: fmtNs(med['pagewise residency']), ratio: `${fmtRatio(r('pagewise residency', 'floor mincore'))} of the floor`, ...f, note: `floor ${fmtNs(med['floor mincore'])} (no arguments, same run); residency() of up to 32 pages: numbers through the call-argument array, the bits back as a number, the pages vector made in JavaScript` });
  }
  if (floor && addonRegion) {
    const a = med['addon residencyBitsArgs (no TS layer)'];
    rows.push({ variant: 'the addon call residency() makes, without its JavaScript (diagnostic)', median: fmtNs(a), ratio: `${fmtRatio(a / med['floor mincore'])} of the floor`, note: `numbers stored into the call-argument array, then the bound residencyBitsArgs; the 1.05× target leaves ${(1.05 * med['floor mincore'] - a).toFixed(0)} ns for validation, rounding, the pages vector and the counts` });
  }
  rows.push({ variant: 'TypeScript layer of residency (diagnostic)', median: fmtNs(med['TS layer residency (no-op backend)']), ratio: '', note: 'public API over a backend that does nothing: validation, rounding, the pages vector made from the bits, count' });
  if (mmapio) {
    const vs = check(r('pagewise residency', 'mmap-io incore'), 'le', 1.0);
    rows.push({ variant: 'mmap-io incore(1-page Buffer)', median: fmtNs(med['mmap-io incore']), ratio: `pagewise/mmap-io = ${fmtRatio(r('pagewise residency', 'mmap-io incore'))}`, ...vs, target: '≤ 1.00× (no slower)', note: 'returns [unmapped, mapped] counts (malloc + free per call)' });
  }
  const notes = [
    `Each sample is the mean of ${calls.toLocaleString('en')} back-to-back calls timed with process.hrtime.bigint() around the whole loop (C: clock_gettime around the same loop); ${rounds} interleaved rounds, every variant once per round (order reversed every other round), median reported. ` +
      'A tight loop is the right tool for a sub-microsecond call: a per-iteration benchmark harness would add its own timer overhead to every call.',
    'All variants use one page of a touched 1 MiB private anonymous mapping. MADV_WILLNEED is a hint that takes the mmap read lock (no VMA split), so the mapping is unchanged between calls.',
    'On this VM a bare madvise/mincore syscall costs several hundred ns (syscall entry with mitigations); the JS-side cost on top is the N-API transition plus pagewise argument validation and range rounding.',
    'Layers: pagewise = TypeScript layer (brand and open check, advice lookup, range validation incl. the unknown-key check, rounding, the result object; the no-op-backend rows show it in isolation) + N-API call (raw addon minus C: three (advise) or two (residencyBits) number arguments read through N-API, the open/range guards) + the syscall. ' +
      'advise, residencyBits and residencyInto are plain N-API functions bound to their mapping (no receiver check, no node-addon-api wrapper); residency() of up to 32 pages gets its answer from residencyBits as a number (bit i = page i), so no typed array crosses into the addon. The addon builds no message unless a call fails.',
    'In isolation (no-op backend) the TypeScript layer costs tens of ns, but next to a syscall every piece of code and data a call touches costs far more than in a loop without one (this VM is a paravirtualised guest whose CPU flags show page-table isolation (pti) without PCID: each syscall then flushes the user TLB entries, and each distinct page touched afterwards costs a nested page walk; that is our explanation of the figures, not measured directly): ' +
      'the receiver check (a private-symbol lookup, under 100 ns alone) costs 0.6–1 µs per call in place, and "TypeScript layer in place" (pagewise − raw addon) is several times the no-op-backend row. Compare rows of one run only.',
    floor ? 'The N-API floor rows are the target any N-API addon can reach here: the same syscall from an N-API function that reads no argument and no receiver; the "reading" rows add the N-API reads of the call\'s number arguments (and, for mincore, the number returned), without any check. Their distance to C is the JS→native transition plus what a syscall costs the JavaScript side afterwards (caches and TLB refilled on this VM), not argument work. Going below them would take V8 fast API calls, which Node-API does not offer (nodejs/node#54731, closed as not planned).' : `N-API floor not measured (${floorError}).`,
    mmapio ? '@riaskov/mmap-io 1.4.3 loads on Node 20 (prebuilt build/ present). The original `mmap-io` package does not build on Node 20 (per the issue; not installed here), so it is not compared.' : `@riaskov/mmap-io could not be loaded (${mmapioError}); rows skipped. The original \`mmap-io\` package does not build on Node 20.`,
  ];
  return { ...meta, rows, notes, params: { calls, rounds, cRepsPerRound: cReps, page }, raw: s, sink };
}

if (isMain(import.meta.url)) await main(meta, run);
