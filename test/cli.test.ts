// The `pagewise` command line: in-process through main() where possible, and
// as a real process (node dist/cli.js) for lock, signals and permissions.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../lib/cli/main';
import { type CliResult, runCli, sink } from './cli-run';
import { PathFilter, clipRange, formatBytes, globToRegExp, parseRange, parseSize } from '../lib/cli/args';
import { residencyStrip } from '../lib/cli/commands/stat';
import type { StatFile } from '../lib/cli/stat/text';
import { PAGE, onKernel, pattern, pw } from './helpers';
import { readablePackage } from './unprivileged';

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const haveDist = fs.existsSync(CLI);
const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;
let fincore: string | undefined;
try {
  fincore = execFileSync('sh', ['-c', 'command -v fincore'], { encoding: 'utf8' }).trim() || undefined;
} catch {
  fincore = undefined;
}
if (onKernel && !fincore) console.warn('test/cli.test.ts: util-linux fincore is not installed: the fincore agreement test is SKIPPED');
if (!haveDist) console.warn('test/cli.test.ts: dist/cli.js is missing (run `npm test`, which builds first): process tests are SKIPPED');

type Result = CliResult;

// The table is laid out for a 100-column terminal in these tests.
const run = (argv: string[], options: { tty?: boolean; signal?: AbortSignal } = {}): Promise<Result> =>
  runCli(argv, { ...options, columns: 100 });

async function statJson(argv: string[]) {
  const r = await run(['stat', '--json', ...argv]);
  return { ...r, doc: JSON.parse(r.stdout) as StatDoc };
}

interface StatDoc {
  backend: string;
  pageSize: number;
  range: { start: number; end: number | null } | null;
  files: StatFile[];
  summary: Record<string, number | null>;
  errors: Array<{ path: string; code: string; message: string }>;
}

let dir: string | undefined;
afterAll(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});
function tmpdir(): string {
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-cli-'));
  return dir;
}

/** A file of `bytes` bytes, written back to disk (so fadvise DONTNEED can drop every page). */
function dataFile(bytes: number, name = 'data'): string {
  const file = path.join(tmpdir(), `${name}-${Math.random().toString(36).slice(2)}`);
  const fd = fs.openSync(file, 'w');
  try {
    let written = 0;
    const block = pattern(Math.min(bytes, 1 << 20) || 1);
    while (written < bytes) written += fs.writeSync(fd, block, 0, Math.min(block.length, bytes - written));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

const pages = (bytes: number) => Math.ceil(bytes / PAGE);

describe('argument helpers', () => {
  it('parses sizes with binary suffixes', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('4k')).toBe(4096);
    expect(parseSize('64K')).toBe(65536);
    expect(parseSize('1.5M')).toBe(1.5 * 2 ** 20);
    expect(parseSize('2GiB')).toBe(2 * 2 ** 30);
    expect(parseSize('1TB')).toBe(2 ** 40);
    for (const bad of ['', 'x', '-1', '1.1', '4X', '1e3', 'K']) expect(() => parseSize(bad)).toThrow(/invalid size/);
  });

  it('parses vmtouch-style ranges', () => {
    expect(parseRange('1M-2M')).toEqual({ start: 2 ** 20, end: 2 ** 21 });
    expect(parseRange('10K-')).toEqual({ start: 10240, end: undefined });
    expect(parseRange('-20K')).toEqual({ start: 0, end: 20480 });
    expect(parseRange('8K')).toEqual({ start: 0, end: 8192 });
    for (const bad of ['-', '2M-1M', '1M-1M', '0', '1-2-3', 'a-b']) expect(() => parseRange(bad)).toThrow(/invalid range/);
    expect(clipRange({ start: 4096, end: undefined }, 10000)).toEqual({ offset: 4096, length: 5904 });
    expect(clipRange({ start: 20000, end: 30000 }, 10000)).toEqual({ offset: 10000, length: 0 });
    expect(clipRange(undefined, 10)).toEqual({ offset: 0, length: 10 });
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1.5 * 2 ** 20)).toBe('1.5 MiB');
    expect(formatBytes(2 ** 20 - 1)).toBe('1.0 MiB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5.0 GiB');
  });

  it('matches globs: * ? [..] ** and basename patterns', () => {
    const m = (g: string, p: string) => globToRegExp(g).test(p);
    expect(m('*.db', 'x.db')).toBe(true);
    expect(m('*.db', 'a/x.db')).toBe(false);
    expect(m('**/*.db', 'x.db')).toBe(true);
    expect(m('**/*.db', 'a/b/x.db')).toBe(true);
    expect(m('a/**', 'a/b/c')).toBe(true);
    expect(m('a/**/c', 'a/c')).toBe(true);
    expect(m('a/**/c', 'a/x/y/c')).toBe(true);
    expect(m('?.log', 'x.log')).toBe(true);
    expect(m('?.log', '/.log')).toBe(false);
    expect(m('[ab].txt', 'b.txt')).toBe(true);
    expect(m('[!ab].txt', 'b.txt')).toBe(false);
    expect(m('[!ab].txt', 'c.txt')).toBe(true);
    expect(m('x.(1)+', 'x.(1)+')).toBe(true);
    expect(m('\\*', '*')).toBe(true);
    expect(m('\\*', 'a')).toBe(false);
    // The dialect is this small one, not bash's extglob (docs/CLI.md, "Patterns"): braces,
    // parentheses, a leading '!' and '@(...)' are characters; `a/**` is what is below a.
    expect(m('*.{c,h}', 'x.{c,h}')).toBe(true);
    expect(m('*.{c,h}', 'x.c')).toBe(false);
    expect(m('(a|b)', '(a|b)')).toBe(true);
    expect(m('(a|b)', 'a')).toBe(false);
    expect(m('@(a)', '@(a)')).toBe(true);
    expect(m('!x', '!x')).toBe(true);
    expect(m('!x', 'y')).toBe(false);
    expect(m('a/**', 'a')).toBe(false);
    expect(m('*', '.hidden')).toBe(true);
    const f = new PathFilter(['*.db', 'keep/*'], ['skip']);
    expect(f.accept('deep/dir/x.db')).toBe(true);
    expect(f.accept('keep/x.log')).toBe(true);
    expect(f.accept('x.log')).toBe(false);
    expect(f.descend('a/skip')).toBe(false);
    expect(f.descend('a/b')).toBe(true);
  });

  it('draws the residency strip', () => {
    expect(residencyStrip(new Uint8Array([1, 1, 0, 0]))).toBe('OO  ');
    const v = new Uint8Array(120);
    v.fill(1, 0, 60);
    v[61] = 1;
    const s = residencyStrip(v);
    expect(s).toHaveLength(60);
    expect(s).toBe(`${'O'.repeat(30)}o${' '.repeat(29)}`);
    expect(residencyStrip(new Uint8Array(0))).toBe('');
  });
});

describe('usage (both backends: checked before any file is touched)', () => {
  it('usage errors exit 2 with the command and a hint to --help', async () => {
    const file = dataFile(PAGE);
    for (const argv of [
      [],
      ['frobnicate'],
      ['stat'],
      ['stat', '--bogus', file],
      ['stat', '--range', '2M-1M', file],
      ['stat', '--range'],
      ['touch', '--json', file],
      ['lock', '-v', file],
      ['--range', '1M', 'stat', file],
      ['help', 'frobnicate'],
      ['demo', 'extra'],
      ['demo', '--limit', '1.5K'],
    ]) {
      const u = await run(argv);
      expect(u.code, argv.join(' ')).toBe(2);
      expect(u.stdout, argv.join(' ')).toBe('');
      expect(u.stderr.length, argv.join(' ')).toBeGreaterThan(0);
    }
    const u = await run(['stat', '--range', 'x', file]);
    expect(u.stderr).toBe(
      "pagewise stat: invalid range 'x': expected a number of bytes with an optional K, M, G or T suffix (e.g. 4096, 64K, 1.5G)\nTry 'pagewise stat --help'.\n",
    );
  });

  it('--help for every command exits 0 and documents the exit codes', async () => {
    for (const argv of [['--help'], ['-h'], ['help'], ...['stat', 'touch', 'evict', 'lock', 'demo'].flatMap((c) => [[c, '--help'], [c, '-h'], ['help', c]])]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stdout, argv.join(' ')).toMatch(/^Usage: pagewise/);
      expect(r.stdout, argv.join(' ')).toContain('Exit status:');
      expect(r.stderr).toBe('');
    }
    expect((await run(['stat', '--help'])).stdout).toContain('--range RANGE');
    expect((await run(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

});

describe.skipIf(!onKernel)('pagewise stat / touch / evict (native only: the file commands refuse the simulator)', () => {
  it('reports a freshly written file as fully cached (--json shape)', async () => {
    const file = dataFile(5 * PAGE + 123);
    const { code, doc, stderr } = await statJson([file]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(doc.backend).toBe(pw.kind);
    expect(doc.pageSize).toBe(PAGE);
    expect(doc.range).toBeNull();
    expect(doc.errors).toEqual([]);
    expect(doc.files).toHaveLength(1);
    const f = doc.files[0];
    expect(f).toMatchObject({ path: file, size: 5 * PAGE + 123, offset: 0, length: 5 * PAGE + 123, cached: 6, total: 6, percent: 100 });
    expect(f.residentBytes).toBe(6 * PAGE);
    expect(['cachestat', 'mincore']).toContain(f.source);
    for (const k of ['dirty', 'writeback', 'evicted', 'recentlyEvicted'] as const) {
      if (f.source === 'cachestat') expect(typeof f[k]).toBe('number');
      else expect(f[k]).toBeNull();
    }
    expect(f.strip).toBeUndefined();
    expect(doc.summary).toMatchObject({ files: 1, directories: 0, errors: 0, cached: 6, total: 6, percent: 100, size: 5 * PAGE + 123 });
  });

  it('evict then stat: 0% (native: the kernel drops written-back pages)', async () => {
    const file = dataFile(64 * PAGE);
    const e = await run(['evict', file]);
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^evicted 1 file: 256\.0 KiB; still resident 0 B \(0\.0%\), 0\/64 pages\n$/);
    const { doc } = await statJson([file]);
    expect(doc.files[0]).toMatchObject({ cached: 0, total: 64, percent: 0 });
    const text = await run(['stat', file]);
    expect(text.stdout).toContain('0/64 pages resident (0.0%, 0 B)');
  });

  it('touch then stat: 100%; no progress bar when stdout is not a terminal', async () => {
    const file = dataFile(300 * PAGE);
    await run(['evict', file]);
    const t = await run(['touch', file]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^touched 1 file: 1\.2 MiB in \d+\.\d\d s/);
    expect(t.stdout).not.toContain('[');
    const { doc } = await statJson([file]);
    expect(doc.files[0]).toMatchObject({ cached: 300, total: 300, percent: 100 });
  });

  it('touch draws a progress bar on a terminal (and not with --no-progress)', async () => {
    const file = dataFile(16 * PAGE);
    const t = await run(['touch', file], { tty: true });
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('touch [');
    expect(t.stdout).toMatch(/touched 1 file: 64\.0 KiB/);
    const quiet = await run(['touch', '--no-progress', file], { tty: true });
    expect(quiet.stdout).not.toContain('touch [');
  });

  it('--range: stat, evict and touch only the bytes named (rounded out to pages)', async () => {
    const file = dataFile(64 * PAGE);
    let r = await statJson(['--range', `${4 * PAGE}-${12 * PAGE}`, file]);
    expect(r.doc.range).toEqual({ start: 4 * PAGE, end: 12 * PAGE });
    expect(r.doc.files[0]).toMatchObject({ offset: 4 * PAGE, length: 8 * PAGE, total: 8 });
    r = await statJson(['--range', `${PAGE / 2}-${PAGE + 1}`, file]);
    expect(r.doc.files[0].total).toBe(2);
    r = await statJson(['--range', '-8K', file]);
    expect(r.doc.range).toEqual({ start: 0, end: 8192 });
    r = await statJson(['--range=-8K', file]);
    expect(r.doc.range).toEqual({ start: 0, end: 8192 });
    r = await statJson(['--range', '8K', file]);
    expect(r.doc.files[0].total).toBe(Math.ceil(8192 / PAGE));
    r = await statJson(['--range', `${60 * PAGE}-`, file]);
    expect(r.doc.files[0]).toMatchObject({ total: 4, length: 4 * PAGE });
    r = await statJson(['--range', '1G-2G', file]);
    expect(r.code).toBe(0);
    expect(r.doc.files[0]).toMatchObject({ total: 0, cached: 0, length: 0 });

    // Evict the second half only.
    await run(['evict', file]);
    await run(['touch', file]);
    expect((await run(['evict', '--range', `${32 * PAGE}-`, file])).code).toBe(0);
    r = await statJson(['--verbose', file]);
    if (onKernel) {
      expect(r.doc.files[0]).toMatchObject({ cached: 32, total: 64 });
      const v = new Uint8Array(64).fill(1, 0, 32);
      expect(r.doc.files[0].strip).toBe(residencyStrip(v));
      expect(r.doc.files[0].strip).toMatch(/^O{29}[Oo ][ ]{29}[ ]?$/);
    }
    const text = await run(['stat', '-v', file]);
    expect(text.stdout).toContain(`  [${r.doc.files[0].strip}] ${r.doc.files[0].cached}/64\n`);
  });

  it('reports missing files, non-regular files and usage errors with exit codes 1 and 2', async () => {
    const file = dataFile(PAGE);
    const missing = path.join(tmpdir(), 'no-such-file');
    const r = await statJson([missing, file, '/dev/null']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`pagewise: ${missing}: No such file or directory\n`);
    expect(r.stderr).toContain('pagewise: /dev/null: Not a regular file or directory\n');
    expect(r.doc.files.map((f) => f.path)).toEqual([file]); // the others are still processed
    expect(r.doc.errors).toEqual([
      { path: missing, code: 'ENOENT', message: 'No such file or directory' },
      { path: '/dev/null', code: 'ERR_NOT_REGULAR_FILE', message: 'Not a regular file or directory' },
    ]);
    expect(r.doc.summary.errors).toBe(2);
    for (const cmd of ['touch', 'evict', 'lock']) {
      const e = await run([cmd, missing]);
      expect(e.code, cmd).toBe(1);
      expect(e.stderr, cmd).toContain('No such file or directory');
    }

  });

  it('walks directories recursively with --include / --exclude', async () => {
    const root = fs.mkdtempSync(path.join(tmpdir(), 'tree-'));
    const mk = (rel: string, bytes = PAGE) => {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), pattern(bytes));
    };
    mk('a.db');
    mk('a.log');
    mk('sub/b.db', 2 * PAGE);
    mk('sub/deep/c.db');
    mk('cache/d.db');
    mk('sub/cache/e.db');
    fs.symlinkSync(path.join(root, 'a.db'), path.join(root, 'link.db')); // not followed inside a directory
    fs.linkSync(path.join(root, 'a.db'), path.join(root, 'hard.db')); // the same file: taken once
    const rels = (doc: StatDoc) => doc.files.map((f) => path.relative(root, f.path)).sort();

    let r = await statJson([root]);
    expect(r.code).toBe(0);
    expect(rels(r.doc)).toEqual(['a.db', 'a.log', 'cache/d.db', 'sub/b.db', 'sub/cache/e.db', 'sub/deep/c.db']);
    expect(r.doc.summary.directories).toBe(5);

    r = await statJson(['--include', '*.db', '--exclude', 'cache', root]);
    expect(rels(r.doc)).toEqual(['a.db', 'sub/b.db', 'sub/deep/c.db']);

    r = await statJson(['--include', 'sub/**', '--exclude', 'sub/cache', root]);
    expect(rels(r.doc)).toEqual(['sub/b.db', 'sub/deep/c.db']);

    r = await statJson(['--exclude', '*.db', root, path.join(root, 'a.db')]); // files named on the command line are always taken
    expect(rels(r.doc)).toEqual(['a.db', 'a.log']);

    const text = await run(['stat', '--include', 'sub/*.db', root]);
    expect(text.stdout).toMatch(/1 file in 5 directories, 8\.0 KiB: 2\/2 pages resident/);
  });

  it('works past 4 GiB: touch and stat a range of a sparse 5 GiB file', async () => {
    const file = path.join(tmpdir(), 'sparse-5g');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 5 * 2 ** 30);
    try {
      await run(['evict', file]);
      const range = `${4 * 2 ** 30 + PAGE}-${4 * 2 ** 30 + 8 * 2 ** 20}`;
      const t = await run(['touch', '--range', range, file]);
      expect(t.code).toBe(0);
      expect(t.stdout).toMatch(/^touched 1 file: 8\.0 MiB/);
      const inRange = await statJson(['--range', range, file]);
      expect(inRange.doc.files[0]).toMatchObject({ offset: 4 * 2 ** 30 + PAGE, total: 8 * 2 ** 20 / PAGE - 1, percent: 100 });
      // (mmap read-around may read some pages just before the range)
      const before = await statJson(['--range', '-3G', file]);
      expect(before.doc.files[0]).toMatchObject({ total: (3 * 2 ** 30) / PAGE, cached: 0 });
    } finally {
      fs.rmSync(file);
    }
  });

  it.skipIf(!onKernel || !fincore)('agrees with util-linux fincore (native only: fincore asks the kernel)', async () => {
    const full = dataFile(40 * PAGE + 17, 'full');
    const none = dataFile(33 * PAGE, 'none');
    const half = dataFile(32 * 2 ** 20, 'half'); // evicted, then the first quarter populated (readahead may add some)
    const holes = dataFile(1024 * PAGE, 'holes'); // cached, then every other 64-page block evicted
    const empty = dataFile(0, 'empty');
    const tiny = dataFile(1, 'tiny');
    await run(['touch', full, tiny]);
    await run(['evict', none, half]);
    {
      using m = pw.mapFile(half, { length: 8 * 2 ** 20 });
      await m.populate({ mode: 'read' });
    }
    // Written pages may sit in large folios (ext4, Linux 6.16+) that a partial DONTNEED cannot drop:
    // read the file back in first (readahead folios are smaller).
    await run(['evict', holes]);
    await run(['touch', holes]);
    // (The kernel drops only whole folios, which may be large: how many pages go is its call.)
    for (let b = 0; b < 1024; b += 128) pw.evict(holes, { offset: b * PAGE, length: 64 * PAGE });
    const files = [full, none, half, holes, empty, tiny];
    const { doc, code } = await statJson(files);
    expect(code).toBe(0);
    const lines = execFileSync(fincore as string, ['--bytes', '--noheadings', '--output', 'RES,PAGES,SIZE,FILE', ...files], { encoding: 'utf8' })
      .trim()
      .split('\n');
    expect(lines).toHaveLength(files.length);
    const theirs = lines.map((l) => {
      const [res, pagesRes, size, ...name] = l.trim().split(/\s+/);
      return { path: name.join(' '), residentBytes: Number(res), cached: Number(pagesRes), size: Number(size) };
    });
    const ours = doc.files.map((f) => ({ path: f.path, residentBytes: f.residentBytes, cached: f.cached, size: f.size }));
    expect(ours).toEqual(theirs);
    // And the cases are what they say they are.
    const by = Object.fromEntries(doc.files.map((f) => [f.path, f]));
    expect(by[full].cached).toBe(41);
    expect(by[none].cached).toBe(0);
    expect(by[half].cached).toBeGreaterThanOrEqual(8 * 2 ** 20 / PAGE);
    expect(by[half].cached).toBeLessThan(by[half].total);
    expect(by[holes].cached).toBeGreaterThan(0);
    expect(by[holes].cached).toBeLessThan(by[holes].total);
    expect(by[empty]).toMatchObject({ cached: 0, total: 0 });
    expect(by[tiny]).toMatchObject({ cached: 1, total: 1 });
  });
});

describe.skipIf(!onKernel)('pagewise lock (native only: the file commands refuse the simulator)', () => {
  it('locks in-process until the signal, then unlocks and returns 0', async () => {
    const file = dataFile(32 * PAGE);
    const ac = new AbortController();
    const out = sink();
    const err = sink();
    const done = main(['lock', file], { stdout: out.stream, stderr: err.stream, signal: ac.signal });
    for (let i = 0; i < 200 && !out.chunks.join('').includes('waiting for SIGINT'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(out.chunks.join('')).toContain(`locked ${file} (128.0 KiB)\n`);
    expect(pw.fileResidency(file).percent).toBe(100);
    ac.abort();
    expect(await done).toBe(0);
    expect(out.chunks.join('')).toMatch(/unlocking 1 file\n$/);
    expect(err.chunks.join('')).toBe('');
  });

  it.skipIf(!haveDist)('node dist/cli/main.js lock: resident and mlocked (VmLck) until SIGINT / SIGTERM, exit 0', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const file = dataFile(256 * PAGE);
      const small = dataFile(3 * PAGE + 1);
      await run(['evict', file, small]);
      const child = spawn(process.execPath, [CLI, 'lock', file, small], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d;
          if (stdout.includes('waiting for SIGINT')) resolve();
        });
        void exited.then(([c]) => reject(new Error(`lock exited early (${c}): ${stdout} ${stderr}`)));
      });
      expect(stdout).toContain(`locked ${file} (1.0 MiB)\nlocked ${small} (12.0 KiB)\nlocked 2 files, 1.0 MiB;`);
      if (onKernel) {
        expect(pw.fileResidency(file).percent).toBe(100);
        expect(pw.fileResidency(small).percent).toBe(100);
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const vmlck = Number(/VmLck:\s+(\d+) kB/.exec(status)?.[1]);
        expect(vmlck * 1024).toBeGreaterThanOrEqual(256 * PAGE + 4 * PAGE);
        // The page cache is locked, not private copies of it: no anonymous memory the size of the file.
        const anon = Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
        expect(anon).toBeLessThan(64 * 2 ** 20);
        // While locked, evict cannot drop the pages.
        await run(['evict', file]);
        expect(pw.fileResidency(file).percent).toBe(100);
      }
      child.kill(signal);
      const [code, sig] = await exited;
      expect({ code, sig, signal }).toEqual({ code: 0, sig: null, signal });
      expect(stdout).toMatch(/unlocking 2 files\n$/);
      expect(stderr).toBe('');
    }
  });

  it.skipIf(!haveDist || !isRoot)('permission errors: a file the user cannot read (spawned as nobody)', () => {
    const secret = dataFile(PAGE, 'secret');
    fs.chmodSync(secret, 0o600);
    fs.chmodSync(tmpdir(), 0o755);
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [path.join(readablePackage(), 'dist', 'cli', 'main.js'), 'stat', secret], { uid: 65534, gid: 65534, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = (e as { stderr: string }).stderr;
    }
    expect(status).toBe(1);
    expect(stderr).toContain(`pagewise: ${secret}: Permission denied`);
  });

  it.skipIf(!haveDist || !isRoot || !onKernel)(
    'a readable file the user neither owns nor can write: a clear error, not the 100% mincore would claim (native only)',
    () => {
      const shared = dataFile(8 * PAGE, 'shared');
      fs.chmodSync(shared, 0o644);
      fs.chmodSync(tmpdir(), 0o755);
      pw.evict(shared);
      let status = 0;
      let stderr = '';
      try {
        execFileSync(process.execPath, [path.join(readablePackage(), 'dist', 'cli', 'main.js'), 'stat', shared], { uid: 65534, gid: 65534, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        status = (e as { status: number }).status;
        stderr = (e as { stderr: string }).stderr;
      }
      expect(status).toBe(1);
      expect(stderr).toContain('only for files you own or can write');
    },
  );
});

describe('pagewise demo', () => {
  it.skipIf(!onKernel)('runs the volatile-cache-under-pressure example (native only: it needs the kernel)', async () => {
    const r = await run(['demo']);
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.code).toBe(0);
  }, 300_000); // two children in a memory cgroup: minutes on a loaded machine
});
