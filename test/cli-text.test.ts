// `pagewise stat` of whole files has two writers of the same text: the native one
// (native/cli/stat_text.cc, through lib/cli/stat/counted.ts: every plain `stat`) and the
// JavaScript one (lib/cli/stat/text.ts: filters, --follow, -v, --range, the files the native
// path hands over). They must agree byte for byte, for the table and for --json, and the
// JavaScript --json must be what JSON.stringify writes: here on rows made up to hit every
// rounding and escaping rule, and on a real tree through the CLI.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PathFilter } from '../lib/cli/args';
import { collectFiles, countsOf } from '../lib/cli/files';
import { type Counted, type StatWriter, collectCounted, statCounted } from '../lib/cli/stat/counted';
import { FIELD, FIELDS, type NativeWalk, statNative } from '../lib/cli/stat/native';
import { blankRow, fileJson, rowOf } from '../lib/cli/stat/text';
import { runCli, sink } from './cli-run';
import { PAGE, onKernel, pattern } from './helpers';

// Made when a test first needs it: where every test here is skipped (the simulator project) no
// hook runs, and a directory made when the file loads would be left behind.
let root: string | undefined;
const tmpRoot = (): string => (root ??= fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-cli-text-')));
afterAll(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});
let serial = 0;
function dir(name: string): string {
  const d = path.join(tmpRoot(), `${name}-${serial++}`);
  fs.mkdirSync(d);
  return d;
}

interface MadeUp {
  path: string;
  size: number;
  cached: number;
  dirty?: number;
  evicted?: number;
}

/** Rows as the native batch lays them out (regular files, no error). */
function rowsOf(files: readonly MadeUp[]): Float64Array {
  statNative(); // FIELD and FIELDS come from the addon
  const rows = new Float64Array(files.length * FIELDS);
  files.forEach((f, i) => {
    const at = i * FIELDS;
    rows[at + FIELD.regular] = 1;
    rows[at + FIELD.ino] = i + 1;
    rows[at + FIELD.size] = f.size;
    rows[at + FIELD.cached] = f.cached;
    rows[at + FIELD.dirty] = f.dirty ?? 0;
    rows[at + FIELD.writeback] = i % 3;
    rows[at + FIELD.evicted] = f.evicted ?? 0;
    rows[at + FIELD.recentlyEvicted] = (f.evicted ?? 0) >> 1;
  });
  return rows;
}

/** Both writers' text for the same files: [native, JavaScript]. */
function bothTexts(files: readonly MadeUp[], json: boolean, pageSize = PAGE): [string, string] {
  const native = { ...statNative(), pageSize };
  const rows = rowsOf(files);
  const counted: Counted = {
    rows,
    paths: files.map((f) => `${f.path}\0`).join(''),
    count: files.length,
    directories: 3,
    failures: [],
    skippedLarge: 0,
  };
  const text = (writer: StatWriter): string => {
    const out = sink();
    statCounted({ stdout: out.stream, stderr: sink().stream }, native, counted, { json, summaryOnly: false, writer });
    return out.chunks.join('');
  };
  return [text('native'), text('js')];
}

const MiB = 2 ** 20;
// Sizes and residencies at the edges of formatBytes / formatPercent / Number#toString:
// 1280 B is 1.25 KiB (toFixed rounds the tie up: 1.3), 1 MiB - 1 B is "1024.0 KiB" → 1.0 MiB,
// 1/400 resident is 0.25% (→ 0.3%), 1/3 is 33.333333333333336 in JSON, 399/400 stays 99.8,
// 1 page of 2^30 is 0.1% (never 0.0%), sizes past 2^53 print as JavaScript prints them.
const EDGES: MadeUp[] = [
  { path: 'empty', size: 0, cached: 0 },
  { path: 'one', size: 1, cached: 1 },
  { path: 'k-1', size: 1023, cached: 1 },
  { path: 'k', size: 1024, cached: 0 },
  { path: 'tie', size: 1280, cached: 1 },
  { path: 'almost-MiB', size: MiB - 1, cached: 256 },
  { path: 'MiB', size: MiB, cached: 3, dirty: 2 },
  { path: 'quarter', size: 400 * 4096, cached: 1 },
  { path: 'third', size: 3 * 4096, cached: 1 },
  { path: 'almost-all', size: 400 * 4096, cached: 399, evicted: 1 },
  { path: 'tiny', size: 2 ** 30 * 4096, cached: 1, evicted: 12345 },
  { path: 'sparse-17T', size: 17 * 2 ** 40, cached: 2 },
  { path: 'EiB', size: 2 ** 61 + 2 ** 58, cached: 7 },
  { path: 'past-2^53', size: 2 ** 53 + 2 ** 40, cached: 5 },
  { path: 'with "quotes" and \\ backslash', size: 5000, cached: 2 },
  { path: 'new\nline\ttab\u0001ctl\u007fdel', size: 4096, cached: 1 },
  { path: 'c1-\u0085-next-line', size: 4096, cached: 1 },
  { path: 'été/日本語/\u{1F600}', size: 8192, cached: 1 },
  { path: 'dir/sub/plain', size: 9000, cached: 3 },
];

describe.skipIf(!onKernel)('the native stat text is the JavaScript stat text (native only: the writer is in the addon)', () => {
  it('a --json entry is what JSON.stringify writes, for made-up rows and for rows with a strip or resident runs', () => {
    const rows = rowsOf(EDGES);
    for (let i = 0; i < EDGES.length; i++) {
      const r = rowOf(rows, i * FIELDS, EDGES[i].path, PAGE, blankRow());
      expect(fileJson(r)).toBe(`    ${JSON.stringify(r, null, 2).replace(/\n/g, '\n    ')}`);
      expect(fileJson(r)).not.toContain('[');
    }
    const ranged = { ...rowOf(rows, 0, 'x', PAGE, blankRow()), offset: 4096, dirty: null, source: 'mincore' as const, strip: 'Oo ', resident: [[0, 2] as [number, number]] };
    expect(JSON.parse(`{"f": ${fileJson(ranged)}}`).f).toEqual(ranged);
  });

  it('table and --json agree on made-up rows at every rounding and escaping edge', () => {
    for (const json of [false, true]) {
      const [native, js] = bothTexts(EDGES, json);
      expect(native, json ? 'json' : 'table').toBe(js);
    }
    // The cases the edges are about really are in the text.
    const [table] = bothTexts(EDGES, false);
    expect(table).toContain('1.3 KiB');
    expect(table).toContain('1.0 MiB');
    expect(table).toContain('0.3%');
    expect(table).toContain('"new\\nline\\ttab\\u0001ctl\u007fdel"'); // showPath quotes control characters (JSON.stringify leaves U+007F as is)
    const doc = JSON.parse(bothTexts(EDGES, true)[0]);
    expect(doc.files.map((f: { path: string }) => f.path)).toEqual(EDGES.map((f) => f.path));
    expect(doc.files.find((f: { path: string }) => f.path === 'third').percent).toBe(100 / 3);
  });

  it('table and --json agree on random rows, with another page size', () => {
    let seed = 12345;
    const random = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n);
    const files: MadeUp[] = [];
    for (let i = 0; i < 3000; i++) {
      const size = [random(5000), random(2 ** 24), random(2 ** 40), 2 ** random(50)][i % 4];
      const total = Math.ceil(size / 16384);
      files.push({ path: `r/${i}`, size, cached: random(total + 1), dirty: random(3), evicted: random(100) });
    }
    for (const json of [false, true]) {
      const [native, js] = bothTexts(files, json, 16384);
      expect(native, json ? 'json' : 'table').toBe(js);
    }
  });

  it('`stat DIR` (native writer) prints what `stat --exclude NONE DIR` (JavaScript walk and writer) prints', async () => {
    const d = dir('tree');
    for (let i = 0; i < 40; i++) {
      const sub = path.join(d, `s${i % 7}`, `t${i % 3}`);
      fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(path.join(sub, `f${i}`), pattern((i % 5) * PAGE + (i % 2) * 100));
    }
    fs.writeFileSync(path.join(d, 'odd\nname "q"'), pattern(PAGE));
    fs.linkSync(path.join(d, 's0', 't0', 'f0'), path.join(d, 'a-hard-link')); // shown once
    fs.symlinkSync(path.join(d, 's1'), path.join(d, 'link')); // not followed
    execFileSync('mkfifo', [path.join(d, 'pipe')]); // skipped
    for (const extra of [[], ['--json'], ['-s'], ['--max-size', '5000']]) {
      const native = await runCli(['stat', ...extra, d]);
      const js = await runCli(['stat', ...extra, '--exclude', 'no-such-name', d]);
      expect(native.code, extra.join(' ')).toBe(0);
      expect(native.stderr, extra.join(' ')).toBe(js.stderr);
      expect(native.stdout, extra.join(' ')).toBe(js.stdout);
    }
    const table = (await runCli(['stat', d])).stdout;
    expect(table.match(/a-hard-link|f0\n/g)).toHaveLength(1);
    expect(table).toContain('"');
  });

  it('the native path is the one taken for a plain stat, and it hands over what it cannot show the same way', () => {
    const d = dir('handover');
    fs.writeFileSync(path.join(d, 'a'), pattern(PAGE));
    const counted = collectCounted([d], new PathFilter(), statNative(), {});
    expect(counted?.count).toBe(1);
    expect(counted?.paths).toBe(`${path.join(d, 'a')}\0`);
    expect(collectCounted([d], new PathFilter(['a']), statNative(), {})).toBeUndefined();
    expect(collectCounted([d], new PathFilter(), statNative(), { follow: true })).toBeUndefined();
    expect(collectCounted([d], new PathFilter(), statNative(), { oneFileSystem: true })).toBeUndefined();
  });

  it('a cachestat refusal hands the command to the general path, with the walk already done (no tree is walked twice)', () => {
    const d = dir('refused');
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(d, n), pattern(PAGE));
    const { walkFiles } = statNative();
    // As for a file neither owned nor writable: cachestat refused (EPERM, stage 3) in row 1.
    const refusing = {
      ...statNative(),
      walkFiles: (dirPath: string, cs: boolean, max?: number, unique?: boolean) => {
        const w = walkFiles(dirPath, cs, max, unique);
        w.rows[FIELDS + FIELD.errno] = 1;
        w.rows[FIELDS + FIELD.stage] = 3;
        return { ...w, unusual: 1 };
      },
    };
    const walked = new Map<string, NativeWalk>();
    expect(collectCounted([d], new PathFilter(), refusing, {}, walked)).toBeUndefined();
    expect([...walked.keys()]).toEqual([d]);
    const noWalk = { ...statNative(), walkFiles: () => { throw new Error('walked again'); } };
    const handed = collectFiles([d], new PathFilter(), noWalk, { cachestat: true, walked });
    expect(handed.files.map((f) => path.basename(f.path))).toEqual(['a', 'b', 'c']);
    expect(handed.files.map((f) => countsOf(f) !== undefined)).toEqual([true, false, true]); // b: counts asked again per file
  });

  it('walkFiles: each file once with `unique` (hard links), every path without it; the walk over many directories keeps depth-first name order', () => {
    const d = dir('unique');
    fs.writeFileSync(path.join(d, 'b'), pattern(PAGE));
    fs.linkSync(path.join(d, 'b'), path.join(d, 'a'));
    fs.linkSync(path.join(d, 'b'), path.join(d, 'c'));
    const walk = statNative().walkFiles;
    expect(walk(d, true).files).toBe(['a', 'b', 'c'].map((n) => `${path.join(d, n)}\0`).join(''));
    expect(walk(d, true, undefined, true).files).toBe(`${path.join(d, 'a')}\0`);
    expect(walk(d, true, undefined, true).rows.length).toBe(FIELDS);

    // Enough directories for every walking thread to take some: the order is still the JavaScript walk's.
    const many = dir('many');
    const expected: string[] = [];
    for (let a = 0; a < 12; a++) {
      for (let b = 0; b < 12; b++) {
        const sub = path.join(many, `a${a}`, `b${b}`);
        fs.mkdirSync(sub, { recursive: true });
        for (const f of ['x', 'y']) fs.writeFileSync(path.join(sub, f), '');
      }
    }
    const byName = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    for (const a of fs.readdirSync(many).sort(byName)) {
      for (const b of fs.readdirSync(path.join(many, a)).sort(byName)) for (const f of ['x', 'y']) expected.push(path.join(many, a, b, f));
    }
    const walked = walk(many, false);
    expect(walked.files.split('\0').slice(0, -1)).toEqual(expected);
    expect(walked.directories).toBe(1 + 12 + 144);
  });
});
