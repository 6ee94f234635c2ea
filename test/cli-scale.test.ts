// The CLI at scale: the order of the two directory walks (native and JavaScript) for names
// where byte order and UTF-16 order differ; `stat -v` and `stat --json --pages` of a 17 TiB
// sparse file in bounded memory; the native batch's bound on the number of files per call.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PathFilter } from '../lib/cli/args';
import { residencyStrip, residencyStripByCounts } from '../lib/cli/commands/stat';
import { collectFiles, compareCodePoints, countsOf } from '../lib/cli/files';
import { FIELDS, statNative } from '../lib/cli/stat/native';
import { runCli } from './cli-run';
import { PAGE, onKernel, pattern, pw } from './helpers';

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const haveDist = fs.existsSync(CLI);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-cli-scale-'));
const cleanups: string[] = [root];
afterAll(() => {
  for (const p of cleanups) fs.rmSync(p, { recursive: true, force: true });
});
let serial = 0;
function dir(name: string): string {
  const d = path.join(root, `${name}-${serial++}`);
  fs.mkdirSync(d);
  return d;
}

const run = (argv: string[]) => runCli(argv);

// Names whose code point (= UTF-8 byte) order differs from their UTF-16 code unit order:
// U+1F600 is the surrogate pair D83D DE00, which `<` puts before U+E000 and U+FF5E.
const NAMES_IN_CODE_POINT_ORDER = ['Z', 'a', 'é', '\u{E000}', '\u{FF5E}', '\u{1F600}', '\u{1F600}x'];

describe('walk order: one order (code points, the bytes of UTF-8 names) for the native and the JavaScript walk', () => {
  it('compareCodePoints sorts astral characters after U+E000–U+FFFF, where `<` does not', () => {
    const shuffled = [...NAMES_IN_CODE_POINT_ORDER].reverse();
    expect([...shuffled].sort(compareCodePoints)).toEqual(NAMES_IN_CODE_POINT_ORDER);
    expect([...shuffled].sort()).not.toEqual(NAMES_IN_CODE_POINT_ORDER); // UTF-16 order differs for these
    // The same as comparing the UTF-8 bytes.
    const byBytes = [...shuffled].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(byBytes).toEqual(NAMES_IN_CODE_POINT_ORDER);
  });

  // The CLI's native calls (the file commands need the addon; it loads in either project where it is built).
  it.skipIf(!onKernel)('files and directories with such names come in that order from both walks (native only)', () => {
    const d = dir('order');
    const expected: string[] = [];
    for (const name of [...NAMES_IN_CODE_POINT_ORDER].reverse()) fs.writeFileSync(path.join(d, name), pattern(PAGE));
    // A directory named between the files: its files come at its place.
    fs.mkdirSync(path.join(d, '\u{F000}'));
    for (const name of ['\u{1F601}', '\u{FFFD}']) fs.writeFileSync(path.join(d, '\u{F000}', name), pattern(PAGE));
    for (const name of NAMES_IN_CODE_POINT_ORDER) {
      if (name === '\u{FF5E}') expected.push('\u{F000}/\u{FFFD}', '\u{F000}/\u{1F601}');
      expected.push(name);
    }
    const native = collectFiles([d], new PathFilter(), statNative(), { cachestat: true });
    const js = collectFiles([d], new PathFilter([], ['no-such-name']), statNative(), { cachestat: true });
    expect(js.files.map((f) => path.relative(d, f.path))).toEqual(expected);
    expect(native.files.map((f) => path.relative(d, f.path))).toEqual(expected);
  });
});

describe('bounded work for huge files and huge trees', () => {
  it('residencyStripByCounts draws the strip residencyStrip draws from the vector', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const n of [1, 7, 59, 60, 61, 119, 1000, 4099]) {
      const v = new Uint8Array(n);
      const density = random();
      for (let i = 0; i < n; i++) v[i] = random() < density ? 1 : 0;
      let calls = 0;
      const byCounts = residencyStripByCounts(n, (from, to) => {
        calls++;
        let c = 0;
        for (let i = from; i < to; i++) c += v[i];
        return c;
      });
      expect(byCounts, `n=${n}`).toBe(residencyStrip(v));
      expect(calls).toBe(Math.min(60, n)); // one count per cell
    }
  });

  // The CLI refuses the simulator (it is not this machine's page cache): native only.
  const cachestat = onKernel && pw.fileResidency(__filename).source === 'cachestat';
  it.skipIf(!cachestat)('stat -v and stat --json --pages of a 17 TiB sparse file: no RangeError, no vector of its size (native with cachestat only)', async () => {
    const size = 17 * 2 ** 40;
    let big: string | undefined;
    for (const base of [root, '/dev/shm']) {
      const candidate = path.join(base, `pagewise-cli-scale-17T-${process.pid}`);
      try {
        fs.closeSync(fs.openSync(candidate, 'w'));
        cleanups.push(candidate);
        fs.truncateSync(candidate, size); // ext4 stops at 16 TiB (EFBIG); tmpfs takes it
        big = candidate;
        break;
      } catch {
        fs.rmSync(candidate, { force: true });
      }
    }
    if (big === undefined) {
      console.warn('test/cli-scale.test.ts: no file system here takes a 17 TiB sparse file: SKIPPED');
      return;
    }
    const pages = size / PAGE;
    // Two resident pages: the first and the last.
    const fd = fs.openSync(big, 'r+');
    try {
      fs.writeSync(fd, pattern(PAGE), 0, PAGE, 0);
      fs.writeSync(fd, pattern(PAGE), 0, PAGE, size - PAGE);
    } finally {
      fs.closeSync(fd);
    }
    const heapBefore = process.memoryUsage().arrayBuffers;
    const v = await run(['stat', '-v', big]);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    const strip = /\[(.*)\] (\d+)\/(\d+)/.exec(v.stdout);
    expect(strip?.[1]).toBe(`o${' '.repeat(58)}o`);
    expect(strip?.slice(2)).toEqual(['2', String(pages)]);

    const j = await run(['stat', '--json', '--pages', big]);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout);
    expect(doc.files[0].resident).toEqual([
      [0, 1],
      [pages - 1, pages],
    ]);
    expect(doc.files[0].cached).toBe(2);
    // Nothing like a vector of 4 Gi pages was made (the chunks are of 2^20 pages).
    expect(process.memoryUsage().arrayBuffers - heapBefore).toBeLessThan(64 * 2 ** 20);
  }, 120_000);

  it.skipIf(!onKernel)('files named in their thousands are stat\'ed in batches of 4,096: no rows array sized by the number of files (native only)', () => {
    const d = dir('named');
    const names: string[] = [];
    for (let i = 0; i < 4096 + 10; i++) {
      const f = path.join(d, `f${i}`);
      fs.writeFileSync(f, i % 2 === 0 ? '' : 'x');
      names.push(f);
    }
    const collected = collectFiles(names, new PathFilter(), statNative(), { cachestat: true });
    expect(collected.failures).toEqual([]);
    expect(collected.files.map((f) => f.path)).toEqual(names);
    expect(collected.files.map((f) => f.size)).toEqual(names.map((_, i) => i % 2));
    // Row arrays of the native batches: one per 4,096 files.
    const first = collected.files[0].rows;
    expect(first?.length).toBe(4096 * FIELDS);
    expect(collected.files[4095].rows).toBe(first);
    expect(collected.files[4096].rows).not.toBe(first);
    expect(collected.files[4096].rows?.length).toBe(10 * FIELDS);
    expect(countsOf(collected.files[4097])?.cached).toBe(1);
  });

  it.skipIf(!onKernel)('statFiles refuses more than 2^20 paths in one call with a coded RangeError, before any work (native only)', () => {
    const native = statNative();
    let err: unknown;
    try {
      native.statFiles('\0'.repeat(2 ** 20 + 1), false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RangeError);
    expect((err as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
    // At the bound it works (every '' path is ENOENT).
    const rows = native.statFiles('\0'.repeat(3), false);
    expect(rows.length).toBe(3 * FIELDS);
  });

  it.skipIf(!onKernel)('walkFiles past maxFiles: a coded RangeError; collectFiles then walks in JavaScript and finds every file (native only)', () => {
    const d = dir('many');
    for (const rel of ['a', 'b/c', 'b/d', 'e']) {
      fs.mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
      fs.writeFileSync(path.join(d, rel), pattern(PAGE));
    }
    const { walkFiles } = statNative();
    expect(() => walkFiles(d, true, 3)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }));
    expect(walkFiles(d, true, 4).rows.length).toBe(4 * FIELDS);
    const limited = { ...statNative(), walkFiles: (dirPath: string, cs: boolean) => walkFiles(dirPath, cs, 3) };
    const whole = collectFiles([d], new PathFilter(), statNative(), { cachestat: true });
    const chunked = collectFiles([d], new PathFilter(), limited, { cachestat: true });
    expect(chunked.files.map((f) => path.relative(d, f.path))).toEqual(['a', 'b/c', 'b/d', 'e']);
    expect(chunked.files.map((f) => f.path)).toEqual(whole.files.map((f) => f.path));
    expect(chunked.directories).toBe(whole.directories);
    expect(chunked.files.map((f) => countsOf(f)?.cached)).toEqual([1, 1, 1, 1]);
  });
});

describe('stat writes straight to its descriptors', () => {
  it.skipIf(!haveDist || !onKernel)('the whole table reaches a pipe, and `| head -1` ends it quietly with status 0 (native only: stat refuses the simulator)', () => {
    const d = dir('pipe');
    // About 3,000 rows: far more than a pipe holds (64 KiB), so the writer meets the closed pipe.
    for (let i = 0; i < 30; i++) {
      const sub = path.join(d, `s${i}`);
      fs.mkdirSync(sub);
      for (let j = 0; j < 100; j++) fs.writeFileSync(path.join(sub, `f${j}`), '');
    }
    const env = { ...process.env, PAGEWISE_BACKEND: 'native' };
    const whole = spawnSync(process.execPath, [CLI, 'stat', d], { encoding: 'utf8', env, maxBuffer: 64 * 2 ** 20 });
    expect(whole.status).toBe(0);
    const lines = whole.stdout.trimEnd().split('\n');
    expect(lines.length).toBe(3000 + 2); // header, rows, summary
    expect(lines.at(-1)).toMatch(/^3000 files in 31 directories/);
    const head = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" stat "${d}" | head -1; echo "status \${PIPESTATUS[0]}" >&2`], { encoding: 'utf8', env });
    expect(head.stdout).toBe(`${lines[0]}\n`);
    expect(head.stderr).toBe('status 0\n'); // no stack trace, no EPIPE message
  });
});
