// A consumer's view: pack the package with its prebuild, install the tarball into
// an empty project with npm's default settings (npm 11 blocks dependencies'
// install scripts, so nothing is compiled there), then import, require and
// type-check it.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { outputMatches, readBlocks, runModule, runShell, shellCommands, stopDaemons, transcript, workspace } from './docs/blocks';
import { onKernel } from './helpers';
import { readmeRequirement, readmeShape } from './readme-requirement';

const root = path.resolve(__dirname, '..');
const run = (cmd: string, args: string[], cwd: string): string => {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PAGEWISE_BACKEND: '' } });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    e.message += `\n${e.stdout ?? ''}${e.stderr ?? ''}`; // what the command said, not only that it failed
    throw e;
  }
};

describe.skipIf(!onKernel)('installed from the packed tarball (packaging does not depend on the backend)', () => {
  it('imports from ESM, requires from CommonJS, runs the README and its examples, and type-checks without a compiler step', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-consumer-'));
    // Pack from a copy: prepack rebuilds the addon, which must not pull build/ from under the other tests.
    const src = path.join(tmp, 'src');
    const skip = new Set(['node_modules', 'build', 'dist', 'prebuilds', '.git']);
    const copied = (rel: string) => (rel.split(path.sep)[0] === 'bench' ? ['bench', path.join('bench', 'RESULTS.md')].includes(rel) : !skip.has(rel.split(path.sep)[0]));
    fs.cpSync(root, src, { recursive: true, filter: (from) => copied(path.relative(root, from)) }); // of bench/, only what ships
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(src, 'node_modules'));
    const packOut = run('npm', ['pack', '--silent', '--pack-destination', tmp], src).trim().split('\n');
    const tarball = path.join(tmp, packOut[packOut.length - 1]);
    const listing = run('tar', ['-tzf', tarball], tmp);
    expect(listing).toMatch(/package\/prebuilds\/linux-x64\/pagewise\.glibc\.node/); // tagged: musl systems skip it
    expect(listing).toMatch(/package\/dist\/index\.mjs/);
    expect(listing).toMatch(/package\/dist\/index\.js/);
    expect(listing).toMatch(/package\/dist\/index\.d\.ts/);
    // What the README tells a user to run or read ships: the examples, the license, the measurements.
    for (const f of ['LICENSE', 'README.md', 'examples/quickstart.mjs', 'examples/cache-under-pressure.mjs', 'examples/pressure-service.mjs', 'bench/RESULTS.md']) {
      expect(listing.split('\n')).toContain(`package/${f}`);
    }
    expect(listing).not.toMatch(/package\/test\//);

    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', tarball], app);
    expect(fs.existsSync(path.join(app, 'node_modules/pagewise/build'))).toBe(false); // nothing was compiled

    const esm = run(
      'node',
      ['--input-type=module', '-e', "import { map, backend, pageSize } from 'pagewise'; const m = map(pageSize); m.buffer[0] = 7; m.advise('dontneed'); console.log(backend, m.buffer[0]); m.close();"],
      app,
    );
    expect(esm.trim()).toBe('native 0');

    const cjs = run(
      'node',
      ['-e', "const pw = require('pagewise'); const m = pw.map(pw.pageSize); console.log(pw.backend, m.residency().total); m.close();"],
      app,
    );
    expect(cjs.trim()).toBe('native 1');

    // The ESM entry re-exports the CommonJS build: every name, and one instance per
    // process (one backend selection, one default Pagewise) however it is loaded.
    const both = run(
      'node',
      [
        '--input-type=module',
        '-e',
        "import * as esm from 'pagewise'; import { createRequire } from 'node:module'; const cjs = createRequire(import.meta.url)('pagewise');" +
          ' const names = (o) => Object.keys(o).filter((k) => k !== "default" && k !== "__esModule").sort().join();' +
          ' console.log(names(esm) === names(cjs), esm.pagewise === cjs.pagewise, esm.default === cjs, esm.map === cjs.map, names(esm).split(",").length);',
      ],
      app,
    );
    const [sameNames, sameInstance, defaultIsCjs, sameMap, count] = both.trim().split(' ');
    expect([sameNames, sameInstance, defaultIsCjs, sameMap]).toEqual(['true', 'true', 'true', 'true']);
    expect(Number(count)).toBeGreaterThan(15);

    // musl (Alpine): the glibc prebuild is skipped and nothing was compiled, so the
    // package says why and runs on the simulator. (node-gyp-build reads LIBC.)
    const musl = execFileSync('node', ['-e', "const pw = require('pagewise'); console.log(pw.backend);"], {
      cwd: app,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PAGEWISE_BACKEND: '', LIBC: 'musl' },
    });
    expect(musl.trim()).toBe('simulator');
    const muslWarning = spawnSync('node', ['-e', "require('pagewise')"], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, PAGEWISE_BACKEND: '', LIBC: 'musl' },
    }).stderr;
    expect(muslWarning).toMatch(/PAGEWISE_SIMULATED/);
    expect(muslWarning).toMatch(/No native build was found[^\n]*libc=musl/);
    expect(muslWarning).toMatch(/npm rebuild pagewise/);
    // Compiling from source there, without a compiler: the install script fails soft with the reason.
    const installed = path.join(app, 'node_modules/pagewise');
    const install = spawnSync('sh', ['-c', JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).scripts.install], {
      cwd: installed,
      encoding: 'utf8',
      env: {
        ...process.env,
        LIBC: 'musl',
        CC: '/nonexistent/cc',
        CXX: '/nonexistent/c++',
        PATH: `${path.join(app, 'node_modules/.bin')}:${process.env.PATH}`,
      },
    });
    expect(install.status).toBe(0);
    expect(install.stderr).toMatch(/no prebuild fits this system \(musl\/Alpine[^\n]*C\+\+ compiler[^\n]*simulator will be used/);
    expect(fs.existsSync(path.join(installed, 'build/Release/pagewise.node'))).toBe(false);

    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    // The command line, as `npx pagewise` runs it.
    const stat = JSON.parse(run(path.join(app, 'node_modules/.bin/pagewise'), ['stat', '--json', path.join(app, 'package.json')], app));
    expect(stat.backend).toBe('native');
    expect(stat.files[0].total).toBe(1);

    // The README as the package ships it: its links resolve inside the package, its version
    // requirements are the prebuild's, and its runnable blocks (docs.test.ts's conventions) run here.
    const readme = fs.readFileSync(path.join(installed, 'README.md'), 'utf8');
    const shipped = listing.split('\n').map((l) => l.replace(/^package\//, ''));
    for (const doc of ['README.md', ...shipped.filter((f) => /^docs\/.*\.md$/.test(f))]) {
      const text = fs.readFileSync(path.join(installed, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target));
        expect(shipped, `${doc} links to ${target}, which is not in the package`).toContain(resolved);
      }
    }
    const { glibcRequirement } = await import('../scripts/elf-versions.mjs');
    expect(readmeRequirement(readme)).toEqual(readmeShape(glibcRequirement(path.join(installed, 'prebuilds/linux-x64/pagewise.glibc.node'))));
    // prom-client is the optional peer the README's metrics call needs: linked, as `npm install prom-client` would add it.
    fs.symlinkSync(path.join(root, 'node_modules/prom-client'), path.join(app, 'node_modules/prom-client'));
    let ran = 0;
    for (const block of readBlocks('README.md', installed)) {
      if (block.notRun !== undefined || block.kind === 'other') continue;
      const dir = fs.mkdtempSync(path.join(app, 'readme-'));
      const env = workspace(dir, installed).env({ ...process.env, PAGEWISE_BACKEND: '' });
      try {
        if (block.kind === 'module') {
          const r = runModule(block, dir, env);
          expect(r.status, `README.md:${block.line}\n${r.stdout}${r.stderr}`).toBe(0);
        } else {
          for (const step of block.kind === 'shell' ? shellCommands(block.code) : transcript(block.code)) {
            const r = runShell(step.command, dir, env);
            if (block.kind === 'shell') expect(r.status, `README.md:${block.line}: ${step.command}\n${r.stdout}${r.stderr}`).toBe(0);
            if (step.expected !== undefined) expect(outputMatches(r.stdout, step.expected), `${step.command}: ${r.stdout}`).toBe(true);
          }
        }
      } finally {
        await stopDaemons(dir);
      }
      ran++;
    }
    expect(ran).toBeGreaterThanOrEqual(4);
    // The quickstart as the README names it, from the installed package.
    const quick = run('node', ['node_modules/pagewise/examples/quickstart.mjs'], app);
    expect(quick).toContain('backend: native');
    expect(quick).toContain('page 3 was written (7) after FREE, so it kept its data: 7 42');
    // The pressure service example: serves items from its VolatileCache, and its memory figures.
    await servePressureExample(app);
    // cache-under-pressure's part 2 is `pagewise demo` (a cgroup child, test/pressure.test.ts); its module is in the package.
    expect(fs.existsSync(path.join(installed, 'dist/cli/demo.js'))).toBe(true);

    // The JavaScript of the README and docs/, type-checked as ES modules under --strict (the reader's own
    // functions the examples call are declared as the doc test defines them).
    fs.writeFileSync(
      path.join(app, 'standins.d.ts'),
      [
        'declare const expensiveResult: Uint8Array;',
        'declare const data: Uint8Array;',
        'declare const id: string;',
        'declare const url: string;',
        'declare function regenerate(bytes: Uint8Array): void;',
        'declare function render(key: string): Uint8Array;',
        'declare function decodeInto(target: Uint8Array, key: string): void;',
        'declare function send(bytes: Uint8Array): void;',
        'declare const req: { url: string };',
        "declare const res: import('node:stream').Writable;",
        "declare const stream: import('node:stream').Writable;",
        '',
      ].join('\n'),
    );
    const readmeModules = ['README.md', ...shipped.filter((f) => /^docs\/.*\.md$/.test(f))]
      .flatMap((doc) => readBlocks(doc, installed))
      .filter((b) => b.kind === 'module' && b.notRun === undefined);
    expect(readmeModules.length).toBeGreaterThanOrEqual(5);
    readmeModules.forEach((b, i) => fs.writeFileSync(path.join(app, `readme-${i}.mts`), `// ${b.file}:${b.line}\n${b.code}\nexport {};\n`));
    run(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022',
        '--lib', 'es2023,esnext.disposable', '--typeRoots', path.join(root, 'node_modules/@types'), '--types', 'node',
        'standins.d.ts', ...readmeModules.map((_, i) => `readme-${i}.mts`)],
      app,
    );

    fs.writeFileSync(
      path.join(app, 'check.ts'),
      [
        "import { map, type Advice, type Mapping } from 'pagewise';",
        'const m: Mapping = map(4096);',
        "const advice: Advice = 'free';",
        'const r: { offset: number; length: number } = m.advise(advice);',
        'const n: number = m.residency().resident + r.length;',
        'm.close();',
        'export { n };',
        '',
      ].join('\n'),
    );
    run(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022',
        '--lib', 'es2023,esnext.disposable', '--typeRoots', path.join(root, 'node_modules/@types'), '--types', 'node', 'check.ts'],
      app,
    );
    // The same types serve an ES module (the `import` condition): named and default imports.
    fs.writeFileSync(
      path.join(app, 'check-esm.mts'),
      "import pw, { map, type Mapping } from 'pagewise';\nconst m: Mapping = map(pw.pageSize);\nm.close();\n",
    );
    run(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022',
        '--lib', 'es2023,esnext.disposable', '--typeRoots', path.join(root, 'node_modules/@types'), '--types', 'node', 'check-esm.mts'],
      app,
    );
    // A mistake is caught: the advice names are typed.
    fs.writeFileSync(path.join(app, 'bad.ts'), "import { map } from 'pagewise';\nmap(4096).advise('dontneeed');\n");
    let diagnostics = '';
    try {
      run(
        process.execPath,
        [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022',
          '--lib', 'es2023,esnext.disposable', '--typeRoots', path.join(root, 'node_modules/@types'), '--types', 'node', 'bad.ts'],
        app,
      );
    } catch (err) {
      diagnostics = String((err as { stdout?: string }).stdout); // tsc prints diagnostics on stdout
    }
    expect(diagnostics).toMatch(/bad\.ts.*'"dontneeed"' is not assignable/);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 900_000); // a prebuild compile, two npm runs and three tsc runs: 3 min idle, over 10 on a loaded 2-core machine
});

/** examples/pressure-service.mjs from the installed package on a free port: two GETs of an item (a miss, then a hit), /memory, /metrics. */
async function servePressureExample(app: string): Promise<void> {
  const child = spawn(process.execPath, ['node_modules/pagewise/examples/pressure-service.mjs', '--port', '0'], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PAGEWISE_BACKEND: '' },
  });
  try {
    let out = '';
    child.stdout!.setEncoding('utf8');
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk: string) => {
        out += chunk;
        const m = /listening on :(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`pressure-service exited (${code}) before listening: ${out}`)));
    });
    const get = async (p: string) => {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      return { status: r.status, cache: r.headers.get('x-cache'), body: new Uint8Array(await r.arrayBuffer()) };
    };
    const first = await get('/item/3');
    const second = await get('/item/3');
    expect([first.status, first.cache, first.body.length]).toEqual([200, 'miss', 256 * 1024]);
    expect([second.status, second.cache]).toEqual([200, 'hit']);
    expect(second.body).toEqual(first.body);
    const memory = JSON.parse(new TextDecoder().decode((await get('/memory')).body)) as { cacheEntries: number; hits: number; misses: number };
    expect([memory.cacheEntries, memory.hits, memory.misses]).toEqual([1, 1, 1]);
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(new TextDecoder().decode(metrics.body)).toMatch(/^pagewise_cache_entries\{[^}]*cache="items"[^}]*\} 1$/m);
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
}
