// Shared by the test files: the backend under test and small file helpers.
import { requestCollection } from '../lib/volatile/collect';
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

/**
 * Let the engine collect every view nothing references any more, and let the arena act
 * on it (issue 22: a span becomes volatile, or a freed one reusable, only once every view
 * exposed over it was collected). A view made or read in the current task stays alive
 * until the task ends (WeakRef semantics), hence the macrotask turns around each collection.
 * Returns once `arena` (if given) holds nothing back, or after a bounded number of rounds.
 */
export async function collectViews(arena?: { stats: { heldBytes: number; quarantinedBytes: number } }): Promise<void> {
  const turn = () => new Promise((r) => setTimeout(r, 0));
  for (let i = 0; i < 10; i++) {
    await turn();
    requestCollection();
    await turn();
    await turn();
    if (arena !== undefined && arena.stats.heldBytes === 0 && arena.stats.quarantinedBytes === 0) return;
    if (arena === undefined && i >= 1) return;
  }
}
