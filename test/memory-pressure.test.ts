// watchMemoryPressure(): synthetic events on both backends, the native thread's lifetime, the
// PSI window fallback, and real cgroup v1 events in a child memory cgroup (rising allocation:
// the event arrives before the OOM killer).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createPagewise, type PressureEvent, watchMemoryPressure } from '../lib/index';
import { ownCgroups } from '../lib/cgroup';
import { onKernel } from './helpers';

const MiB = 1024 * 1024;
const CHILD = path.join(__dirname, 'fixtures', 'pressure-child.cjs');
const haveDist = fs.existsSync(path.join(__dirname, '..', 'dist', 'index.js'));

/** Tasks of this process named like the watcher thread (native/pressure.cc). */
function watcherThreads(): number {
  let n = 0;
  for (const task of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'pw-pressure') n++;
    } catch {
      // the task ended meanwhile
    }
  }
  return n;
}

function hasCapSysResource(): boolean {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m !== null && (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n;
}

describe('synthetic pressure (both backends)', () => {
  it('raise() delivers events with their level and source; counts; nothing after close()', () => {
    const seen: PressureEvent[] = [];
    const w = watchMemoryPressure({ sources: 'synthetic' }, (e) => seen.push(e));
    expect(w.supported).toBe(false);
    expect(w.reason).toMatch(/synthetic/);
    expect(w.sources).toEqual([]);
    w.raise('moderate');
    w.raise('critical', 'test');
    expect(seen).toEqual([
      { level: 'moderate', source: 'synthetic' },
      { level: 'critical', source: 'test' },
    ]);
    expect(w.counts).toEqual({ moderate: 1, critical: 1 });
    w.close();
    expect(w.closed).toBe(true);
    w.raise('critical');
    expect(seen).toHaveLength(2);
    w.close(); // idempotent
  });

  it('a watcher for a simulator instance is synthetic and says why', () => {
    const sim = createPagewise('simulator');
    using w = watchMemoryPressure({ pagewise: sim });
    expect(w.supported).toBe(false);
    expect(w.reason).toMatch(/simulator/);
    const seen: string[] = [];
    w.on('pressure', (e: PressureEvent) => seen.push(e.level));
    w.raise('critical');
    expect(seen).toEqual(['critical']);
  });

  it('argument errors are Node-style', () => {
    using w = watchMemoryPressure({ sources: 'synthetic' });
    expect(() => w.raise('severe' as 'critical')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => watchMemoryPressure({ signal: {} as AbortSignal })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => watchMemoryPressure({ sources: 'all' as 'auto' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => watchMemoryPressure({ sources: ['psi', 'cgroup-v3' as 'psi'] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => watchMemoryPressure({ psi: { moderate: 'some 1' } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => watchMemoryPressure({}, 42 as unknown as () => void)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('an AbortSignal closes it, also one aborted already', () => {
    const ac = new AbortController();
    const w = watchMemoryPressure({ sources: 'synthetic', signal: ac.signal });
    expect(w.closed).toBe(false);
    ac.abort();
    expect(w.closed).toBe(true);
    const w2 = watchMemoryPressure({ signal: AbortSignal.abort() });
    expect(w2.closed).toBe(true);
    expect(watcherThreads()).toBe(0);
  });
});

describe('kernel sources (native)', () => {
  it.skipIf(!onKernel)('one poll thread per watcher while open, none after close(); closing twice is fine', () => {
    const before = watcherThreads();
    const w = watchMemoryPressure();
    if (!w.supported) {
      expect(w.reason).toBeTruthy();
      console.warn(`memory-pressure: no kernel source here (${w.reason}); thread test skipped`);
      return;
    }
    expect(w.sources.length).toBeGreaterThan(0);
    expect(watcherThreads()).toBe(before + 1);
    w.close();
    expect(watcherThreads()).toBe(before);
    w.close();
  });

  it.skipIf(!onKernel || !haveDist)('a worker that exits or is terminated with a watcher open leaves no thread behind', async () => {
    const { Worker } = await import('node:worker_threads');
    const dist = JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'));
    const before = watcherThreads();
    // Each worker reports, then waits for the parent's word: the thread count is read while
    // the worker surely lives (a worker that exited on its own before the count raced it).
    // The first then exits by itself (its last listener is gone), the second is terminated.
    const report = `const { parentPort } = require('node:worker_threads'); const w = require(${dist}).watchMemoryPressure(); parentPort.postMessage(w.supported);`;
    for (const [code, ending] of [
      [`${report} parentPort.once('message', () => {});`, 'exits'],
      [`${report} setInterval(() => {}, 1000);`, 'terminated'],
    ] as const) {
      const worker = new Worker(code, { eval: true });
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      const supported = await new Promise<boolean>((resolve) => worker.once('message', resolve));
      if (!supported) {
        await worker.terminate();
        return; // no kernel source here: nothing to leak
      }
      expect(watcherThreads(), 'while the worker lives').toBe(before + 1);
      if (ending === 'exits') worker.postMessage('exit');
      else await worker.terminate();
      await exited;
      expect(watcherThreads(), `after the worker ${ending}`).toBe(before);
    }
  });

  it.skipIf(!onKernel || !fs.existsSync('/proc/pressure/memory'))(
    'PSI: a window that is not a multiple of 2 s works with CAP_SYS_RESOURCE, else is widened to 2 s and noted',
    () => {
      using w = watchMemoryPressure({ sources: ['psi'], psi: { moderate: 'some 100000 1500000', critical: false } });
      expect(w.supported).toBe(true);
      expect(w.sources).toHaveLength(1);
      if (hasCapSysResource()) {
        expect(w.sources[0].detail).toBe('some 100000 1500000 -> moderate');
      } else {
        expect(w.sources[0].detail).toBe('some 100000 2000000 -> moderate');
        expect(w.notes.join('\n')).toMatch(/'some 100000 1500000' refused \((EINVAL|EPERM)/);
      }
    },
  );

  it.skipIf(!onKernel)('a source that does not exist is a note, not an error; none at all is supported: false with the reason', () => {
    using w = watchMemoryPressure({ sources: ['cgroup-v2-events'] });
    if (w.supported) return; // this machine runs cgroup v2 with a memory controller
    expect(w.reason).toMatch(/cgroup-v2-events/);
    expect(w.notes.length).toBeGreaterThan(0);
  });
});

const v1 = onKernel ? ownCgroups().v1 : undefined;
let v1Writable = false;
if (v1 !== undefined) {
  try {
    fs.accessSync(v1, fs.constants.W_OK);
    v1Writable = true;
  } catch {
    // not ours to create children in
  }
}
if (onKernel && !v1Writable) console.warn('\n*** memory-pressure.test.ts: no writable cgroup v1 memory controller: the cgroup tests are SKIPPED ***\n');
if (onKernel && !haveDist) console.warn('\n*** memory-pressure.test.ts: dist/ missing (npm run build:ts): the cgroup tests are SKIPPED ***\n');

interface ChildRun {
  lines: Record<string, unknown>[];
  code: number | null;
  signal: NodeJS.Signals | null;
  oomKills: number;
}

/** Run test/fixtures/pressure-child.cjs in a fresh cgroup v1 memory cgroup with this limit. */
async function runInCgroup(limitMiB: number, args: string[], timeoutMs: number, { nested = false } = {}): Promise<ChildRun> {
  const dir = path.join(v1!, `pressure-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  // nested: the child runs in a cgroup of its own below the limited one (a container with nested cgroups).
  const inner = nested ? path.join(dir, 'inner') : dir;
  fs.mkdirSync(dir);
  if (nested) fs.mkdirSync(inner);
  onTestFinished(async () => {
    for (const d of nested ? [inner, dir] : [dir]) {
      for (let i = 0; i < 100; i++) {
        try {
          fs.rmdirSync(d);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
          await new Promise((r) => setTimeout(r, 50)); // EBUSY until the dead child is reaped
        }
      }
    }
  });
  fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitMiB * MiB));
  const child = spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', path.join(inner, 'cgroup.procs'), process.execPath, CHILD, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  const oom = /^oom_kill (\d+)/m.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'));
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { lines, code, signal, oomKills: oom ? Number(oom[1]) : 0 };
}

describe('real pressure in a child memory cgroup (native, cgroup v1)', () => {
  const runnable = onKernel && v1Writable && haveDist;

  it.skipIf(!runnable)('rising allocation: a critical event arrives before the OOM killer ends the child', async () => {
    const limitMiB = 128;
    const r = await runInCgroup(limitMiB, ['rising', '5'], 240_000);
    const events = r.lines.filter((l) => l.event !== undefined);
    console.log(`rising allocation in ${limitMiB} MiB: ${JSON.stringify(r.lines[0])}; events ${JSON.stringify(events.slice(0, 4))}; ` +
      `exit ${r.code} signal ${r.signal}, oom kills ${r.oomKills}`);
    expect(r.lines[0]).toMatchObject({ supported: true });
    expect(r.lines[0].sources).toContain('cgroup-v1-usage');
    expect(r.lines[0].details).toContain('low,local -> moderate'); // "<level>[,<mode>]": a comma, not a space
    expect(r.lines[0].sources).not.toContain('psi'); // under its own limit the host's stalls are not its pressure
    expect(r.signal).toBe('SIGKILL');
    expect(r.oomKills).toBeGreaterThan(0);
    const critical = events.find((e) => e.event === 'critical' && e.source === 'cgroup-v1-usage');
    expect(critical).toBeDefined();
    // The last line the child printed is later than the event: it was alive when the event came.
    const last = r.lines.at(-1)!;
    expect(r.lines.indexOf(critical!)).toBeLessThan(r.lines.length - 1);
    expect(last.allocatedMiB as number).toBeGreaterThanOrEqual(critical!.allocatedMiB as number);
  }, 300_000);

  it.skipIf(!runnable)('rising allocation beside an unpinned cache: the critical event purges it, the cgroup usage drops, no OOM', async () => {
    const limitMiB = 192;
    const cachedMiB = 64;
    const r = await runInCgroup(limitMiB, ['cache', String(cachedMiB), '120'], 240_000);
    const purge = r.lines.find((l) => l.purge !== undefined);
    const done = r.lines.find((l) => l.done === true);
    console.log(`cache + rising allocation in ${limitMiB} MiB: purge ${JSON.stringify(purge)}; done ${JSON.stringify(done)}; ` +
      `exit ${r.code} signal ${r.signal}`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.oomKills).toBe(0);
    expect(purge).toBeDefined();
    expect(purge!.purge).toMatch(/^cgroup-v1/); // this cgroup's own signal, not the host's
    expect(purge!.allocatedMiB as number).toBeGreaterThan(0);
    // The unpinned entries really left the cgroup (they were charged while lazy-free).
    expect((purge!.usageBefore as number) - (purge!.usageAfter as number)).toBeGreaterThanOrEqual((cachedMiB / 2) * MiB);
    expect(done!.purgedEntries as number).toBeGreaterThan(0); // the cache noticed (and regenerated) them
    expect(done!.allocatedMiB).toBe(120);
  }, 300_000);

  it.skipIf(!runnable)('an idle watcher does not keep the process alive; ownMemoryLimit() reads the cgroup limit', async () => {
    const r = await runInCgroup(256, ['idle'], 120_000);
    expect(r.lines[0]).toMatchObject({ supported: true });
    expect(r.lines[0].limit).toEqual({ bytes: 256 * MiB, file: expect.stringMatching(/memory\.limit_in_bytes$/) });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  }, 180_000);

  it.skipIf(!runnable)('a limit on an ancestor cgroup: the watcher and the arena see the same limit (one reader, lib/cgroup.ts)', async () => {
    const r = await runInCgroup(256, ['idle'], 120_000, { nested: true });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    const first = r.lines[0];
    // Was: undefined (only the own cgroup was read) and "cgroup-v1-usage: ... has no memory limit".
    expect(first.limit).toEqual({ bytes: 256 * MiB, file: expect.not.stringMatching(/\/inner\//) });
    expect(first.effectiveLimit).toBe(Math.min(256 * MiB, os.totalmem()));
    expect(first.sources).toContain('cgroup-v1-usage');
    expect((first.details as string[]).some((d) => d.endsWith(`(limit ${256 * MiB}) -> critical`))).toBe(true);
  }, 180_000);

  it.skipIf(onKernel)('skipped on the simulator: real pressure needs the kernel and a memory cgroup', () => {});
});
