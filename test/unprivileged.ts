// What a test needs to run pagewise as another user (uid 65534): a world-readable copy
// of the built package. The checkout itself may sit in a directory only its owner can
// enter (root's home, a `mktemp -d`), which that user cannot reach.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';

const root = path.resolve(__dirname, '..');
let copy: string | undefined;

afterAll(() => {
  if (copy !== undefined) fs.rmSync(copy, { recursive: true, force: true });
  copy = undefined;
});

/** The addon file as the package finds it (node-gyp-build: prebuilds/ or build/). */
export function addonPath(): string {
  const gypBuild = createRequire(path.join(root, 'package.json'))('node-gyp-build') as { path(dir: string): string };
  return gypBuild.path(root);
}

/**
 * A copy of the package (package.json, dist/, the addon if there is one, node-gyp-build) under the system's
 * temporary directory, every directory 0755 and file 0644; removed after the test file.
 * Returns its root: `<root>/dist/index.js`, `<root>/dist/cli/main.js`.
 */
export function readablePackage(): string {
  if (copy !== undefined) return copy;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-readable-'));
  fs.cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  let addon: string | undefined;
  try {
    addon = addonPath();
  } catch {
    addon = undefined; // no addon on this host: the copy runs the simulator only
  }
  if (addon !== undefined) {
    fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(addon, path.join(dir, 'build', 'Release', 'pagewise.node'));
  }
  const gyp = path.dirname(createRequire(path.join(root, 'package.json')).resolve('node-gyp-build/package.json'));
  fs.cpSync(gyp, path.join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
  const open = (p: string): void => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  // The temporary directory itself must be enterable (it is on every usual system: 1777).
  copy = dir;
  return dir;
}
