// Runs a hardening child script (test/hardening/*-child.mjs) with the backend
// under test and returns how it ended: exit code, signal, and its JSON line.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export interface ChildResult<T> {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: T | undefined;
}

// Bounds, not expectations: a child that hangs is ended at CHILD_TIMEOUT_MS and reported; the
// test's own bound comes later so that the report is seen. Generous because on a loaded 2-core
// machine (load average 10+) children ran 8x slower than unloaded (soak: 100,000 cycles > 120 s).
export const CHILD_TIMEOUT_MS = 600_000;
export const CHILD_TEST_TIMEOUT_MS = CHILD_TIMEOUT_MS + 60_000;

export function runChild<T = Record<string, unknown>>(
  script: string,
  args: string[] = [],
  { gc = true, timeout = CHILD_TIMEOUT_MS }: { gc?: boolean; timeout?: number } = {},
): ChildResult<T> {
  const file = path.join(__dirname, script);
  const r = spawnSync(process.execPath, [...(gc ? ['--expose-gc'] : []), file, ...args], {
    encoding: 'utf8',
    timeout,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, PAGEWISE_BACKEND: process.env.PAGEWISE_BACKEND ?? 'native' },
  });
  const last = r.stdout.trim().split('\n').filter(Boolean).pop();
  let json: T | undefined;
  try {
    json = last ? (JSON.parse(last) as T) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, json };
}

/** A message for expect(): how the child ended and the end of its stderr. */
export function why(r: ChildResult<unknown>): string {
  return `status ${r.status} signal ${r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`;
}
