// Development hygiene: `npm run bench` leaves the committed results and the temporary
// directory alone unless told otherwise; the source maps in dist/ carry their sources; the
// public declarations show no internals of the command line.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCircular, parseDependencyTree } from 'dpdm';
import { describe, expect, it } from 'vitest';
import { onKernel } from './helpers';

const root = path.join(__dirname, '..');
const haveDist = fs.existsSync(path.join(root, 'dist', 'index.js'));

function walk(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

describe.skipIf(!onKernel)('hygiene (once: it does not depend on the backend)', () => {
  it.skipIf(!haveDist)('bench/run.mjs writes to a run directory, not the committed results, and removes its scratch files', () => {
    const committed = fs.readFileSync(path.join(root, 'bench', 'RESULTS.md'), 'utf8');
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-hygiene-'));
    try {
      const out = path.join(parent, 'run');
      const scratchParent = path.join(parent, 'scratch');
      fs.mkdirSync(scratchParent);
      // --only 0 selects no question: the run's bookkeeping alone, in seconds.
      const r = spawnSync(process.execPath, [path.join(root, 'bench', 'run.mjs'), '--only', '0', '--out', out], {
        encoding: 'utf8',
        env: { ...process.env, PAGEWISE_BENCH_DIR: scratchParent },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(fs.existsSync(path.join(out, 'RESULTS.md'))).toBe(true);
      expect(fs.existsSync(path.join(out, 'results.json'))).toBe(true);
      expect(fs.readFileSync(path.join(root, 'bench', 'RESULTS.md'), 'utf8')).toBe(committed);
      expect(fs.readdirSync(scratchParent)).toEqual([]); // the scratch directory is gone
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  it.skipIf(!haveDist)('every source map in dist/ carries the sources it points to (lib/ is not shipped)', () => {
    // Maps of the current sources (a checkout may keep outputs of files since moved).
    const dist = path.join(root, 'dist');
    const maps = walk(dist)
      .filter((f) => f.endsWith('.js.map'))
      .filter((f) => fs.existsSync(path.join(root, 'lib', path.relative(dist, f).replace(/\.js\.map$/, '.ts'))));
    expect(maps.length).toBeGreaterThan(0);
    for (const m of maps) {
      const map = JSON.parse(fs.readFileSync(m, 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null> };
      expect(map.sourcesContent?.length, m).toBe(map.sources.length);
      expect(map.sourcesContent?.every((c) => typeof c === 'string' && c.length > 0), m).toBe(true);
    }
  });

  it.skipIf(!haveDist)('the public declarations (every .d.ts reachable from dist/index.d.ts) name none of the CLI\'s native calls or runtime probes', () => {
    const dist = path.join(root, 'dist');
    const seen = new Set<string>();
    const pending = [path.join(dist, 'index.d.ts')];
    while (pending.length > 0) {
      const file = pending.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = fs.readFileSync(file, 'utf8');
      // `from './x'` and `import('./x')`: relative imports only (node: and packages are not ours).
      for (const m of text.matchAll(/(?:from\s+|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const base = path.resolve(path.dirname(file), m[1].replace(/\.js$/, ''));
        const target = [`${base}.d.ts`, path.join(base, 'index.d.ts')].find((f) => fs.existsSync(f));
        expect(target, `${m[1]} imported by ${path.relative(dist, file)}`).toBeDefined();
        pending.push(target as string);
      }
    }
    const reached = [...seen].map((f) => path.relative(dist, f));
    // The walk is real: the API and the seam are reached, the CLI and the loader are not.
    expect(reached).toEqual(expect.arrayContaining(['index.d.ts', 'api.d.ts', 'backend.d.ts', 'mapping.d.ts']));
    expect(reached.filter((f) => f.startsWith('cli') || f === 'native.d.ts')).toEqual([]);
    for (const file of seen) {
      const text = fs.readFileSync(file, 'utf8');
      for (const internal of ['statFiles', 'walkFiles', 'statText', 'statSums', 'pendingRequests']) {
        expect(text.includes(internal), `${internal} in ${path.relative(dist, file)}`).toBe(false);
      }
    }
  });
});

describe.skipIf(!onKernel)('types (once: it does not depend on the backend)', () => {
  it('test/types/strict.ts compiles under --strict: memoryUsage().effective without narrowing; key lists and error codes checked', () => {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--target', 'ES2022', '--lib', 'ES2023,ESNext.Disposable', '--module', 'node16', '--moduleResolution', 'node16', '--types', 'node', '--skipLibCheck', path.join(root, 'test', 'types', 'strict.ts')],
      { encoding: 'utf8', cwd: root },
    );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe.skipIf(!onKernel)('import graph (once: it does not depend on the backend)', () => {
  it('lib/ has no import circle, type-only imports included', async () => {
    const entries = walk(path.join(root, 'lib')).filter((f) => f.endsWith('.ts'));
    const tree = await parseDependencyTree(entries, {
      cwd: root,
      context: root,
      tsconfig: path.join(root, 'tsconfig.json'),
      transform: false, // keep `import type`: a circle of types is still a circle to read
      skipDynamicImports: false,
    });
    // A circle named by its files in order of name (where the walk entered it does not matter).
    const circles = parseCircular(tree).map((c) => [...c].sort().join(' -> '));
    expect(entries.length).toBeGreaterThan(40); // the walk saw the whole of lib/
    expect(circles).toEqual([]);
  });
});
