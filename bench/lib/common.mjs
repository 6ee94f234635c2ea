// Shared helpers for the pagewise benchmarks: machine info, C compilation,
// statistics, interleaved (A B A B ...) measurement, result tables.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
export const BUILD_DIR = path.join(BENCH_DIR, '.build');
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** argv flags shared by every question file. */
export function parseArgs(argv = process.argv.slice(2)) {
  const args = { full: false, json: undefined, child: undefined, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--full') args.full = true;
    else if (a === '--quick') args.full = false;
    else if (a === '--json') args.json = argv[++i];
    else if (a === '--child') args.child = argv[++i];
    else args.rest.push(a);
  }
  return args;
}

/** The package under test: the built dist/ (PAGEWISE_DIST overrides, for development). */
export async function loadPagewise() {
  const dist = process.env.PAGEWISE_DIST ? path.resolve(process.env.PAGEWISE_DIST) : path.join(ROOT, 'dist');
  const entry = path.join(dist, 'index.js');
  if (!fs.existsSync(entry)) {
    throw new Error(`bench: ${entry} is missing; build it first with \`npx tsc -p tsconfig.build.json\``);
  }
  const mod = await import(pathToFileURL(entry).href);
  const pw = mod.default && mod.default.map ? mod.default : mod;
  if (pw.backend !== 'native') throw new Error(`bench: pagewise loaded the '${pw.backend}' backend; benchmarks need the native addon`);
  return pw;
}

export function distPath() {
  return process.env.PAGEWISE_DIST ? path.resolve(process.env.PAGEWISE_DIST) : path.join(ROOT, 'dist');
}

function readFirst(file, re) {
  try {
    const m = fs.readFileSync(file, 'utf8').match(re);
    return m ? m[1].trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Machine, kernel, Node: recorded with every result. */
export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu: readFirst('/proc/cpuinfo', /model name\s*:\s*(.*)/) ?? cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: +(os.totalmem() / GiB).toFixed(1),
    swap: readFirst('/proc/meminfo', /SwapTotal:\s*(.*)/),
    thp: readFirst('/sys/kernel/mm/transparent_hugepage/enabled', /(.*)/),
    kernel: `${os.type()} ${os.release()}`,
    arch: process.arch,
    node: process.version,
    v8: process.versions.v8,
    cc: ccVersion(),
    date: new Date().toISOString(),
  };
}

function ccVersion() {
  try {
    return execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    return 'unavailable';
  }
}

/** Compile bench/c/<name>.c with the machine's cc into bench/.build/<name> (cached by mtime). */
export function compileC(name, extra = []) {
  const src = path.join(BENCH_DIR, 'c', `${name}.c`);
  const out = path.join(BUILD_DIR, name);
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  const newest = Math.max(fs.statSync(src).mtimeMs, fs.statSync(path.join(BENCH_DIR, 'c', 'timing.h')).mtimeMs);
  const stale = !fs.existsSync(out) || fs.statSync(out).mtimeMs < newest;
  if (stale) {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-o', out, src, ...extra], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}

/** Run a compiled baseline; it prints one JSON object on stdout. */
export function runC(bin, args) {
  const r = spawnSync(bin, args.map(String), { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export const nowNs = () => process.hrtime.bigint();
export const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
export const min = (xs) => Math.min(...xs);
export const max = (xs) => Math.max(...xs);
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/**
 * Interleave variants: rounds x (A B C ...), reversing the order every other
 * round so neither variant always runs first. Each fn returns one sample (a
 * number) or an array of samples. Returns { name: samples[] }.
 */
export async function interleave(variants, rounds) {
  const samples = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const s = await v.fn(r);
      if (Array.isArray(s)) samples[v.name].push(...s);
      else samples[v.name].push(s);
    }
  }
  return samples;
}

/** Format a duration given in ms. */
export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 1) return `${ms.toFixed(ms >= 100 ? 0 : 2)} ms`;
  if (ms >= 0.001) return `${(ms * 1000).toFixed(ms * 1000 >= 100 ? 0 : 2)} µs`;
  return `${(ms * 1e6).toFixed(0)} ns`;
}
export const fmtNs = (ns) => fmtMs(ns / 1e6);
export const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(x < 2 ? 3 : 2)}×` : String(x));
export const fmtMiB = (bytes) => `${(bytes / MiB).toFixed(0)} MiB`;

/** A target check: 'le' (ratio must be <= bound) or 'ge' (>= bound). */
export function check(ratio, op, bound) {
  const met = op === 'le' ? ratio <= bound : ratio >= bound;
  return { met, target: `${op === 'le' ? '≤' : '≥'} ${bound}×` };
}

/** Markdown table of a result's rows. */
export function markdownTable(rows) {
  const cols = ['variant', 'median', 'ratio', 'target', 'met', 'note'];
  const head = `| ${cols.join(' | ')} |\n|${cols.map(() => '---').join('|')}|`;
  const body = rows
    .map((r) =>
      `| ${cols
        .map((c) => {
          const v = r[c];
          if (c === 'met') return v === true ? 'met' : v === false ? '**missed**' : '';
          return v === undefined ? '' : String(v).replace(/\|/g, '\\|');
        })
        .join(' | ')} |`,
    )
    .join('\n');
  return `${head}\n${body}`;
}

export function resultMarkdown(res) {
  let md = `## ${res.id}. ${res.title}\n\n${res.question}\n\n`;
  md += markdownTable(res.rows) + '\n\n';
  for (const n of res.notes ?? []) md += `- ${n}\n`;
  if (res.params) md += `- Parameters: \`${JSON.stringify(res.params)}\`\n`;
  return md;
}

/** Standalone entry: run a question, print it, optionally write JSON for run.mjs. */
export async function main(meta, run) {
  const args = parseArgs();
  if (args.child) return; // the question file handles its own child mode
  const t0 = Date.now();
  let res;
  try {
    res = await run({ full: args.full });
  } catch (err) {
    res = { id: meta.id, title: meta.title, question: meta.question, error: String(err?.stack ?? err), rows: [], notes: [`Did not run: ${err?.message ?? err}`] };
    process.exitCode = 1;
  }
  res.seconds = +((Date.now() - t0) / 1000).toFixed(1);
  res.machine = machineInfo();
  res.mode = args.full ? 'full' : 'quick';
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(res, null, 2));
  else console.log('\n' + resultMarkdown(res));
}

/** True when this module is the entry point. */
export function isMain(importMetaUrl) {
  return process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(importMetaUrl);
}

/**
 * A large test file (filled with non-zero pseudo-random data) in PAGEWISE_BENCH_DIR (bench/run.mjs
 * sets it to a scratch directory it removes at the end), else in the system's temporary
 * directory, removed when this process exits.
 */
export function ensureBigFile(size = GiB, name = 'pagewise-bench-1g.bin') {
  const dir = process.env.PAGEWISE_BENCH_DIR || os.tmpdir();
  const file = path.join(dir, process.env.PAGEWISE_BENCH_DIR ? name : `${process.pid}-${name}`);
  if (fs.existsSync(file) && fs.statSync(file).size === size) return file;
  if (!process.env.PAGEWISE_BENCH_DIR) process.once('exit', () => fs.rmSync(file, { force: true }));
  const fd = fs.openSync(file + '.tmp', 'w');
  const chunk = Buffer.allocUnsafe(16 * MiB);
  let x = 0x9e3779b9 >>> 0;
  for (let i = 0; i < chunk.length; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    chunk.writeUInt32LE(x, i);
  }
  for (let off = 0; off < size; off += chunk.length) {
    chunk.writeUInt32LE(off / chunk.length, 0); // chunks differ
    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - off), off);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(file + '.tmp', file);
  return file;
}

/** Read a file through the page cache so it is fully cached. */
export function warmFile(file) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 * MiB);
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

/** /proc/self/status fields in bytes (VmHWM, VmRSS, RssAnon, RssFile). */
export function procStatus() {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const out = {};
  for (const k of ['VmHWM', 'VmRSS', 'RssAnon', 'RssFile', 'RssShmem']) {
    const m = text.match(new RegExp(`${k}:\\s*(\\d+) kB`));
    if (m) out[k] = Number(m[1]) * 1024;
  }
  return out;
}
