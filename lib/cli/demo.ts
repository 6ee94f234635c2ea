// The cache-under-pressure demo (`pagewise demo`, examples/cache-under-pressure.mjs,
// test/pressure.test.ts).
//
// A child Node process runs inside a fresh memory cgroup with a small limit. It
// fills a VolatileCache with about twice the limit of unpinned entries, then
// allocates fresh memory, then reads every entry back. The kernel drops the
// unpinned entries it needs (MADV_FREE) and the child survives; the same
// workload with plain Buffers is OOM-killed. Without a writable memory cgroup
// the demo says so and runs a deterministic purge instead.
//
// Run as a script (`node dist/cli/demo.js child <volatile|plain> <limitMiB>`) it is
// that child: it prints one JSON line with what it saw.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VolatileCache } from '../volatile/cache';
import { type PressureEvent, type PressureLevel, watchMemoryPressure } from '../pressure';

const MiB = 1024 * 1024;
const ENTRY = MiB;

export interface DemoOptions {
  /** Memory limit of the child's cgroup in MiB. Default 256. */
  limitMiB?: number;
  /** Where the lines go. Default console.log. */
  log?: (line: string) => void;
}

/** What the child reports (one JSON line on stdout). */
export interface ChildReport {
  mode: 'volatile' | 'plain';
  limitMiB: number;
  entries: number;
  cachedMiB: number;
  freshMiB: number;
  intact: number;
  purged: number;
  corrupt: number;
  lazyFreeMiB?: number;
  /** The runtime's own RSS before the workload (the fresh allocation leaves room for it). */
  baselineMiB?: number;
  /** Whether the cache reacted to memory-pressure events (PAGEWISE_DEMO_LISTENER=off turns it off). */
  listener?: boolean;
  /** Pressure events received (listener on). */
  pressureEvents?: Record<PressureLevel, number>;
}

export interface ChildResult {
  /** Exit code (null if killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The child's JSON report, if it got that far. */
  report?: ChildReport;
  /** OOM kills counted by the cgroup (v1 memory.oom_control / v2 memory.events), if readable. */
  oomKills?: number;
  stderr: string;
}

/** A memory cgroup we can create children in, or why there is none. */
export type CgroupSupport = { version: 1 | 2; parent: string } | { version: 0; reason: string };

/** Find this process's memory cgroup (v1 memory controller, else v2 with memory enabled for children). */
export function findMemoryCgroup(): CgroupSupport {
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch (err) {
    return { version: 0, reason: `cannot read /proc/self/cgroup (${(err as Error).message})` };
  }
  const reasons: string[] = [];
  for (const line of lines) {
    const [, controllers, rel] = line.split(':');
    if (controllers?.split(',').includes('memory')) {
      const dir = path.join('/sys/fs/cgroup/memory', rel);
      if (writableDir(dir) && fs.existsSync(path.join(dir, 'memory.limit_in_bytes'))) return { version: 1, parent: dir };
      reasons.push(`v1 memory cgroup ${dir} is not writable`);
    }
  }
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified) {
    const rel = unified.slice(3);
    for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
      const dir = path.join(root, rel);
      let sub = '';
      try {
        sub = fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8');
      } catch {
        continue;
      }
      if (sub.split(/\s+/).includes('memory') && writableDir(dir)) return { version: 2, parent: dir };
      reasons.push(`v2 cgroup ${dir} has no writable memory controller for children`);
    }
  }
  return { version: 0, reason: reasons.length > 0 ? reasons.join('; ') : 'no memory cgroup found' };
}

function writableDir(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Run the child workload in a new memory cgroup (a child of `support.parent`) with
 * the given limit, then remove the cgroup.
 */
export async function runChildInCgroup(
  support: { version: 1 | 2; parent: string },
  mode: 'volatile' | 'plain',
  limitMiB: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildResult> {
  const dir = path.join(support.parent, `pagewise-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  // mkdir(2) never follows or reuses what is at the name (EEXIST); the writes below go to files
  // the kernel made in the new cgroup, opened without O_CREAT and without following a symlink.
  fs.mkdirSync(dir);
  try {
    if (!onCgroupFs(dir)) throw new Error(`pagewise demo: ${dir} is not on a cgroup file system: nothing written there`);
    const limit = String(limitMiB * MiB);
    if (support.version === 1) {
      writeControl(path.join(dir, 'memory.limit_in_bytes'), limit);
    } else {
      writeControl(path.join(dir, 'memory.max'), limit);
      try {
        writeControl(path.join(dir, 'memory.swap.max'), '0');
      } catch {
        // No swap controller: nothing to limit.
      }
    }
    const script = __filename.endsWith('.ts') ? path.join(__dirname, '..', '..', 'dist', 'cli', 'demo.js') : __filename;
    // The shell joins the cgroup, then becomes node: every byte the child touches is charged there.
    const child = spawn(
      'sh',
      ['-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs'), process.execPath, script, 'child', mode, String(limitMiB)],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    });
    const line = stdout.split('\n').find((l) => l.startsWith('{'));
    return { code, signal, report: line ? (JSON.parse(line) as ChildReport) : undefined, oomKills: readOomKills(dir, support.version), stderr };
  } finally {
    await removeCgroup(dir);
  }
}

/** cgroup v1 and v2 file systems (statfs f_type: CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC in linux/magic.h). */
const CGROUP_FS_TYPES = [0x27e0eb, 0x63677270];

function onCgroupFs(dir: string): boolean {
  return CGROUP_FS_TYPES.includes(Number(fs.statfsSync(dir).type));
}

/** Write a cgroup control file that must exist already: no O_CREAT, no O_TRUNC, never through a symlink. */
function writeControl(file: string, text: string): void {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

function readOomKills(dir: string, version: 1 | 2): number | undefined {
  try {
    const text = fs.readFileSync(path.join(dir, version === 1 ? 'memory.oom_control' : 'memory.events'), 'utf8');
    const m = /^oom_kill (\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((r) => setTimeout(r, 100)); // EBUSY while the dead child is being reaped
    }
  }
}

/** Fill bytes with a pattern that depends on the key, so intact entries can be checked byte for byte. */
function fillPattern(bytes: Uint8Array, key: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  const seed = Math.imul(key + 1, 0x9e3779b1);
  for (let i = 0; i < words.length; i++) words[i] = (seed + Math.imul(i, 0x85ebca6b)) >>> 0;
}

function checkPattern(bytes: Uint8Array, key: number): boolean {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  const seed = Math.imul(key + 1, 0x9e3779b1);
  for (let i = 0; i < words.length; i++) if (words[i] !== (seed + Math.imul(i, 0x85ebca6b)) >>> 0) return false;
  return true;
}

/**
 * The child's workload: cache about twice the limit, allocate fresh memory (60 % of the
 * limit, less if the runtime's own baseline RSS needs the room), read the cache back.
 * 'plain' keeps the same data in ordinary Buffers. The volatile workload yields to the event
 * loop as a service would, so that a memory-pressure listener (on unless `listener` is false)
 * can make the cache give memory back before the OOM killer looks.
 */
export async function childWorkload(mode: 'volatile' | 'plain', limitMiB: number, listener = true): Promise<ChildReport> {
  const entries = 2 * limitMiB;
  const baselineMiB = Math.ceil(process.memoryUsage().rss / MiB);
  // Whatever the runtime (Node 26's baseline is larger than Node 20's), keep a quarter of
  // the limit free of fresh memory: only the cache is meant to be squeezed.
  const freshMiB = Math.max(0, Math.min(Math.floor(FRESH_SHARE * limitMiB), limitMiB - baselineMiB - Math.floor(limitMiB / 4)));
  const report: ChildReport = { mode, limitMiB, entries, cachedMiB: entries, freshMiB, intact: 0, purged: 0, corrupt: 0, baselineMiB };
  const fresh: Buffer[] = [];
  if (mode === 'plain') {
    const held: Buffer[] = [];
    for (let k = 0; k < entries; k++) {
      const b = Buffer.allocUnsafe(ENTRY);
      fillPattern(b, k);
      held.push(b);
    }
    for (let i = 0; i < freshMiB; i++) fresh.push(Buffer.alloc(MiB, 1));
    for (let k = 0; k < entries; k++) {
      if (checkPattern(held[k], k)) report.intact++;
      else report.corrupt++;
    }
    return report;
  }
  // Budget above what is cached: no userspace eviction, the kernel and the pressure
  // listener are the only ones dropping entries.
  const cache = new VolatileCache<number>({ budget: 4 * entries * MiB, arenaSize: 4 * entries * MiB, decayMs: -1 });
  // One scratch buffer for every produced entry: the cache copies it, so no garbage waits for GC.
  const scratch = new Uint8Array(ENTRY);
  const produce = (k: number) => {
    fillPattern(scratch, k);
    return scratch;
  };
  const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
  const watcher = listener ? watchMemoryPressure() : undefined;
  report.listener = watcher?.supported === true;
  watcher?.on('pressure', (e: PressureEvent) => {
    // VolatileCache.handlePressure (issue 11, helper "volatile") where present; until then
    // the public arena API: a critical event purges every unpinned span.
    const handle = (cache as unknown as { handlePressure?: (level: PressureLevel) => void }).handlePressure;
    if (typeof handle === 'function') handle.call(cache, e.level);
    else if (e.level === 'critical') cache.arena.purge();
  });
  try {
    for (let k = 0; k < entries; k++) {
      cache.get(k, produce).release();
      if (k % 8 === 7) await yieldToLoop();
    }
    const lazy = cache.arena.kernelLazyFreeBytes();
    if (lazy !== undefined) report.lazyFreeMiB = Math.round(lazy / MiB);
    for (let i = 0; i < freshMiB; i++) {
      fresh.push(Buffer.alloc(MiB, 1));
      if (i % 8 === 7) await yieldToLoop();
    }
    // Newest first: reclaim drops the least recently unpinned pages first.
    for (let k = entries - 1; k >= 0; k--) {
      // Yield as a service does between requests: a read entry's view is found unreachable
      // (and its span made volatile again) only between tasks (docs/ARENA.md).
      if (k % 8 === 0) await yieldToLoop();
      using h = cache.get(k, produce);
      if (h.outcome === 'hit') {
        report.intact++;
        if (!checkPattern(h.bytes, k)) report.corrupt++;
      } else report.purged++;
    }
  } finally {
    if (watcher !== undefined) report.pressureEvents = { ...watcher.counts };
    watcher?.close();
    cache.close();
  }
  return report;
}

/**
 * The demo: the workload in a child cgroup, first with plain Buffers (expected to be
 * OOM-killed), then with the volatile cache (expected to survive). Returns an exit code.
 */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const limitMiB = options.limitMiB ?? 256;
  const log = options.log ?? ((line: string) => console.log(line));
  const support = findMemoryCgroup();
  if (support.version === 0) {
    log(`No writable memory cgroup here (${support.reason}), so the demo cannot apply real memory pressure.`);
    log('Running the deterministic version instead: MADV_PAGEOUT stands in for the kernel under pressure.');
    return deterministicDemo(log);
  }
  // Below some limit Node itself does not fit next to the fresh allocations, and even the
  // volatile child is OOM-killed: that would show nothing about the cache. Refuse instead.
  const floor = await runtimeFloor();
  if (floor !== undefined && limitMiB < floor.floorMiB) {
    log(
      `pagewise demo: --limit ${limitMiB}M is too small to show anything: a Node process with pagewise loaded ` +
        `already uses ${floor.baselineMiB} MiB here, and the workload allocates ${Math.round(FRESH_SHARE * 100)} % of the limit ` +
        `as fresh memory the kernel cannot take back (plus ${HEADROOM_MIB} MiB of headroom for V8), so both runs would be ` +
        `OOM-killed. Use --limit ${floor.floorMiB}M or more.`,
    );
    return DEMO_LIMIT_TOO_SMALL;
  }
  log(`pagewise demo: a child process limited to ${limitMiB} MiB (cgroup v${support.version}) caches ${2 * limitMiB} MiB,`);
  log(`then allocates up to ${Math.floor(FRESH_SHARE * limitMiB)} MiB of fresh memory, then reads its cache back.`);
  log('');
  log('1. With plain Buffers (everything stays in memory):');
  const plain = await runChildInCgroup(support, 'plain', limitMiB);
  if (plain.signal === 'SIGKILL' || (plain.oomKills ?? 0) > 0) {
    log(`   the kernel's OOM killer ended it (signal ${plain.signal ?? 'none'}, oom kills ${plain.oomKills ?? '?'}). As expected.`);
  } else {
    log(`   it was not killed (exit code ${plain.code}): the limit did not bite on this machine.`);
  }
  log('');
  log('2. With a VolatileCache (entries unpinned while not in use):');
  const vol = await runChildInCgroup(support, 'volatile', limitMiB);
  const r = vol.report;
  if (vol.code !== 0 || r === undefined) {
    if (vol.signal === 'SIGKILL' || (vol.oomKills ?? 0) > 0) {
      log(
        `   the kernel's OOM killer ended it too (signal ${vol.signal ?? 'none'}, oom kills ${vol.oomKills ?? '?'}): ` +
          `${limitMiB} MiB did not hold Node plus the ${Math.floor(FRESH_SHARE * limitMiB)} MiB of fresh memory on this machine. ` +
          'Try a larger --limit.',
      );
    } else {
      log(`   it failed (exit code ${vol.code}, signal ${vol.signal}). ${vol.stderr.trim()}`);
    }
    return 1;
  }
  log(`   it survived. After filling, the kernel counted ${r.lazyFreeMiB ?? '?'} MiB as LazyFree (droppable).`);
  log(`   Reading back ${r.entries} entries: ${r.intact} intact (checked byte for byte), ${r.purged} dropped by the kernel and regenerated.`);
  if (r.corrupt > 0) {
    log(`   ${r.corrupt} entries said intact but were not: this is a bug.`);
    return 1;
  }
  log('   The kernel took back the unpinned memory it needed, and the cache noticed every page it took.');
  return 0;
}

/** Share of the limit the child allocates as fresh (unreclaimable) memory. */
export const FRESH_SHARE = 0.6;
/** Room for V8's heap growth and the cache's bookkeeping during the workload. */
export const HEADROOM_MIB = 24;
/** runDemo's result when the limit cannot hold the runtime (a usage error of `pagewise demo`). */
export const DEMO_LIMIT_TOO_SMALL = 2;

/**
 * The smallest limit at which the demo can show something: the resident memory of a Node
 * child that has loaded pagewise and made a cache (measured, on this machine and Node),
 * plus headroom, must fit next to the fresh allocations. undefined if it cannot be measured.
 */
export async function runtimeFloor(): Promise<{ baselineMiB: number; floorMiB: number } | undefined> {
  const script = __filename.endsWith('.ts') ? path.join(__dirname, '..', '..', 'dist', 'cli', 'demo.js') : __filename;
  const child = spawn(process.execPath, [script, 'probe'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', (c) => resolve(c));
  });
  const rss = Number(out.trim());
  if (code !== 0 || !Number.isFinite(rss) || rss <= 0) return undefined;
  const baselineMiB = Math.ceil(rss / MiB);
  return { baselineMiB, floorMiB: Math.ceil((baselineMiB + HEADROOM_MIB) / (1 - FRESH_SHARE)) };
}

function deterministicDemo(log: (line: string) => void): number {
  const cache = new VolatileCache<number>({ budget: 64 * MiB, decayMs: -1 });
  const produce = (k: number) => {
    const b = new Uint8Array(ENTRY);
    fillPattern(b, k);
    return b;
  };
  for (let k = 0; k < 32; k++) cache.get(k, produce).release();
  log(`Cached 32 MiB in 32 entries and released them (unpinned: the kernel may drop them).`);
  const purged = cache.arena.purge();
  log(`Purged ${purged / MiB} MiB of unpinned memory (MADV_PAGEOUT, what reclaim does under pressure).`);
  let regenerated = 0;
  let corrupt = 0;
  for (let k = 0; k < 32; k++) {
    using h = cache.get(k, produce);
    if (h.outcome !== 'hit') regenerated++;
    if (!checkPattern(h.bytes, k)) corrupt++;
  }
  log(`Reading back: ${regenerated} of 32 entries were dropped and regenerated; ${corrupt} wrong.`);
  cache.close();
  return corrupt === 0 && regenerated > 0 ? 0 : 1;
}

if (require.main === module && process.argv[2] === 'probe') {
  // What the child costs before its workload: Node, pagewise, an empty cache.
  const cache = new VolatileCache<number>({ budget: 16 * MiB, decayMs: -1 });
  cache.get(0, () => new Uint8Array(ENTRY)).release();
  process.stdout.write(`${process.memoryUsage().rss}\n`);
  cache.close();
}

if (require.main === module && process.argv[2] === 'child') {
  const mode = process.argv[3] === 'plain' ? 'plain' : 'volatile';
  void childWorkload(mode, Number(process.argv[4] ?? 256), process.env.PAGEWISE_DEMO_LISTENER !== 'off').then((report) =>
    process.stdout.write(`${JSON.stringify(report)}\n`),
  );
}
