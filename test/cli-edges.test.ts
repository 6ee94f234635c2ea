// The CLI at its edges: it refuses the simulator, answers vmtouch's flags, rejects bad
// globs, survives files swapped for FIFOs and names with newlines; vmtouch-like options
// (--max-size, --follow, --one-file-system, --files-from, -q, lock --daemon), touch of
// missing pages only, and snapshots (stat --json --pages, touch --from).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPagewise } from '../lib/index';
import { PathFilter } from '../lib/cli/args';
import { evictCommand } from '../lib/cli/commands/evict';
import { lockCommand } from '../lib/cli/commands/lock';
import { statCommand } from '../lib/cli/commands/stat';
import { touchCommand } from '../lib/cli/commands/touch';
import type { Run } from '../lib/cli/run';
import { collectFiles, countsOf } from '../lib/cli/files';
import { FIELD, statNative, statPaths } from '../lib/cli/stat/native';
import { findMemoryCgroup } from '../lib/cli/demo';
import { EXIT_UNAVAILABLE } from '../lib/cli/main';
import { runCli, sink } from './cli-run';
import { PAGE, onKernel, pattern, pw } from './helpers';

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const haveDist = fs.existsSync(CLI);
if (!haveDist) console.warn('test/cli-edges.test.ts: dist/cli/main.js is missing (run `npm test`, which builds first): process tests are SKIPPED');

let nativeAvailable = true;
try {
  createPagewise('native');
} catch {
  nativeAvailable = false;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-cli-edges-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let serial = 0;
function file(bytes: number, name = 'f'): string {
  const f = path.join(root, `${name}-${serial++}`);
  const fd = fs.openSync(f, 'w');
  try {
    if (bytes > 0) fs.writeSync(fd, pattern(bytes));
    fs.fsyncSync(fd); // written back: evict can drop every page
  } finally {
    fs.closeSync(fd);
  }
  return f;
}
function dir(name = 'd'): string {
  const d = path.join(root, `${name}-${serial++}`);
  fs.mkdirSync(d);
  return d;
}

const run = (argv: string[]) => runCli(argv);
function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, input, timeout: 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
function bareRun(files: string[], extra: Partial<Run> = {}): Run {
  const out = sink();
  const err = sink();
  return {
    pw,
    io: { stdout: out.stream, stderr: err.stream },
    files: files.map((p) => ({ path: p, size: 0 })),
    directories: 0,
    failures: [],
    range: undefined,
    verbose: false,
    ...extra,
  };
}

describe('the simulator: the CLI refuses, the API says what it is (both projects)', () => {
  it.skipIf(!haveDist)('stat / touch / evict / lock exit 69 with the reason and how to get the addon; --json carries the backend', () => {
    const f = file(8 * PAGE);
    for (const cmd of ['stat', 'touch', 'evict', 'lock']) {
      const r = spawnCli([cmd, f], { PAGEWISE_BACKEND: 'simulator' });
      expect(r.code, cmd).toBe(EXIT_UNAVAILABLE);
      expect(r.stdout, cmd).toBe('');
      expect(r.stderr, cmd).toContain(`pagewise ${cmd}: the native addon is not available (PAGEWISE_BACKEND=simulator is set)`);
      expect(r.stderr, cmd).toContain('npm rebuild pagewise');
    }
    const j = spawnCli(['stat', '--json', f], { PAGEWISE_BACKEND: 'simulator' });
    expect(j.code).toBe(EXIT_UNAVAILABLE);
    const doc = JSON.parse(j.stdout) as { backend: string; error: { code: string; fix: string } };
    expect(doc.backend).toBe('simulator');
    expect(doc.error.code).toBe('ERR_PAGEWISE_NATIVE_UNAVAILABLE');
    expect(doc.error.fix).toContain('npm rebuild pagewise');
    // Usage errors are still usage errors (2), and no file was looked at.
    expect(spawnCli(['stat', '--bogus', f], { PAGEWISE_BACKEND: 'simulator' }).code).toBe(2);
  });

  it.skipIf(!haveDist || !nativeAvailable)('on the native backend --json says so', () => {
    const f = file(PAGE);
    const r = spawnCli(['stat', '--json', f], { PAGEWISE_BACKEND: 'native' });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { backend: string }).backend).toBe('native');
  });

  it('fileResidency marks simulated numbers (source "simulator", simulated: true); native ones are not', () => {
    const f = file(4 * PAGE);
    const sim = createPagewise('simulator');
    const r = sim.fileResidency(f);
    expect(r).toMatchObject({ simulated: true, source: 'simulator', total: 4 });
    expect(sim.fileResidency(f, { pages: true })).toMatchObject({ simulated: true, source: 'simulator' });
    if (nativeAvailable) {
      const real = createPagewise('native').fileResidency(f);
      expect(real.simulated).toBe(false);
      expect(['cachestat', 'mincore']).toContain(real.source);
    }
    expect(pw.fileResidency(f).simulated).toBe(!onKernel);
  });

  it.skipIf(!nativeAvailable)('evict and prefetch on the simulator change its model only, never this machine’s page cache', () => {
    const f = file(64 * PAGE);
    const real = createPagewise('native');
    const sim = createPagewise('simulator');
    fs.readFileSync(f); // cached for real
    const before = real.fileResidency(f).cached;
    expect(before).toBe(64);
    sim.evict(f);
    expect(sim.fileResidency(f)).toMatchObject({ cached: 0, simulated: true }); // the model dropped it
    expect(real.fileResidency(f).cached).toBe(before); // the kernel did not
    real.evict(f);
    const evicted = real.fileResidency(f).cached;
    sim.prefetch(f);
    expect(sim.fileResidency(f)).toMatchObject({ cached: 64, simulated: true });
    expect(real.fileResidency(f).cached).toBe(evicted);
  });
});

describe('vmtouch users and invalid globs (both projects: usage is checked first)', () => {
  it("a vmtouch verb inside a pagewise command is answered with the pagewise spelling, exit 2", async () => {
    const f = file(PAGE);
    const cases: Array<[string[], string]> = [
      [['stat', '-t', f], "'pagewise touch <paths>' (or vmtouch's own command line: 'pagewise -t <paths>')"],
      [['stat', '-e', f], "'pagewise evict <paths>'"],
      [['stat', '-l', f], "'pagewise lock <paths>'"],
      [['touch', '-L', f], "'pagewise lock <paths>'"],
      [['stat', '-d', f], "'pagewise lock --daemon [--pid-file FILE] <paths>'"],
      [['touch', '-P', 'x.pid', f], "'--pid-file FILE' of 'pagewise lock --daemon'"],
      [['lock', '-v', f], "'-v' of stat (residency strips), touch and evict"],
      [['touch', '-w', f], "vmtouch's -w is the default here"],
    ];
    for (const [argv, hint] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr, argv.join(' ')).toContain(hint);
      expect(r.stderr, argv.join(' ')).not.toContain('place it at the end'); // parseArgs' own text is gone
    }
    const other = await run(['stat', '-z', f]);
    expect(other.stderr).toBe("pagewise stat: unknown option '-z'\nTry 'pagewise stat --help'.\n");
    // A word that is neither a command nor a path is a typo, not vmtouch's command line.
    const typo = await run(['stats', f]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("unknown command 'stats'");
    // stat -q is quiet; it does not go with --json or -v.
    expect((await run(['stat', '-q', '--json', f])).code).toBe(2);
    expect((await run(['stat', '-q', '-v', f])).code).toBe(2);
  });

  it("invalid globs ('[', '[a-', '\\', '[z-a]') exit 2 and say why", async () => {
    const d = dir();
    for (const glob of ['[', '[a-', '\\', '[z-a]']) {
      for (const opt of ['--include', '--exclude']) {
        const r = await run(['stat', opt, glob, d]);
        expect(r.code, `${opt} ${glob}`).toBe(2);
        expect(r.stderr, `${opt} ${glob}`).toContain(`invalid glob '${glob}'`);
      }
    }
  });
});

describe.skipIf(!onKernel)('files that change under the CLI (native only: the file commands refuse the simulator)', () => {
  it('a file swapped for a FIFO after the walk: stat, evict, touch and lock report it and do not hang', async () => {
    const d = dir('fifo');
    const victim = path.join(d, 'data');
    fs.writeFileSync(victim, pattern(4 * PAGE));
    const collected = collectFiles([d], new PathFilter(), statNative());
    expect(collected.files.map((f) => f.path)).toEqual([victim]);
    fs.rmSync(victim);
    execFileSync('mkfifo', [victim]);
    // The batch opens O_NONBLOCK: the FIFO opens at once and is reported as not regular.
    const rows = statPaths(statNative(), [victim], true);
    expect(rows.rows[FIELD.errno]).toBe(0);
    expect(rows.rows[FIELD.regular]).toBe(0);
    for (const command of ['stat', 'evict', 'touch', 'lock'] as const) {
      const r = bareRun([victim]);
      const code =
        command === 'stat'
          ? statCommand(r, true)
          : command === 'evict'
            ? evictCommand(r)
            : command === 'touch'
              ? await touchCommand(r, false)
              : await lockCommand(r);
      expect(code, command).toBe(1);
      expect(r.failures, command).toEqual([{ path: victim, code: 'ERR_NOT_REGULAR_FILE', reason: 'Not a regular file or directory' }]);
    }
  });

  it('the native walk (no filters) finds what the JavaScript walk (filters) finds, in the same order', () => {
    const d = dir('walks');
    for (const rel of ['b/2', 'b/1', 'a', 'c/d/e', 'Z']) {
      fs.mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
      fs.writeFileSync(path.join(d, rel), pattern(PAGE));
    }
    fs.symlinkSync(path.join(d, 'a'), path.join(d, 'link'));
    execFileSync('mkfifo', [path.join(d, 'pipe')]);
    const native = collectFiles([d], new PathFilter(), statNative(), { cachestat: true });
    const js = collectFiles([d], new PathFilter([], ['no-such-name']), statNative(), { cachestat: true });
    expect(native.files.map((f) => path.relative(d, f.path))).toEqual(['Z', 'a', 'b/1', 'b/2', 'c/d/e']);
    expect(js.files.map((f) => f.path)).toEqual(native.files.map((f) => f.path));
    expect(native.directories).toBe(js.directories);
    expect(native.files.every((f) => countsOf(f)?.cached === 1)).toBe(true);
    // A directory that cannot be read is an error of its own (errno in the result).
    const gone = statNative().walkFiles(path.join(d, 'no-such-dir'), false);
    expect(gone.errors).toBe(`${path.join(d, 'no-such-dir')}\u00002\u0000`);
  });

  it('a newline in a file name does not split a table row (escaped; --json has the exact name)', async () => {
    const d = dir('names');
    const odd = path.join(d, 'two\nlines');
    fs.writeFileSync(odd, pattern(PAGE));
    fs.writeFileSync(path.join(d, 'plain'), pattern(PAGE));
    const r = await run(['stat', d]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4); // header, two files, summary
    expect(lines.some((l) => l.endsWith(` ${JSON.stringify(odd)}`))).toBe(true);
    const j = await run(['stat', '--json', d]);
    expect((JSON.parse(j.stdout) as { files: Array<{ path: string }> }).files.map((f) => f.path)).toContain(odd);
    // Error lines too.
    const missing = path.join(d, 'gone\nfile');
    const e = await run(['stat', missing]);
    expect(e.stderr.split('\n')[0]).toBe(`pagewise: ${JSON.stringify(missing)}: No such file or directory`);
  });
});

describe.skipIf(!onKernel)('vmtouch-like options (native only: the file commands refuse the simulator)', () => {
  it('stat -s prints the summary line only, with the same figures as the table', async () => {
    const d = dir('summary');
    fs.writeFileSync(path.join(d, 'a'), pattern(PAGE));
    fs.writeFileSync(path.join(d, 'b'), pattern(3 * PAGE));
    const table = await run(['stat', d]);
    const summary = await run(['stat', '-s', d]);
    expect(summary.code).toBe(0);
    expect(summary.stdout.split('\n')).toEqual([table.stdout.trimEnd().split('\n').at(-1), '']);
    expect(summary.stdout).toMatch(/^2 files in 1 directory, 16\.0 KiB: 4\/4 pages resident/);
  });

  it("vmtouch's letters name the same options: -p -m -f -F -i -I -b -0 -q give what the long spellings give", async () => {
    const d = dir('letters');
    fs.writeFileSync(path.join(d, 'a.log'), pattern(3 * PAGE));
    fs.writeFileSync(path.join(d, 'b.db'), pattern(9 * PAGE));
    fs.symlinkSync(file(PAGE, 'outside'), path.join(d, 'link'));
    const list = path.join(root, `list0-${serial++}`);
    fs.writeFileSync(list, `${path.join(d, 'a.log')}\0${path.join(d, 'b.db')}`);
    // Nothing resident, and nothing that reclaim or writeback could change between two runs.
    for (const name of ['a.log', 'b.db']) {
      const fd = fs.openSync(path.join(d, name), 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    expect((await run(['evict', '-f', d])).code).toBe(0);
    const pairs: Array<[string[], string[]]> = [
      [['stat', '-p', '4K-', d], ['stat', '--range', '4K-', d]],
      [['stat', '-p', '-8K', d], ['stat', '--range', '-8K', d]],
      [['stat', '-m', '16K', d], ['stat', '--max-size', '16K', d]],
      [['stat', '-f', d], ['stat', '--follow', d]],
      [['stat', '-F', d], ['stat', '--one-file-system', d]],
      [['stat', '-i', '*.log', d], ['stat', '--exclude', '*.log', d]],
      [['stat', '-I', '*.log', d], ['stat', '--include', '*.log', d]],
      [['stat', '-0', '-b', list], ['stat', '--null', '--files-from', list]],
      [['evict', '-q', d], ['evict', '--quiet', d]],
    ];
    // stat as --json, without cachestat's evicted / recently evicted counts: the kernel's
    // workingset figures move with every eviction on the machine, between two runs too.
    const steady = (text: string): string => (text.startsWith('{') ? JSON.stringify(JSON.parse(text), (k, v) => (k === 'evicted' || k === 'recentlyEvicted' ? undefined : v)) : text);
    const asJson = (argv: string[]): string[] => (argv[0] === 'stat' ? ['stat', '--json', ...argv.slice(1)] : argv);
    for (const [short, long] of pairs) {
      const a = await run(asJson(short));
      const b = await run(asJson(long));
      expect(a.code, short.join(' ')).toBe(0);
      expect(steady(a.stdout), short.join(' ')).toBe(steady(b.stdout));
    }
    expect((await run(['stat', '-f', d])).stdout).toContain(`${path.join(d, 'link')}`);
    expect((await run(['stat', '-I', '*.log', d])).stdout).toMatch(/^1 file in 1 directory/m);
    expect((await run(['stat', '-0', '-b', list])).stdout).toMatch(/^2 files, /m);
    const quiet = await run(['stat', '-q', d]);
    expect(quiet).toEqual({ code: 0, stdout: '', stderr: '' });
    const missing = await run(['stat', '-q', path.join(d, 'missing')]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('missing');
  });

  it('--max-size skips larger files and says how many', async () => {
    const d = dir('max');
    fs.writeFileSync(path.join(d, 'small'), pattern(PAGE));
    fs.writeFileSync(path.join(d, 'big'), pattern(8 * PAGE));
    const r = await run(['stat', '--json', '--max-size', `${4 * PAGE}`, d]);
    const doc = JSON.parse(r.stdout) as { files: Array<{ path: string }> };
    expect(doc.files.map((f) => path.basename(f.path))).toEqual(['small']);
    const t = await run(['stat', '--max-size', '4K', d]);
    expect(t.stdout).toContain('skipped 1 file over --max-size');
  });

  it('--follow takes symbolic links inside directories; --one-file-system stays on the argument’s file system', async () => {
    const d = dir('follow');
    fs.writeFileSync(path.join(d, 'own'), pattern(PAGE));
    const target = file(PAGE, 'link-target');
    fs.symlinkSync(target, path.join(d, 'link'));
    const names = async (...opts: string[]) =>
      ((JSON.parse((await run(['stat', '--json', ...opts, d])).stdout) as { files: Array<{ path: string }> }).files).map((f) => path.basename(f.path)).sort();
    expect(await names()).toEqual(['own']);
    expect(await names('--follow')).toEqual(['link', 'own']);
    // A link to a directory on another file system (/dev/shm is tmpfs), when there is one.
    const other = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/pagewise-cli-') : undefined;
    if (other !== undefined && fs.statSync(other).dev !== fs.statSync(d).dev) {
      try {
        fs.writeFileSync(path.join(other, 'far'), pattern(PAGE));
        fs.symlinkSync(other, path.join(d, 'elsewhere'));
        expect(await names('--follow')).toEqual(['far', 'link', 'own']);
        expect(await names('--follow', '--one-file-system')).toEqual(['link', 'own']);
      } finally {
        fs.rmSync(other, { recursive: true, force: true });
      }
    }
  });

  it.skipIf(!haveDist)('--files-from FILE and --files-from - (standard input), newline or NUL separated', async () => {
    const a = file(PAGE);
    const b = file(2 * PAGE);
    const list = path.join(root, `list-${serial++}`);
    fs.writeFileSync(list, `${a}\n${b}\n`);
    const fromFile = await run(['stat', '--json', '--files-from', list]);
    expect((JSON.parse(fromFile.stdout) as { files: Array<{ path: string }> }).files.map((f) => f.path)).toEqual([a, b]);
    const fromStdin = spawnCli(['stat', '--json', '--files-from', '-'], {}, `${b}\0${a}\0`);
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect((JSON.parse(fromStdin.stdout) as { files: Array<{ path: string }> }).files.map((f) => f.path)).toEqual([b, a]);
  });

  it('-q: touch and evict print nothing but errors', async () => {
    const f = file(4 * PAGE);
    for (const cmd of ['evict', 'touch']) {
      const r = await run([cmd, '-q', f]);
      expect(r, cmd).toMatchObject({ code: 0, stdout: '', stderr: '' });
    }
    const missing = await run(['touch', '-q', path.join(root, 'none')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No such file or directory');
  });

  it('touch reads only the pages that are missing, and says how much was resident already', async () => {
    const f = file(256 * PAGE);
    await run(['evict', f]);
    {
      using m = pw.mapFile(f, { length: 64 * PAGE });
      await m.populate({ mode: 'read' });
    }
    const residentBefore = pw.fileResidency(f).cached;
    expect(residentBefore).toBeGreaterThanOrEqual(64);
    const r = await run(['touch', f]);
    expect(r.code).toBe(0);
    const m = /\(([\d.]+ \w+) of it was resident already and not read again\)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(pw.fileResidency(f).cached).toBe(256);
  });

  it('snapshot and re-warm: stat --json --pages, evict, touch --from brings back those pages', async () => {
    const a = file(128 * PAGE, 'snap');
    const b = file(16 * PAGE, 'snap');
    await run(['evict', a, b]);
    {
      using m = pw.mapFile(a, { offset: 32 * PAGE, length: 16 * PAGE });
      await m.populate({ mode: 'read' });
    }
    await run(['touch', b]);
    const snap = await run(['stat', '--json', '--pages', a, b]);
    expect(snap.code).toBe(0);
    const doc = JSON.parse(snap.stdout) as { files: Array<{ path: string; resident: Array<[number, number]> }> };
    const runsA = doc.files[0].resident;
    expect(runsA.some(([s, e]) => s <= 32 && e >= 48)).toBe(true);
    expect(doc.files[1].resident).toEqual([[0, 16]]);
    const saved = path.join(root, `snapshot-${serial++}.json`);
    fs.writeFileSync(saved, snap.stdout);

    await run(['evict', a, b]);
    expect(pw.fileResidency(b).cached).toBe(0);
    const warm = await run(['touch', '--from', saved]);
    expect(warm.code, warm.stderr).toBe(0);
    const after = pw.fileResidency(a, { pages: true }).pages as Uint8Array;
    for (const [s, e] of runsA) for (let p = s; p < e; p++) expect(after[p] & 1, `page ${p}`).toBe(1);
    expect(pw.fileResidency(b).cached).toBe(16);

    // Usage: --pages needs --json; --from takes no paths; a non-snapshot is refused.
    expect((await run(['stat', '--pages', a])).code).toBe(2);
    expect((await run(['touch', '--from', saved, a])).code).toBe(2);
    const notSnap = path.join(root, `plain-${serial++}.json`);
    fs.writeFileSync(notSnap, (await run(['stat', '--json', a])).stdout);
    const bad = await run(['touch', '--from', notSnap]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('stat was run without --pages');
  });

  it.skipIf(!haveDist)('lock --daemon --pid-file: returns once locked, the child holds the lock, SIGTERM unlocks and removes the pid file', async () => {
    const f = file(64 * PAGE);
    const pidFile = path.join(root, `lock-${serial++}.pid`);
    const r = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', f]);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    expect(pid).toBeGreaterThan(0);
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(Number(/VmLck:\s+(\d+) kB/.exec(status)?.[1]) * 1024).toBeGreaterThanOrEqual(64 * PAGE);
      await run(['evict', f]);
      expect(pw.fileResidency(f).cached).toBe(64); // locked pages stay
    } finally {
      process.kill(pid, 'SIGTERM');
    }
    for (let i = 0; i < 500 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((res) => setTimeout(res, 20));
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(fs.existsSync(pidFile)).toBe(false);
  });
});

describe('pagewise demo --limit below what the runtime needs', () => {
  it.skipIf(findMemoryCgroup().version === 0)('refuses 64M and 96M with the measured floor instead of dying with SIGKILL (needs a writable memory cgroup)', async () => {
    for (const limit of ['64M', '96M']) {
      const r = await run(['demo', '--limit', limit]);
      expect(r.code, limit).toBe(2);
      expect(r.stdout, limit).toContain(`--limit ${limit} is too small to show anything`);
      const floor = Number(/Use --limit (\d+)M or more/.exec(r.stdout)?.[1]);
      expect(floor, r.stdout).toBeGreaterThan(Number.parseInt(limit, 10));
      expect(r.stdout).not.toContain('SIGKILL');
    }
  });
});
