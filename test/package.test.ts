// A consumer's view: pack the package with its prebuild, install the tarball into
// an empty project with npm's default settings (npm 11 blocks dependencies'
// install scripts, so nothing is compiled there), then import, require and
// type-check it.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onKernel } from './helpers';

const root = path.resolve(__dirname, '..');
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PAGEWISE_BACKEND: '' } });

describe.skipIf(!onKernel)('installed from the packed tarball (packaging does not depend on the backend)', () => {
  it('imports from ESM, requires from CommonJS and type-checks without a compiler step', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-consumer-'));
    // Pack from a copy: prepack rebuilds the addon, which must not pull build/ from under the other tests.
    const src = path.join(tmp, 'src');
    const skip = new Set(['node_modules', 'build', 'dist', 'prebuilds', '.git', 'bench']);
    fs.cpSync(root, src, { recursive: true, filter: (from) => !skip.has(path.relative(root, from).split(path.sep)[0]) });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(src, 'node_modules'));
    const packOut = run('npm', ['pack', '--silent', '--pack-destination', tmp], src).trim().split('\n');
    const tarball = path.join(tmp, packOut[packOut.length - 1]);
    const listing = run('tar', ['-tzf', tarball], tmp);
    expect(listing).toMatch(/package\/prebuilds\/linux-x64\/pagewise\.glibc\.node/); // tagged: musl systems skip it
    expect(listing).toMatch(/package\/dist\/index\.mjs/);
    expect(listing).toMatch(/package\/dist\/index\.js/);
    expect(listing).toMatch(/package\/dist\/index\.d\.ts/);

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

    // The command line, as `npx pagewise` runs it.
    const stat = JSON.parse(run(path.join(app, 'node_modules/.bin/pagewise'), ['stat', '--json', path.join(app, 'package.json')], app));
    expect(stat.backend).toBe('native');
    expect(stat.files[0].total).toBe(1);

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
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
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
