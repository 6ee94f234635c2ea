// A Pagewise whose backend counts every madvise call by advice (a spy around the
// backend under test): lets tests prove that a path makes no syscall.
import { Pagewise } from '../lib/api';
import type { Backend, BackendMapping } from '../lib/backend';
import { ADVICE } from '../lib/advice';
import { pw } from './helpers';

const NAMES = new Map<number, string>(Object.entries(ADVICE).map(([name, info]) => [info.value, name]));

export interface SpyPagewise {
  pagewise: Pagewise;
  /** madvise calls so far, by advice name. */
  calls: Map<string, number>;
  /** [offset, length, advice] of every advised range, in order. */
  log: Array<[number, number, string]>;
  /** Runs per adviseRuns() call (one syscall each). */
  batches: number[];
  total(): number;
}

/** Methods bound to the target: the backends keep private state. */
function forward<T extends object>(target: T, override: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (prop in override) return (override as Record<PropertyKey, unknown>)[prop];
      const v = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

export function spyPagewise(): SpyPagewise {
  const calls = new Map<string, number>();
  const log: Array<[number, number, string]> = [];
  const batches: number[] = [];
  const backend = pw.backend;
  const spy: Backend = forward(backend, {
    map: (request: Parameters<Backend['map']>[0]) => {
      const m = backend.map(request);
      return forward<BackendMapping>(m, {
        // Without the call-argument fast paths, every advise and residency query comes through here.
        adviseArgs: undefined,
        residencyBitsArgs: undefined,
        advise: (offset: number, length: number, advice: number) => {
          const name = NAMES.get(advice) ?? String(advice);
          calls.set(name, (calls.get(name) ?? 0) + 1);
          log.push([offset, length, name]);
          m.advise(offset, length, advice);
        },
        // A batch is one call (process_madvise) of several runs: logged per run, counted once.
        ...(m.adviseRuns === undefined
          ? {}
          : {
              adviseRuns: (runs: Float64Array, advice: number) => {
                const name = NAMES.get(advice) ?? String(advice);
                calls.set(name, (calls.get(name) ?? 0) + 1);
                for (let i = 0; i < runs.length; i += 2) log.push([runs[i], runs[i + 1], name]);
                batches.push(runs.length / 2);
                m.adviseRuns?.(runs, advice);
              },
            }),
      });
    },
  });
  return {
    pagewise: new Pagewise(spy),
    calls,
    log,
    batches,
    total: () => [...calls.values()].reduce((a, b) => a + b, 0),
  };
}
