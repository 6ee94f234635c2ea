// The full hardening run (minutes, not seconds): every child script at full
// size, on the backends they apply to. Needs the built package (dist/) and
// addon (build/Release): `npm run build` first. Writes the figures to
// test/hardening/last-full-run.json (docs/RELIABILITY.md quotes them) and exits
// non-zero on any failure.
//
//   node test/hardening/full.mjs [--quick] [--only=fuzz,races,soak,truncate,issue16,producers,arenaAsync,cliSpecial]
//   (--quick: 1/10 of every figure; --only: those sections; either writes its figures to
//   last-partial-run.json, so only a whole full-size run replaces last-full-run.json)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const scale = (n) => (quick ? Math.ceil(n / 10) : n);
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',')) : undefined;
const section = (name) => only === undefined || only.has(name);

function run(script, args, backend, { gc = true } = {}) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [...(gc ? ['--expose-gc'] : []), path.join(here, script), ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 2 ** 20,
    env: { ...process.env, PAGEWISE_BACKEND: backend },
  });
  const last = r.stdout.trim().split('\n').filter(Boolean).pop();
  let json;
  try {
    json = JSON.parse(last);
  } catch {
    json = undefined;
  }
  const ok = r.status === 0 && r.signal === null;
  const line = `${ok ? 'ok  ' : 'FAIL'} ${backend.padEnd(9)} ${script} ${args.join(' ')} (${((Date.now() - started) / 1000).toFixed(1)} s)`;
  console.log(line);
  if (!ok) console.log(`     status ${r.status} signal ${r.signal}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return { ok, status: r.status, signal: r.signal, json };
}

const startedAt = Date.now();
const results = { node: process.version, kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), date: new Date().toISOString(), quick };
const steps = [];

// 1. Argument fuzzing: several seeds per backend.
if (section('fuzz')) {
  results.fuzz = {};
  for (const [backend, seeds, calls] of [
    ['native', [101, 202, 303], scale(50_000)],
    ['simulator', [404, 505], scale(50_000)],
  ]) {
    const per = [];
    for (const seed of seeds) {
      const r = run('fuzz-child.mjs', ['--seed', String(seed), '--calls', String(calls)], backend);
      steps.push(r);
      per.push(r.json);
    }
    const total = (k) => per.reduce((a, j) => a + (j?.[k] ?? 0), 0);
    const codes = {};
    for (const j of per) for (const [c, n] of Object.entries(j?.codes ?? {})) codes[c] = (codes[c] ?? 0) + n;
    results.fuzz[backend] = {
      seeds,
      calls: total('calls'),
      codedErrors: total('errors'),
      skippedForBudget: total('skippedForBudget'),
      failures: total('failures') + per.filter((j) => !j).length,
      codes,
    };
  }
}

// 2. Lifetime races (native only).
if (section('races')) {
  {
    const r = run('races-child.mjs', ['--rounds', String(scale(3000)), '--gc', String(scale(50_000)), '--workers', String(scale(100))], 'native');
    steps.push(r);
    results.races = r.json;
  }
}

// 3. Soak (native only).
if (section('soak')) {
  {
    const r = run('soak-child.mjs', ['--cycles', String(scale(1_000_000))], 'native');
    steps.push(r);
    results.soak = r.json;
  }
}

// 4. Truncated files, both backends; and the documented SIGBUS hazard (native).
if (section('truncate')) {
  results.truncate = {};
  for (const backend of ['native', 'simulator']) {
    const r = run('truncate-child.mjs', ['api'], backend, { gc: false });
    steps.push(r);
    const outcomes = Object.values(r.json ?? {}).flatMap((o) => Object.values(o));
    results.truncate[backend] = { cases: Object.keys(r.json ?? {}).length, calls: outcomes.length, untyped: outcomes.filter((o) => o.startsWith('UNTYPED')).length, signal: r.signal };
  }
  {
    const r = spawnSync(process.execPath, [path.join(here, 'truncate-child.mjs'), 'touch'], { encoding: 'utf8', env: { ...process.env, PAGEWISE_BACKEND: 'native' } });
    results.truncate.hazardSignal = r.signal;
    const ok = r.signal === 'SIGBUS';
    console.log(`${ok ? 'ok  ' : 'FAIL'} native    truncate-child.mjs touch (documented hazard: ${r.signal})`);
    steps.push({ ok });
  }
}

// 5. Issue 16: Node's async APIs racing close(), detachView() and resize(), special files
//    (path, Buffer, URL and descriptor) for every file-taking call (with a FIFO swapped in
//    under a symlink), byte-exact paths, bounds.
if (section('issue16')) {
  results.issue16 = {};
  for (const backend of ['native', 'simulator']) {
    const per = {};
    for (const [scenario, rounds] of [['async-close', scale(40)], ['resize', scale(20)], ['resize-queued', scale(50)], ['released', 1], ['special-files', scale(50)], ['paths', 1], ['bounds', 1]]) {
      const r = run('issue16-child.mjs', [scenario, String(rounds)], backend);
      steps.push(r);
      const j = r.json ?? {};
      if (scenario === 'async-close') per[scenario] = { rounds, callbacks: Object.values(j.calls ?? {}).reduce((a, b) => a + b, 0), errors: j.errors?.length };
      else if (scenario === 'special-files') per[scenario] = { calls: Object.keys(j.results ?? {}).length, swapCalls: j.swap, codes: [...new Set(Object.values(j.results ?? {}))] };
      else if (scenario === 'released') per[scenario] = { order: j.order, gcRounds: j.gcRounds };
      else per[scenario] = j;
    }
    results.issue16[backend] = per;
  }
}

// 6. VolatileCache producers that misbehave (both backends, several seeds).
if (section('producers')) {
  results.producers = {};
  for (const [backend, seeds] of [
    ['native', [11, 22, 33]],
    ['simulator', [44, 55]],
  ]) {
    const per = [];
    for (const seed of seeds) {
      const r = run('producers-child.mjs', ['--seed', String(seed), '--calls', String(scale(50_000))], backend);
      steps.push(r);
      per.push(r.json);
    }
    const total = (k) => per.reduce((a, j) => a + (j?.[k] ?? 0), 0);
    const sum = (k) => {
      const o = {};
      for (const j of per) for (const [c, n] of Object.entries(j?.[k] ?? {})) o[c] = (o[c] ?? 0) + n;
      return o;
    };
    results.producers[backend] = {
      seeds,
      calls: total('calls'),
      behaviours: Object.keys(sum('behaviours')).length,
      outcomes: sum('outcomes'),
      codes: sum('codes'),
      producerThrows: total('producerThrows'),
      handlesChecked: total('checks'),
      cachesClosedByProducers: total('caches') - per.length,
      unhandledRejections: total('unhandledRejections'),
      failures: per.flatMap((j) => j?.failures ?? ['no result']),
    };
  }
}

// 7. Node's async APIs racing free() / close() of arena buffers and cache handles (both backends).
if (section('arenaAsync')) {
  results.arenaAsync = {};
  for (const backend of ['native', 'simulator']) {
    const r = run('arena-async-child.mjs', [String(scale(40))], backend);
    steps.push(r);
    results.arenaAsync[backend] = r.json?.modes;
  }
}

// 8. The CLI on special files and on a directory entry flipping to a FIFO (native: the CLI refuses the simulator).
if (section('cliSpecial')) {
  {
    const r = run('cli-special-child.mjs', [String(scale(10))], 'native', { gc: false });
    steps.push(r);
    results.cliSpecial = r.json && { runs: r.json.runs, direct: r.json.direct, swapRuns: r.json.swapRuns, statuses: r.json.statuses, failures: r.json.failures };
  }
}

results.failures = steps.filter((s) => !s.ok).length;
results.seconds = Math.round((Date.now() - startedAt) / 1000);
if (only) results.only = [...only];
fs.writeFileSync(path.join(here, only || quick ? 'last-partial-run.json' : 'last-full-run.json'), `${JSON.stringify(results, null, 2)}\n`);

const f = results.fuzz ?? { native: {}, simulator: {} };
console.log('\nFigures');
console.log(`  calls fuzzed:   ${f.native.calls} native + ${f.simulator.calls} simulator (coded errors ${f.native.codedErrors} + ${f.simulator.codedErrors}, failures ${f.native.failures + f.simulator.failures})`);
console.log(`  races run:      ${results.races?.racesRun} async operations raced against close(); ${results.races?.gcMappings} mappings to the GC; ${results.races?.workers} workers terminated`);
console.log(`  maps lines:     ${results.races?.baseline?.lines} -> ${results.races?.end?.lines} (test file: ${results.races?.end?.fileLines})`);
console.log(`  cycles soaked:  ${results.soak?.cycles}, RSS +${results.soak?.rssGrowthMiB} MiB, maps lines +${results.soak?.mapsLineGrowth}`);
const i16 = results.issue16?.native ?? {};
console.log(`  issue 16:       ${i16['async-close']?.callbacks} async callbacks after close() (native), ${i16['special-files']?.calls} special-file calls + ${Object.values(i16['special-files']?.swapCalls ?? {}).reduce((a, b) => a + b, 0)} under a FIFO swap`);
const pr = results.producers ?? { native: { failures: [] }, simulator: { failures: [] } };
console.log(`  producers:      ${pr.native.calls} native + ${pr.simulator.calls} simulator cache calls with misbehaving producers (failures ${pr.native.failures.length + pr.simulator.failures.length})`);
const aa = results.arenaAsync?.native;
console.log(`  arena async:    native quarantine overwrote ${JSON.stringify(aa?.quarantine?.overwritten)}, default ${JSON.stringify(aa?.default?.overwritten)}`);
console.log(`  CLI special:    ${results.cliSpecial?.runs} runs (${results.cliSpecial?.swapRuns} on a flipping entry)`);
console.log(`  failures:       ${results.failures} steps, in ${results.seconds} s`);
process.exitCode = results.failures === 0 ? 0 : 1;
