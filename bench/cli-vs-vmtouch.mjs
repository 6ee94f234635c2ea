// Q7. `pagewise stat` over a tree of ~20,000 warm files vs vmtouch and util-linux
// fincore on the same files (whole processes, wall time, median of interleaved rounds).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { check, distPath, fmtMs, fmtRatio, interleave, isMain, main, median, min, msSince, nowNs } from './lib/common.mjs';

export const meta = {
  id: 7,
  title: 'CLI: `pagewise stat` vs vmtouch and fincore over ~20,000 files',
  question:
    '`pagewise stat DIR` (its table of every file) on a tree of ~20,000 warm files vs `vmtouch DIR` (a summary) and `fincore FILES...` ' +
    '(a table), each a whole process. Target: pagewise stat ≤ 1.0× vmtouch (median wall time).',
};

const SIZES = [0, 100, 4096, 9000, 20000, 65536];

function version(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

/** A tree of `count` files (100 per directory, two levels), every file read once so it is cached. */
function makeTree(root, count) {
  const files = [];
  for (let d = 0; files.length < count; d++) {
    const dir = path.join(root, `d${d}`, `s${d % 7}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100 && files.length < count; f++) {
      const file = path.join(dir, `f${f}`);
      fs.writeFileSync(file, Buffer.alloc(SIZES[f % SIZES.length], (d + f) & 0xff || 1));
      files.push(file);
    }
  }
  for (const f of files) fs.readFileSync(f);
  return files;
}

// CPU time (user + system) of each run, from GNU time when it is installed: on a loaded
// machine it says more about the work done than wall time.
const GNU_TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const cpu = {};

function wall(cmd, args, env = process.env, name = undefined) {
  const [bin, argv] = GNU_TIME && name ? [GNU_TIME, ['-f', 'CPU %U %S', cmd, ...args]] : [cmd, args];
  const t0 = nowNs();
  const r = spawnSync(bin, argv, { encoding: 'utf8', env, maxBuffer: 256 * 2 ** 20 });
  const ms = msSince(t0);
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} ... failed (${r.status ?? r.signal}): ${r.stderr}`);
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  if (name && m) (cpu[name] ??= []).push((Number(m[1]) + Number(m[2])) * 1000);
  return { ms, stdout: r.stdout };
}

export async function run({ full = false } = {}) {
  const count = Number(process.env.PAGEWISE_BENCH_CLI_FILES ?? 20000);
  const rounds = full ? 9 : 5;
  const vmtouch = version('vmtouch', ['-h']) !== undefined || fs.existsSync('/usr/bin/vmtouch') ? 'vmtouch' : undefined;
  const fincoreVersion = version('fincore', ['--version']);
  if (!vmtouch) throw new Error('vmtouch is not installed (Debian: apt-get install vmtouch)');
  const cli = path.join(distPath(), 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first`);

  const base = process.env.PAGEWISE_BENCH_DIR || os.tmpdir();
  const root = fs.mkdtempSync(path.join(base, 'pagewise-bench-cli-'));
  const cleanup = () => fs.rmSync(root, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    const files = makeTree(root, count);
    // NODE_EXTRA_CA_CERTS makes every Node start-up parse those certificates before any
    // JavaScript runs (tens of ms here): a cost of the caller's environment, not of the CLI.
    // Every Node row runs without it; the start-up with it is a row of its own.
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    const nodeEnv = { ...process.env };
    delete nodeEnv.NODE_EXTRA_CA_CERTS;
    const env = { ...nodeEnv, PAGEWISE_BACKEND: 'native' };
    const walkOnly = `require(${JSON.stringify(path.join(distPath(), 'cli', 'stat', 'native.js'))}).statNative().walkFiles(${JSON.stringify(root)}, true)`;
    const pwStat = (extra = [], name = undefined) => wall(process.execPath, [cli, 'stat', ...extra, root], env, name);
    // Sanity: every tool sees the same files, all resident.
    const ours = JSON.parse(pwStat(['--json']).stdout);
    const theirs = wall('vmtouch', [root]).stdout;
    const oursVmtouch = wall(process.execPath, [cli, root], env).stdout;
    const withoutElapsed = (text) => text.replace(/Elapsed: .*/, '');
    if (withoutElapsed(oursVmtouch) !== withoutElapsed(theirs)) throw new Error(`pagewise DIR and vmtouch DIR disagree:\n${oursVmtouch}\n${theirs}`);
    const fincoreOut = fincoreVersion ? wall('fincore', ['--bytes', '--noheadings', '--output', 'PAGES', ...files]).stdout.trim().split('\n') : [];
    const fincorePages = fincoreOut.reduce((a, l) => a + Number(l.trim()), 0);

    const variants = [
      { name: 'vmtouch', fn: () => wall('vmtouch', [root], process.env, 'vmtouch').ms },
      { name: 'pagewise stat', fn: () => pwStat([], 'pagewise stat').ms },
      { name: 'pagewise stat --json', fn: () => pwStat(['--json'], 'pagewise stat --json').ms },
      // The JavaScript writer (lib/cli/stat/text.ts) over the same native rows: whether the native one earns its keep (docs/CLI.md).
      { name: 'pagewise stat, JavaScript writer', fn: () => wall(process.execPath, [cli, 'stat', root], { ...env, PAGEWISE_STAT_TEXT: 'js' }, 'pagewise stat, JavaScript writer').ms },
      { name: 'pagewise stat -s', fn: () => pwStat(['-s'], 'pagewise stat -s').ms },
      { name: 'pagewise DIR', fn: () => wall(process.execPath, [cli, root], env, 'pagewise DIR').ms },
      { name: 'node -e ""', fn: () => wall(process.execPath, ['-e', ''], nodeEnv, 'node -e ""').ms },
      { name: 'node + native walk', fn: () => wall(process.execPath, ['-e', walkOnly], env, 'node + native walk').ms },
    ];
    if (extraCa !== undefined) variants.push({ name: 'node -e "" (NODE_EXTRA_CA_CERTS)', fn: () => wall(process.execPath, ['-e', ''], process.env, 'node -e "" (NODE_EXTRA_CA_CERTS)').ms });
    if (fincoreVersion) variants.splice(1, 0, { name: 'fincore', fn: () => wall('fincore', files, process.env, 'fincore').ms });
    const s = await interleave(variants, rounds);
    const med = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)]));
    const mn = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, min(v)]));
    const ratio = med['pagewise stat'] / med.vmtouch;
    const cpuMed = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)]));
    const cpuNote = (k) => (cpuMed[k] === undefined ? '' : `; CPU ${fmtMs(cpuMed[k])} (${fmtRatio(cpuMed[k] / cpuMed.vmtouch)} of vmtouch's)`);
    const t = check(ratio, 'le', 1.0);
    const rows = [
      { variant: 'vmtouch DIR (summary)', median: fmtMs(med.vmtouch), ratio: '1.00×', note: `min ${fmtMs(mn.vmtouch)}${cpuNote('vmtouch')}` },
      ...(fincoreVersion
        ? [{ variant: 'fincore FILES... (table; file list given)', median: fmtMs(med.fincore), ratio: fmtRatio(med.fincore / med.vmtouch), note: `min ${fmtMs(mn.fincore)}${cpuNote('fincore')}` }]
        : []),
      { variant: 'pagewise stat DIR (table)', median: fmtMs(med['pagewise stat']), ratio: fmtRatio(ratio), ...t, note: `min ${fmtMs(mn['pagewise stat'])}; ${fmtRatio(med['pagewise stat'] / (med.fincore ?? NaN))} of fincore${cpuNote('pagewise stat')}` },
      { variant: 'pagewise stat --json DIR', median: fmtMs(med['pagewise stat --json']), ratio: fmtRatio(med['pagewise stat --json'] / med.vmtouch), note: cpuNote('pagewise stat --json').slice(2) },
      {
        variant: 'pagewise stat DIR, JavaScript writer (PAGEWISE_STAT_TEXT=js)',
        median: fmtMs(med['pagewise stat, JavaScript writer']),
        ratio: fmtRatio(med['pagewise stat, JavaScript writer'] / med.vmtouch),
        note: `${fmtRatio(med['pagewise stat, JavaScript writer'] / med['pagewise stat'])} of the native writer's time: the native one (native/cli/stat_text.cc) is kept while this is ≥ 1.2×${cpuNote('pagewise stat, JavaScript writer')}`,
      },
      { variant: 'pagewise stat -s DIR (summary, like vmtouch)', median: fmtMs(med['pagewise stat -s']), ratio: fmtRatio(med['pagewise stat -s'] / med.vmtouch), note: `like for like with vmtouch's output${cpuNote('pagewise stat -s')}` },
      {
        variant: "pagewise DIR (vmtouch's command line and output)",
        median: fmtMs(med['pagewise DIR']),
        ratio: fmtRatio(med['pagewise DIR'] / med.vmtouch),
        note: `vmtouch's walk in JavaScript (readdir order; lstat of directories, links and named paths) + the native open/fstat/cachestat batch for the files; context, no target${cpuNote('pagewise DIR')}`,
      },
      { variant: 'node -e "" (Node startup alone)', median: fmtMs(med['node -e ""']), ratio: fmtRatio(med['node -e ""'] / med.vmtouch), note: `part of every pagewise row${cpuNote('node -e ""')}` },
      {
        variant: 'node -e "walkFiles(DIR)" (start-up + the native walk alone)',
        median: fmtMs(med['node + native walk']),
        ratio: fmtRatio(med['node + native walk'] / med.vmtouch),
        note: `the floor of a Node CLI doing open + fstat + cachestat (+ batched close) per file, before any output${cpuNote('node + native walk')}`,
      },
      ...(extraCa !== undefined
        ? [
            {
              variant: 'node -e "" with NODE_EXTRA_CA_CERTS (as set in this environment)',
              median: fmtMs(med['node -e "" (NODE_EXTRA_CA_CERTS)']),
              ratio: fmtRatio(med['node -e "" (NODE_EXTRA_CA_CERTS)'] / med.vmtouch),
              note: `what every Node row would add here; the rows above run without it${cpuNote('node -e "" (NODE_EXTRA_CA_CERTS)')}`,
            },
          ]
        : []),
    ];
    const notes = [
      `${count} files (sizes ${SIZES.join(', ')} bytes, 100 per directory), created under ${base} and removed at exit; each read once before timing.`,
      `Wall time is what a user waits for and what the target is about; the notes add each tool's CPU time (user + system, GNU time, median): on a loaded machine Node's start-up, JIT and GC threads make its wall time suffer more than a single-threaded C tool's.`,
      `${rounds} interleaved rounds (A B C … then reversed); medians of whole-process wall times. The machine may be shared: ratios within one run are the result, absolute times are context.`,
      `Resident pages seen: pagewise ${ours.summary.cached}/${ours.summary.total} (${ours.files.length} files, source ${ours.files[0]?.source}); vmtouch "${(theirs.match(/Resident Pages: *(.*)/) ?? [])[1]?.trim()}"` +
        (fincoreVersion ? `; fincore ${fincorePages} pages.` : '.'),
      `Node rows run without NODE_EXTRA_CA_CERTS${extraCa === undefined ? ' (not set here)' : ' (set here: Node parses those certificates at every start-up; see its own row)'}.`,
      `pagewise stat: one native call walks the tree on up to 4 threads (${os.availableParallelism?.() ?? os.cpus().length} cores here) and does open (relative to the open directory) + fstat + cachestat per file, closing descriptors in runs with close_range (native/cli/stat_batch.cc); the table or JSON entries and the summary sums are made natively and written straight to the descriptor (native/cli/stat_text.cc, lib/cli/stat/counted.ts): no JavaScript object or string per file; a plain stat loads neither the library's API nor Node's stdout stream. vmtouch (single-threaded) maps each file and calls mincore; ${fincoreVersion ?? 'fincore (not installed)'}.`,
    ];
    return { ...meta, rows, notes, params: { files: count, rounds, fincore: fincoreVersion, load: os.loadavg().map((x) => +x.toFixed(1)) }, raw: s, cpu };
  } finally {
    cleanup();
  }
}

if (isMain(import.meta.url)) await main(meta, run);
