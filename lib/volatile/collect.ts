// Asking the engine for a garbage collection. The volatile arena learns that Node is
// done with a span's bytes only when the span's exposed ArrayBuffers are collected
// (docs/ARENA.md): under memory pressure, waiting for the engine's own schedule could
// leave held memory non-volatile when it is needed most, so the arena asks for one.
//   - globalThis.gc when the process exposes it (node --expose-gc, Deno --v8-flags=--expose-gc);
//   - Bun.gc() on Bun;
//   - otherwise on Node: v8.setFlagsFromString('--expose-gc') followed by
//     vm.runInNewContext('gc') yields V8's gc extension function (the flag is read when a
//     context is created; Node's v8 documentation warns that changing flags after start-up
//     may be unpredictable, and this one only installs a function). Checked on Node 20–26.
// Where none works, nothing is requested: spans are picked up on the engine's schedule.
import { createRequire } from 'node:module';

type Collect = () => void;
let cached: Collect | null | undefined;

function find(): Collect | null {
  const g = globalThis as { gc?: unknown; Bun?: { gc?: (sync: boolean) => void } };
  if (typeof g.gc === 'function') return g.gc as Collect;
  if (typeof g.Bun?.gc === 'function') {
    const bun = g.Bun;
    return () => bun.gc?.(true);
  }
  try {
    const load = createRequire(__filename);
    const v8 = load('node:v8') as typeof import('node:v8');
    const vm = load('node:vm') as typeof import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('typeof gc === "function" ? gc : undefined') as unknown;
    return typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    return null;
  }
}

/** The engine's collection function, if this runtime lets us reach one (looked up once). */
export function collectionFunction(): Collect | undefined {
  if (cached === undefined) cached = find();
  return cached ?? undefined;
}

let lastMs = 0;

/** Run a full collection now if possible. Returns whether one ran. */
export function requestCollection(): boolean {
  const gc = collectionFunction();
  if (gc === undefined) return false;
  const t = performance.now();
  gc();
  lastMs = performance.now() - t;
  return true;
}

/** How long the last requested collection took, in milliseconds (0 before the first). */
export function lastCollectionMs(): number {
  return lastMs;
}
