// Backend selection as a user meets it: the built package loaded from a
// directory where the native addon is missing (as on macOS, or with no
// compiler), and the PAGEWISE_BACKEND override.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
// The package without build/ or prebuilds/: the addon cannot load from here.
const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-bare-'));
fs.cpSync(path.join(root, 'dist'), path.join(bare, 'dist'), { recursive: true });
fs.copyFileSync(path.join(root, 'package.json'), path.join(bare, 'package.json'));
fs.symlinkSync(path.join(root, 'node_modules'), path.join(bare, 'node_modules'));
afterAll(() => fs.rmSync(bare, { recursive: true, force: true }));

function load(dir: string, backend: string | undefined) {
  const script = `
    process.on('warning', (w) => console.log(JSON.stringify({ warning: w.code, message: w.message })));
    try {
      const pw = require(${JSON.stringify(path.join(dir, 'dist/index.js'))});
      const m = pw.map(pw.pageSize); m.buffer[0] = 1; m.advise('dontneed');
      console.log(JSON.stringify({ backend: pw.backend, byte: m.buffer[0] }));
      m.close();
    } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
    setImmediate(() => {});`;
  const env = { ...process.env };
  delete env.PAGEWISE_BACKEND;
  if (backend !== undefined) env.PAGEWISE_BACKEND = backend;
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('backend selection', () => {
  it('falls back to the simulator with one PAGEWISE_SIMULATED warning when the addon cannot load', () => {
    const lines = load(bare, undefined);
    const warnings = lines.filter((l) => l.warning !== undefined);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ warning: 'PAGEWISE_SIMULATED' });
    const message = String(warnings[0].message);
    expect(message).toMatch(/^pagewise uses the reference simulator: cannot load the native addon .*No native build was found/);
    expect(message).toMatch(/npm rebuild pagewise/); // works from a consumer project (npx node-gyp rebuild does not)
    expect(message.match(/pagewise:/g)).toBeNull(); // one prefix, not repeated
    expect(lines.find((l) => l.backend)).toEqual({ backend: 'simulator', byte: 0 });
  });

  it('PAGEWISE_BACKEND=native where the addon cannot load throws at import, with the reason', () => {
    const lines = load(bare, 'native');
    expect(lines).toHaveLength(1);
    expect(lines[0].code).toBe('ERR_PAGEWISE_NATIVE_UNAVAILABLE');
    expect(String(lines[0].message)).toMatch(/cannot load the native addon/);
  });

  it('PAGEWISE_BACKEND=simulator forces the simulator without a warning', () => {
    const lines = load(root, 'simulator');
    expect(lines).toEqual([{ backend: 'simulator', byte: 0 }]);
  });

  it('an unknown PAGEWISE_BACKEND is an error at import', () => {
    const lines = load(root, 'fpga');
    expect(lines[0].code).toBe('ERR_INVALID_ARG_VALUE');
  });

  it.skipIf(process.platform !== 'linux')('uses the native backend by default where the addon loads (Linux)', () => {
    const lines = load(root, undefined);
    expect(lines).toEqual([{ backend: 'native', byte: 0 }]);
  });
});
