// Helpers for tests that drive a Backend (lib/backend.ts) directly, below the
// public API: test/contract/backend.test.ts (the project's backend) and
// test/simulator.test.ts (a SimulatorBackend of its own).
import * as fs from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Backend, BackendMapping, MapRequest } from '../lib/backend';

export const P = 4096;
export const RW = 3;
/** MADV_* values (lib/constants.ts names them for the public API; these tests speak the kernel's numbers). */
export const A = {
  NORMAL: 0, RANDOM: 1, WILLNEED: 3, DONTNEED: 4, FREE: 8, REMOVE: 9, HUGEPAGE: 14, WIPEONFORK: 18, COLD: 20,
  PAGEOUT: 21, POPULATE_READ: 22, POPULATE_WRITE: 23, DONTNEED_LOCKED: 24, COLLAPSE: 25, GUARD_INSTALL: 102,
  GUARD_REMOVE: 103,
};

/** n pages, page i filled with the letter 'a' + i. */
export function letters(n: number, extra = 0): Uint8Array {
  const out = new Uint8Array(n * P + extra);
  for (let i = 0; i < out.length; i++) out[i] = 97 + Math.floor(i / P);
  return out;
}

export function anon(be: Backend, pages: number, shared = false, extra: Partial<MapRequest> = {}): BackendMapping {
  return be.map({ length: pages * P, protection: RW, shared, populate: false, noreserve: false, hugePageShift: 0, ...extra });
}

export function mapFile(
  be: Backend,
  file: string,
  pages: number,
  shared: boolean,
  opts: { writable?: boolean; protection?: number; offset?: number } = {},
): BackendMapping {
  const writable = opts.writable ?? true;
  const fd = fs.openSync(file, writable ? 'r+' : 'r');
  try {
    return be.map({
      length: pages * P,
      protection: opts.protection ?? RW,
      shared,
      populate: false,
      noreserve: false,
      hugePageShift: 0,
      file: { fd, path: file, offset: opts.offset ?? 0, writable },
    });
  } finally {
    fs.closeSync(fd); // the backend must not need the caller's descriptor
  }
}

/** First byte of each page. */
export function firsts(m: BackendMapping, pages: number): string {
  const w = m.view(0, pages * P);
  let s = '';
  for (let i = 0; i < pages; i++) s += w[i * P] === 0 ? '0' : String.fromCharCode(w[i * P]);
  return s;
}

/** The residency vector as a string of 0 and 1. */
export function res(m: BackendMapping, pages: number): string {
  return Array.from(m.residency(0, pages * P)).join('');
}

/** Write 'A' + i at the start of the pages in `which`. */
export function touch(m: BackendMapping, which: number[]): void {
  const w = m.view(0, m.length);
  for (const i of which) w[i * P] = 65 + i;
}

/**
 * The code of an error a backend threw: its `code`, or the name of its `errno`
 * (the addon reports kernel failures as errno + syscall only; the public API
 * names them, lib/errors.ts).
 */
export function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; errno?: number };
  return e.code ?? (typeof e.errno === 'number' ? getSystemErrorName(e.errno) : undefined);
}

/** The code of what fn throws, or undefined. */
export function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return errorCode(err);
  }
  return undefined;
}

/** The code `promise` rejects with, or undefined when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return errorCode(err);
  }
  return undefined;
}
