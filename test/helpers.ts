// Shared by the test files: the backend under test and small file helpers.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import { pagewise } from '../lib/index';

export const pw = pagewise;
/** True when the suite runs against the kernel through the native addon. */
export const onKernel = pw.kind === 'native';
export const PAGE = pw.pageSize;

let dir: string | undefined;
// Each test file gets its own copy of this module: remove that file's temporary directory.
afterAll(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary file with the given content. */
export function tempFile(content: Uint8Array | string, name = 'file'): string {
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-test-'));
  const file = path.join(dir, `${name}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, content);
  return file;
}

/** n bytes of a repeating, position-dependent pattern. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >>> 12)) & 0xff || 1;
  return out;
}

/** Every byte of [from, to) equals value. */
export function allEqual(bytes: Uint8Array, value: number, from = 0, to = bytes.length): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== value) return false;
  return true;
}
