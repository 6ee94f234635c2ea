// Differential test: the kernel (native backend) against the reference simulator.
//
// fast-check generates random sequences of operations and runs each one, through
// the public API (createPagewise('native') and createPagewise('simulator')), on
// both backends in this process: map (anonymous private / shared, a temp file
// private / shared, also with invalid options), writes and reads through
// mapping.buffer or a view, every advice name (and an unknown one) over random
// ranges (aligned, unaligned, out of range, ill-typed), residency, populate,
// flush / flushSync, protect, lock / unlock, resize, view / detachView, close.
// After every operation it compares the returned values, the thrown errors
// (class, code, errno, syscall, message), length / closed / protection, the
// bytes read, and the residency of every page except those the sequence read
// since it last wrote them (a read maps the zero page, allocates shmem or maps
// file pages with fault-around; the simulator cannot see reads). At the end it
// compares the full contents of the mapping and the bytes of the file.
//
// The process stays alive because the test never touches memory JavaScript may
// not access: it tracks protection and guard pages and skips reads and writes
// there (a failed guard install counts as guarded).
//
// Seeds: random per run, fixed (CI_SEED) when the CI variable is set. Replay: the seed is
// printed at the start (`differential seed: N`). On failure
// fast-check prints the seed and the path of the shrunk counterexample:
//   PAGEWISE_SEED=N npx vitest run --project native test/differential.test.ts
//   PAGEWISE_SEED=N PAGEWISE_PATH='2:1:0' npx vitest run --project native test/differential.test.ts
// PAGEWISE_RUNS overrides the number of sequences (default 5000); PAGEWISE_STATS=1 prints how
// often each operation succeeded or failed (coverage); PAGEWISE_TRACE=<file> appends every step to
// <file> as it runs (to find a step that crashed the process).
//
// Allowed differences (docs/SIMULATOR.md, divergences 1-3): residency of pages read since they were
// last written (for file and shmem mappings, any read fault may map every page: fault-around);
// residency of file pages that were out of the kernel's page cache when an operation that can
// fault or read ahead ran (read-around, asynchronous WILLNEED), until both report them resident;
// a view the simulator detached together with another view on the same extent; after PAGEOUT,
// file pages that a read may have mapped or that were written through a shared mapping (the
// kernel's outcome depends on mappings and LRU state the simulator cannot see), until both
// report them resident; after PAGEOUT, private anonymous zero-page entries that MADV_FREE covered
// (6.18 releases differ on whether PAGEOUT then unmaps them), until written. Writes always
// change the bytes they write (the simulator sees writes by their effect), and the test fdatasyncs
// the kernel's file after closing a shared file mapping (the simulator writes back at close).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { ADVICE_NAMES, createPagewise, type Mapping, type Pagewise, type Residency } from '../lib/index';

const P = 4096;
const MAX_PAGES = 16;
const RUNS = Number(process.env.PAGEWISE_RUNS ?? 5000);
// CI runs a fixed seed, so a submission's CI is reproducible; every other run explores a new one.
const CI_SEED = 20261122;
const SEED =
  process.env.PAGEWISE_SEED !== undefined
    ? Number(process.env.PAGEWISE_SEED)
    : process.env.CI
      ? CI_SEED
      : (Math.random() * 2 ** 31) | 0;
const PATH = process.env.PAGEWISE_PATH;
/** PAGEWISE_TRACE=file: append every step to that file as it happens (to find a step that crashed the process). */
const TRACE = process.env.PAGEWISE_TRACE ? fs.openSync(process.env.PAGEWISE_TRACE, 'a') : undefined;

let native: Pagewise | undefined;
let unavailable = '';
try {
  native = createPagewise('native');
} catch (err) {
  unavailable = (err as Error).message;
}

const PROTS = ['none', 'read', 'read-write', 'read-exec', 'read-write-exec'] as const;
type Prot = (typeof PROTS)[number];
const PROT_BITS: Record<Prot, number> = { none: 0, read: 1, 'read-write': 3, 'read-exec': 5, 'read-write-exec': 7 };

// ---- operations -----------------------------------------------------------

/** A range argument, resolved against the mapping's length when the operation runs. */
type RangeSpec =
  | { t: 'all' }
  | { t: 'pages'; first: number; count: number } // page-aligned in the region (protect() needs it)
  | { t: 'frac'; a: number; b: number } // any bytes inside the mapping
  | { t: 'tail'; a: number } // from a byte to the end
  | { t: 'raw'; offset?: number; length?: number } // may be out of range or not an integer
  | { t: 'bad'; value: unknown }; // not a range at all

type Op =
  | { op: 'map'; kind: number; pages: number; cut: number; fileOffset: number; prot: Prot; populate: boolean; odd: number }
  | { op: 'write'; target: number; a: number; len: number }
  | { op: 'read'; target: number; a: number; len: number }
  | { op: 'advise'; advice: string; range: RangeSpec }
  | { op: 'residency'; range: RangeSpec }
  | { op: 'populate'; mode: 'read' | 'write' | undefined; range: RangeSpec }
  | { op: 'flush'; sync: boolean; invalidate: boolean | undefined; range: RangeSpec }
  | { op: 'protect'; prot: Prot; range: RangeSpec }
  | { op: 'lock'; onFault: boolean | undefined; range: RangeSpec }
  | { op: 'unlock'; range: RangeSpec }
  | { op: 'resize'; pages: number; cut: number }
  | { op: 'view'; a: number; len: number }
  | { op: 'detach'; target: number }
  | { op: 'close' };

const frac = fc.double({ min: 0, max: 1, noNaN: true });
const rangeArb: fc.Arbitrary<RangeSpec> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ t: 'all' as const }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('pages' as const), first: fc.nat(MAX_PAGES), count: fc.nat(MAX_PAGES + 1) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('frac' as const), a: frac, b: frac }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tail' as const), a: frac }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        t: fc.constant('raw' as const),
        offset: fc.oneof(fc.integer({ min: -2, max: (MAX_PAGES + 1) * P }), fc.constant(1.5)),
        length: fc.oneof(fc.integer({ min: -2, max: (MAX_PAGES + 1) * P }), fc.constant(0.5)),
      },
      { requiredKeys: ['t'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bad' as const), value: fc.constantFrom<unknown>(null, 'x', 5, [], { offset: 'a' }, { length: -1 }) }) },
);
const adviceArb = fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...ADVICE_NAMES) }, { weight: 1, arbitrary: fc.constantFrom('bogus', 'hwpoison') });
const protArb = fc.constantFrom(...PROTS);

const mapArb = fc.record({
  op: fc.constant('map' as const),
  kind: fc.nat(3), // 0 anonymous private, 1 anonymous shared, 2 file private, 3 file shared
  pages: fc.integer({ min: 1, max: MAX_PAGES }),
  cut: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: P - 1 })), // bytes short of whole pages
  fileOffset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 * P })),
  prot: fc.oneof({ weight: 6, arbitrary: fc.constant<Prot>('read-write') }, { weight: 1, arbitrary: protArb }),
  populate: fc.boolean(),
  odd: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: mapArb },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('write' as const), target: fc.integer({ min: -3, max: 3 }), a: frac, len: fc.integer({ min: 1, max: 3 * P }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), target: fc.integer({ min: -3, max: 3 }), a: frac, len: fc.integer({ min: 1, max: 3 * P }) }) },
  { weight: 12, arbitrary: fc.record({ op: fc.constant('advise' as const), advice: adviceArb, range: rangeArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('residency' as const), range: rangeArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('populate' as const), mode: fc.constantFrom<'read' | 'write' | undefined>('read', 'write', undefined), range: rangeArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('flush' as const), sync: fc.boolean(), invalidate: fc.constantFrom(true, false, undefined), range: rangeArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('protect' as const), prot: protArb, range: rangeArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('lock' as const), onFault: fc.constantFrom(true, false, undefined), range: rangeArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unlock' as const), range: rangeArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('resize' as const), pages: fc.nat(MAX_PAGES), cut: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: P - 1 })) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('view' as const), a: frac, len: fc.integer({ min: -1, max: 4 * P }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('detach' as const), target: fc.integer({ min: -1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'close' as const }) },
);

const sequenceArb = fc.record({
  filePages: fc.integer({ min: 1, max: MAX_PAGES + 3 }),
  fileCut: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: P - 1 })),
  first: mapArb,
  ops: fc.array(opArb, { minLength: 5, maxLength: 20 }),
});
type Sequence = {
  filePages: number;
  fileCut: number;
  first: Extract<Op, { op: 'map' }>;
  ops: Op[];
};

// ---- running one operation on both backends ---------------------------------

type Outcome = { ok: true; value: unknown } | { ok: false; error: Record<string, unknown> };

function describeError(err: unknown): Record<string, unknown> {
  const e = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
  return { class: e?.constructor?.name, code: e?.code, errno: e?.errno, syscall: e?.syscall, message: e?.message };
}

async function outcome(fn: () => unknown): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, error: describeError(err) };
  }
}

class Disagreement extends Error {}
/** Sequences replayed once after a residency disagreement (see the property below). */
let replays = 0;
/** A documented divergence after which the two sides cannot be compared any further: the sequence ends there. */
class EndOfComparison extends Error {}

/** Outcomes per operation over the whole run (printed at the end, to see what the sequences covered). */
const stats = new Map<string, Record<string, number>>();
function count(op: string, outcome: string): void {
  let s = stats.get(op);
  if (!s) stats.set(op, (s = {}));
  s[outcome] = (s[outcome] ?? 0) + 1;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-diff-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;

/** One side (backend) of a sequence. */
interface Side {
  pw: Pagewise;
  file: string;
  m: Mapping | undefined;
  views: Uint8Array[];
}

/** State of the sequence the test tracks to stay safe and to know what to compare. */
class Model {
  // Per region page (the region starts at the page holding the file offset).
  prot: number[] = [];
  guard: boolean[] = [];
  /** Read by JavaScript since it was last written: residency is not compared. */
  readUnwritten: boolean[] = [];
  /**
   * Private anonymous pages a read fault may have mapped to the zero page (populate, lock or
   * POPULATE_READ by read faults; never written since), and those of them MADV_FREE then covered.
   * Whether a later PAGEOUT unmaps such a zero-page entry differs between 6.18 releases (it did up
   * to the kernel of an earlier round, 6.18.44 keeps it: docs/SIMULATOR.md), so after a PAGEOUT
   * their residency is not compared until they are written.
   */
  zeroMapped: boolean[] = [];
  zeroFreed: boolean[] = [];
  /**
   * File pages out of the kernel's page cache when an operation that may fault them ran: a
   * page-cache miss makes the kernel read around the faulting page (read_ahead_kb), which the
   * simulator does not model (divergence 3). Until both agree again, the kernel may report
   * such a page resident where the simulator does not.
   */
  uncertain = new Set<number>();
  /** File pages written through a shared file mapping (dirty in the page cache at some point). */
  writtenShared = new Set<number>();
  /** Shared anonymous memory: pages of the shmem object (fixed at mmap); pages past it raise SIGBUS. */
  objectPages = Infinity;
  shmemRead: boolean[] = [];
  /** Page-aligned file offset of the region (file mappings). */
  filePage = 0;
  delta = 0;
  kind = 0;
  /** Sizes the views had when made (to tell a view the simulator detached with its extent). */
  viewLengths: number[] = [];
  viewDetached: boolean[] = [];
  writeCounter = 0;
}

function regionPages(m: Mapping, model: Model): number {
  return Math.ceil((model.delta + m.length) / P);
}

async function runSequence(seq: Sequence): Promise<void> {
  const log: string[] = [];
  if (TRACE !== undefined) {
    const push = log.push.bind(log);
    log.push = (...lines: string[]) => {
      fs.writeSync(TRACE, `${lines.join('\n')}\n`);
      return push(...lines);
    };
    fs.writeSync(TRACE, `--- sequence ${JSON.stringify(seq)}\n`);
  }
  const fileBytes = new Uint8Array(seq.filePages * P - seq.fileCut || 1);
  for (let i = 0; i < fileBytes.length; i++) fileBytes[i] = 97 + ((i >> 12) % 26);
  const sides: Side[] = [native as Pagewise, createPagewise('simulator')].map((pw, i) => {
    const file = path.join(dir, `f${fileCounter++}-${i}`);
    const fd = fs.openSync(file, 'w+');
    // One page per write(2): the page cache then holds order-0 folios. A larger write makes large
    // folios, and MADV_PAGEOUT keeps a large folio the range covers only in part (the simulator
    // models pages, not folios).
    for (let at = 0; at < fileBytes.length; at += P) fs.writeSync(fd, fileBytes, at, Math.min(P, fileBytes.length - at), at);
    fs.fdatasyncSync(fd); // a clean page cache: the simulator assumes file pages are clean until mapped writes
    fs.closeSync(fd);
    return { pw, file, m: undefined, views: [] };
  });
  const [nat, sim] = sides;
  const model = new Model();

  const fail = (what: string, a: unknown, b: unknown): never => {
    throw new Disagreement(
      `${what}\n  native:    ${JSON.stringify(a)}\n  simulator: ${JSON.stringify(b)}\n--- sequence so far:\n${log.join('\n')}`,
    );
  };

  const both = async (
    what: string,
    fn: (s: Side) => unknown,
    divergenceEnds?: (a: Outcome, b: Outcome) => boolean,
  ): Promise<Outcome> => {
    const a = await outcome(() => fn(nat));
    const b = await outcome(() => fn(sim));
    const show = (o: Outcome) => (o.ok ? 'ok' : `${o.error.code}`);
    count(what.startsWith('advise ') ? what.split(' ', 2).join(' ') : what.split(' ')[0], show(a));
    log.push(`${what} -> ${show(a)}${show(a) === show(b) ? '' : ` / ${show(b)}`}`);
    if (divergenceEnds?.(a, b)) {
      count('documented divergence', what.split(' ')[0]);
      throw new EndOfComparison(what);
    }
    if (!a.ok || !b.ok) {
      if (a.ok !== b.ok) fail(`${what}: outcome`, a, b);
      const ea = (a as { error: unknown }).error;
      const eb = (b as { error: unknown }).error;
      if (JSON.stringify(ea) !== JSON.stringify(eb)) fail(`${what}: error`, ea, eb);
    } else if (JSON.stringify(a.value) !== JSON.stringify(b.value)) {
      fail(`${what}: returned value`, a.value, b.value);
    }
    return a;
  };

  /** [start, end) of a range spec in mapping bytes (may be invalid: the API decides). */
  const resolve = (spec: RangeSpec, length: number): unknown => {
    switch (spec.t) {
      case 'all':
        return undefined;
      case 'pages': {
        const offset = Math.min(length, Math.max(0, spec.first * P - model.delta));
        const end = Math.min(length, Math.max(0, (spec.first + spec.count) * P - model.delta));
        return { offset, length: Math.max(0, end - offset) };
      }
      case 'frac': {
        const a = Math.floor(Math.min(spec.a, spec.b) * length);
        const b = Math.floor(Math.max(spec.a, spec.b) * length);
        return { offset: a, length: b - a };
      }
      case 'tail':
        return { offset: Math.floor(spec.a * length) };
      case 'raw': {
        const r: { offset?: number; length?: number } = {};
        if (spec.offset !== undefined) r.offset = spec.offset;
        if (spec.length !== undefined) r.length = spec.length;
        return r;
      }
      case 'bad':
        return spec.value;
    }
  };

  /** Region pages [first, end) an outward-rounded valid range covers; undefined if invalid. */
  const covered = (range: unknown, length: number): [number, number] | undefined => {
    const r = range === undefined ? {} : (range as { offset?: unknown; length?: unknown });
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return undefined;
    const offset = r.offset === undefined ? 0 : r.offset;
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset > length) return undefined;
    const len = r.length === undefined ? length - offset : r.length;
    if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > length - offset) return undefined;
    if (len === 0) return [0, 0];
    return [Math.floor((model.delta + offset) / P), Math.ceil((model.delta + offset + len) / P)];
  };

  const accessible = (first: number, end: number, bit: number): boolean => {
    for (let p = first; p < end; p++) if (model.guard[p] || !(model.prot[p] & bit) || p >= model.objectPages) return false;
    return true;
  };

  /** Residency vectors as strings: '?' = not compared (read), 'r' = the kernel read it ahead. */
  const maskPair = (a: Uint8Array, b: Uint8Array, base: number): [string, string] => {
    let sa = '';
    let sb = '';
    for (let i = 0; i < a.length; i++) {
      const p = base + i;
      const x = a[i] & 1;
      const y = b[i] & 1;
      if (model.readUnwritten[p]) {
        sa += '?';
        sb += '?';
      } else if (model.kind >= 2 && model.uncertain.has(model.filePage + p) && x !== y) {
        sa += 'r';
        sb += 'r';
      } else {
        // Both report the file page resident: compare it again from now on (file mappings only:
        // the set is keyed by file page, and anonymous pages are not file pages).
        if (model.kind >= 2 && x === 1 && y === 1) model.uncertain.delete(model.filePage + p);
        sa += String(x);
        sb += String(y);
      }
    }
    return [sa, sb];
  };

  /** Before an operation that may fault file pages: note the pages the kernel's page cache lacks. */
  const noteReadahead = (): void => {
    if (model.kind < 2 || !nat.m || nat.m.closed) return;
    const r = nat.pw.fileResidency(nat.file, { pages: true });
    for (let fp = 0; fp < r.pages!.length; fp++) if (!(r.pages![fp] & 1)) model.uncertain.add(fp);
  };

  const compareState = async (what: string): Promise<void> => {
    const a = nat.m;
    const b = sim.m;
    if (!a || !b) return;
    const sa = { length: a.length, closed: a.closed, protection: a.protection, kind: a.kind, shared: a.shared };
    const sb = { length: b.length, closed: b.closed, protection: b.protection, kind: b.kind, shared: b.shared };
    if (JSON.stringify(sa) !== JSON.stringify(sb)) fail(`${what}: mapping state`, sa, sb);
    if (a.closed) return;
    const ra = a.residency();
    const rb = b.residency();
    const [va, vb] = maskPair(ra.pages, rb.pages, 0);
    log.push(`  residency ${va}${va === vb ? '' : ` / ${vb}`}`);
    if (va !== vb || ra.offset !== rb.offset || ra.total !== rb.total) fail(`${what}: residency`, va, vb);
  };

  /** munmap leaves dirty pages in the page cache; the simulator writes them back at close. Write the
   *  kernel's back too, so both page caches are clean (PAGEOUT keeps dirty pages). */
  const syncAfterClose = (): void => {
    if (model.kind !== 3) return;
    const fd = fs.openSync(nat.file, 'r+');
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  };

  const doMap = async (o: Extract<Op, { op: 'map' }>): Promise<void> => {
    const wasOpen = nat.m !== undefined && !nat.m.closed;
    for (const s of sides) s.m?.close();
    if (wasOpen) syncAfterClose();
    for (const s of sides) s.views = [];
    model.viewLengths = [];
    model.viewDetached = [];
    const fileKind = o.kind >= 2;
    const shared = o.kind === 1 || o.kind === 3;
    const length = o.pages * P - o.cut;
    const fileOffset = fileKind ? Math.min(o.fileOffset, fileBytes.length - 1) : 0;
    let options: Record<string, unknown>;
    if (fileKind) {
      options = { mode: shared ? 'shared' : 'private', offset: fileOffset, populate: o.populate };
      // Not past the end of the file (the API refuses that), unless the odd case asks for it.
      options.length = o.odd === 1 ? fileBytes.length : Math.min(length, fileBytes.length - fileOffset);
      if (o.odd === 2) options.offset = fileBytes.length + 1;
      if (o.odd === 3) options.length = 0;
      if (o.odd === 4) options.mode = 'both';
    } else {
      options = { shared, protection: o.prot, populate: o.populate };
      if (o.odd === 1) options.hugePages = true;
      if (o.odd === 2) options.protection = 'write';
      if (o.odd === 3) options.populate = 'yes';
      if (o.odd === 4) options.noreserve = true;
    }
    const cachedBefore = fileKind ? nat.pw.fileResidency(nat.file, { pages: true }).pages! : new Uint8Array(0);
    const what = `map ${fileKind ? 'file' : 'anonymous'} ${JSON.stringify(options)}${fileKind ? '' : ` length ${length}`}`;
    const r = await both(what, (s) => {
      s.m = undefined;
      const m = fileKind ? s.pw.mapFile(s.file, options) : s.pw.map(length, options);
      s.m = m;
      return { length: m.length, kind: m.kind, shared: m.shared, protection: m.protection };
    });
    if (r.ok) {
      model.kind = o.kind;
      model.delta = fileKind ? (options.offset as number) % P : 0;
      const pages = regionPages(nat.m!, model);
      const prot = fileKind ? 3 : PROT_BITS[(options.protection as Prot) ?? 'read-write'];
      model.prot = new Array(pages).fill(prot);
      model.guard = new Array(pages).fill(false);
      model.readUnwritten = new Array(pages).fill(false);
      // MAP_POPULATE of read-only private anonymous memory maps the zero page.
      const zero = o.kind === 0 && !!o.populate && (prot & 2) === 0;
      model.zeroMapped = new Array(pages).fill(zero);
      model.zeroFreed = new Array(pages).fill(false);
      model.filePage = fileKind ? Math.floor((options.offset as number) / P) : 0;
      // Pages the page cache lacked before the mapping was made (MAP_POPULATE faults them).
      if (fileKind && o.populate) {
        for (let fp = 0; fp < cachedBefore.length; fp++) if (!(cachedBefore[fp] & 1)) model.uncertain.add(fp);
      }
      model.objectPages = o.kind === 1 ? pages : Infinity;
      model.shmemRead = [];
      model.writeCounter = model.writeCounter % 90;
    }
  };

  /** The object a write or read goes through: mapping.buffer (target < 0 or no view) or a view live on both sides. */
  const target = (t: number): { base: number; bytes: [Uint8Array, Uint8Array] } | undefined => {
    if (t >= 0 && nat.views.length > 0) {
      const i = t % nat.views.length;
      const a = nat.views[i];
      const b = sim.views[i];
      if (a.length > 0 && b.length > 0) return { base: (a as Uint8Array & { base?: number }).base ?? 0, bytes: [a, b] };
    }
    return { base: 0, bytes: [nat.m!.buffer, sim.m!.buffer] };
  };

  const doAccess = (o: Extract<Op, { op: 'write' | 'read' }>): void => {
    if (!nat.m || nat.m.closed) return;
    const t = target(o.target);
    if (!t) return;
    const [a, b] = t.bytes;
    if (a.length !== b.length) fail(`${o.op}: target length`, a.length, b.length);
    if (a.length === 0) return;
    const start = Math.min(a.length - 1, Math.floor(o.a * a.length));
    const end = Math.min(a.length, start + o.len);
    const first = Math.floor((model.delta + t.base + start) / P);
    const last = Math.ceil((model.delta + t.base + end) / P);
    if (!accessible(first, last, o.op === 'write' ? 2 : 1)) {
      log.push(`${o.op} [${t.base + start}, ${t.base + end}) skipped: not accessible`);
      count(o.op, 'skipped (not accessible)');
      return;
    }
    if (o.op === 'write') {
      // Every write op writes a value the sequence never wrote before (and never a file byte, 97..122),
      // so it always changes the bytes: the simulator sees writes by their effect on contents.
      count('write', a === nat.m.buffer ? 'via buffer' : 'via view');
      const value = 1 + (model.writeCounter++ % 90);
      log.push(`write ${value} at [${t.base + start}, ${t.base + end})${t.base || a !== nat.m.buffer ? ' (view)' : ''}`);
      a.fill(value, start, end);
      b.fill(value, start, end);
      for (let p = first; p < last; p++) model.readUnwritten[p] = model.zeroMapped[p] = model.zeroFreed[p] = false;
      if (model.kind === 3) for (let p = first; p < last; p++) model.writtenShared.add(model.filePage + p);
    } else {
      log.push(`read [${t.base + start}, ${t.base + end})`);
      count('read', a === nat.m.buffer ? 'via buffer' : 'via view');
      const ca = Buffer.from(a.subarray(start, end));
      const cb = Buffer.from(b.subarray(start, end));
      // A read fault on a file or shmem page also maps its cached neighbours (fault-around), which
      // decides what PAGEOUT drops: any page may be mapped now.
      const [rf, re] = model.kind >= 1 ? [0, model.readUnwritten.length] : [first, last];
      for (let p = rf; p < re; p++) model.readUnwritten[p] = true;
      if (!ca.equals(cb)) fail(`read [${t.base + start}, ${t.base + end}): contents`, firstDiff(ca, cb), null);
    }
  };

  /**
   * After read faults over a range of a file or shmem mapping (POPULATE_READ, populate('read'),
   * mlock of shared or read-only memory): fault-around also mapped cached pages around the faulting
   * ones (a 64 KiB window at the mapping's virtual address, which the simulator cannot know), and
   * PAGEOUT drops only mapped clean pages. Pages outside the range (all of them if the call failed)
   * are treated as read.
   */
  const faultAround = (range: unknown, length: number, ok: boolean): void => {
    const c = ok ? covered(range, length) : undefined;
    if (model.kind === 0) {
      // Private anonymous: the read faults map the zero page on pages never written.
      for (let p = 0; p < model.zeroMapped.length; p++) if (!c || (p >= c[0] && p < c[1])) model.zeroMapped[p] = true;
      return;
    }
    for (let p = 0; p < model.readUnwritten.length; p++) if (!c || p < c[0] || p >= c[1]) model.readUnwritten[p] = true;
  };

  const markGuard = (range: unknown, length: number, value: boolean): void => {
    const c = covered(range, length);
    if (!c) return;
    for (let p = c[0]; p < c[1]; p++) model.guard[p] = value;
  };

  const step = async (o: Op): Promise<void> => {
    const m = nat.m;
    if (o.op === 'map') return doMap(o);
    if (!m) return;
    if (o.op === 'write' || o.op === 'read' || o.op === 'populate' || o.op === 'lock' || o.op === 'advise') noteReadahead();
    const length = m.length;
    switch (o.op) {
      case 'write':
      case 'read':
        return doAccess(o);
      case 'advise': {
        const range = resolve(o.range, length);
        const r = await both(`advise ${o.advice} ${JSON.stringify(range)}`, (s) => s.m!.advise(o.advice as never, range as never));
        // A failed install may have guarded part of the range: treat all of it as guarded.
        if (o.advice === 'guard-install') markGuard(range, length, true);
        if (r.ok && o.advice === 'guard-remove') markGuard(range, length, false);
        if (o.advice === 'populate-read') faultAround(range, length, r.ok);
        if ((o.advice === 'free' || o.advice === 'pageout') && model.kind === 0) {
          // A failed call may have advised part of the range: all of it counts.
          const c = covered(range, length);
          if (c) {
            for (let p = c[0]; p < Math.min(c[1], model.zeroMapped.length); p++) {
              if (o.advice === 'free') model.zeroFreed[p] ||= model.zeroMapped[p];
              else if (model.zeroFreed[p]) model.readUnwritten[p] = true;
            }
          }
        }
        if (o.advice === 'pageout' && model.kind >= 2) {
          // What PAGEOUT does to a file page depends on state the simulator cannot see: whether a
          // JavaScript read mapped it (then it is evicted), and the LRU (a dirty page PAGEOUT skipped
          // is activated, and later PAGEOUTs keep it even once it is clean). Compare such pages
          // again once both report them resident.
          const c = covered(range, length);
          if (c) {
            for (let p = c[0]; p < Math.min(c[1], model.readUnwritten.length); p++) {
              const fp = model.filePage + p;
              if (model.readUnwritten[p] || model.writtenShared.has(fp)) model.uncertain.add(fp);
            }
          }
        }
        return;
      }
      case 'residency': {
        const range = resolve(o.range, length);
        const res: Residency[] = [];
        await both(`residency ${JSON.stringify(range)}`, (s) => {
          res.push(s.m!.residency(range as never));
          return null;
        });
        if (res.length === 2) {
          const [ra, rb] = res;
          if (ra.offset !== rb.offset || ra.total !== rb.total) fail('residency: shape', ra, rb);
          const [va, vb] = maskPair(ra.pages, rb.pages, (ra.offset + model.delta) / P);
          if (va !== vb) fail('residency: pages', va, vb);
        }
        return;
      }
      case 'populate': {
        const range = resolve(o.range, length) as object | undefined;
        const options = withOption(range, 'mode', o.mode);
        const r = await both(`populate ${JSON.stringify(options)}`, (s) => s.m!.populate(options as never));
        const writableAnon = model.kind < 2 && (PROT_BITS[m.protection] & 2) !== 0;
        if ((o.mode ?? (writableAnon ? 'write' : 'read')) === 'read') faultAround(range, length, r.ok);
        return;
      }
      case 'flush': {
        const range = resolve(o.range, length);
        const options = withOption(range, 'invalidate', o.invalidate);
        await both(`${o.sync ? 'flushSync' : 'flush'} ${JSON.stringify(options)}`, (s) => (o.sync ? s.m!.flushSync(options as never) : s.m!.flush(options as never)));
        return;
      }
      case 'protect': {
        const range = resolve(o.range, length);
        const r = await both(`protect ${o.prot} ${JSON.stringify(range)}`, (s) => s.m!.protect(o.prot, range as never));
        if (r.ok) {
          const c = covered(range, length);
          if (c) for (let p = c[0]; p < c[1]; p++) model.prot[p] = PROT_BITS[o.prot];
        }
        return;
      }
      case 'lock': {
        const range = resolve(o.range, length);
        const options = withOption(range, 'onFault', o.onFault);
        const r = await both(`lock ${JSON.stringify(options)}`, (s) => s.m!.lock(options as never));
        // mlock populates with read faults unless the memory is private and writable.
        if (!o.onFault && (m.shared || model.prot.some((x) => !(x & 2)))) faultAround(range, length, r.ok);
        return;
      }
      case 'unlock': {
        const range = resolve(o.range, length);
        await both(`unlock ${JSON.stringify(range)}`, (s) => s.m!.unlock(range as never));
        return;
      }
      case 'resize': {
        const newLength = o.pages * P - o.cut;
        const r = await both(`resize ${newLength}`, (s) => s.m!.resize(newLength), (a, b) => {
          // mremap cannot grow across VMAs the kernel failed to merge again: pieces of a split
          // mapping that were faulted separately get different anon_vmas. The simulator does not
          // model anon_vma identity (docs/SIMULATOR.md): past this point the sides differ in size.
          return !a.ok && b.ok && a.error.code === 'EFAULT' && a.error.syscall === 'mremap';
        });
        if (r.ok) {
          const pages = regionPages(m, model);
          const tail = model.prot[model.prot.length - 1];
          // The shmem object keeps the pages a shrink cuts off (a read allocated them).
          for (let p = pages; p < model.readUnwritten.length; p++) model.shmemRead[p] = model.readUnwritten[p];
          for (const arr of [model.prot, model.guard, model.readUnwritten, model.zeroMapped, model.zeroFreed] as unknown[][]) arr.length = Math.min(arr.length, pages);
          while (model.prot.length < pages) {
            model.readUnwritten.push(model.kind === 1 && (model.shmemRead[model.prot.length] ?? false));
            model.zeroMapped.push(false);
            model.zeroFreed.push(false);
            model.prot.push(tail);
            model.guard.push(false);
          }
          for (let i = 0; i < model.viewLengths.length; i++) model.viewDetached[i] = true;
          for (const s of sides) for (const v of s.views) if (v.length !== 0) fail('resize: a view survived', v.length, null);
        }
        return;
      }
      case 'view': {
        const offset = Math.floor(o.a * length);
        const len = o.len < 0 ? undefined : o.len;
        const r = await both(`view ${offset} ${len}`, (s) => {
          const v = s.m!.view(offset, len);
          (v as Uint8Array & { base?: number }).base = offset;
          s.views.push(v);
          return v.length;
        });
        if (r.ok) {
          model.viewLengths.push(r.value as number);
          model.viewDetached.push(false);
          if (sim.views.length !== nat.views.length) fail('view: count', nat.views.length, sim.views.length);
        }
        return;
      }
      case 'detach': {
        if (o.target < 0 || nat.views.length === 0) {
          // mapping.buffer itself
          await both('detachView(buffer)', (s) => {
            const buffer = s.m!.buffer;
            s.m!.detachView(buffer);
            return buffer.length;
          });
          return;
        }
        const i = o.target % nat.views.length;
        const shareFate = !m.closed && !model.viewDetached[i] && model.viewLengths[i] > 0 && sim.views[i].length === 0;
        if (shareFate) {
          // Documented divergence: the simulator detached this view with another one on the same
          // extent. Detach it on the kernel side only.
          log.push(`detachView(view ${i}) on the kernel only (the simulator detached it with its extent)`);
          const a = await outcome(() => nat.m!.detachView(nat.views[i]));
          if (!a.ok) fail(`detachView(view ${i}) native`, a, null);
        } else {
          await both(`detachView(view ${i})`, (s) => {
            s.m!.detachView(s.views[i]);
            return s.views[i].length;
          });
        }
        model.viewDetached[i] = true;
        return;
      }
      case 'close': {
        await both('close', (s) => s.m!.close());
        for (let i = 0; i < model.viewLengths.length; i++) model.viewDetached[i] = true;
        // Views stay attached over zero pages on both sides (docs/RELIABILITY.md, "What close() guarantees").
        for (const s of sides) for (const v of s.views) if (v.length !== 0 && v.some((b) => b !== 0)) fail('close: a view still shows the mapping', v.length, null);
        syncAfterClose();
        return;
      }
    }
  };

  try {
    await doMap(seq.first);
    await compareState('map');
    try {
      for (const o of seq.ops) {
        await step(o);
        await compareState(o.op);
      }
    } catch (err) {
      if (!(err instanceof EndOfComparison)) throw err;
      return; // the finally below closes both sides
    }
    // Final: everything readable, then the full contents and the files.
    if (nat.m && !nat.m.closed) {
      await both('final guard-remove', (s) => s.m!.advise('guard-remove'));
      for (let p = 0; p < model.guard.length; p++) model.guard[p] = false;
      // A range from offset 0 covers the first page even at an unaligned file offset.
      const r = await both('final protect read', (s) => s.m!.protect('read'));
      if (r.ok) for (let p = 0; p < model.prot.length; p++) model.prot[p] = 1;
      log.push('final read of the whole mapping');
      const a = nat.m.buffer;
      const b = sim.m!.buffer;
      for (let p = 0; p < model.prot.length; p++) {
        if (p >= model.objectPages) continue; // past the shmem object: SIGBUS
        if (!accessible(p, p + 1, 1)) fail(`final read: page ${p} is not readable`, model.prot[p], null);
        const from = Math.max(0, p * P - model.delta);
        const to = Math.min(a.length, (p + 1) * P - model.delta);
        const ca = Buffer.from(a.subarray(from, to));
        const cb = Buffer.from(b.subarray(from, to));
        if (!ca.equals(cb)) fail(`final contents of page ${p}`, firstDiff(ca, cb), null);
      }
    }
    for (const s of sides) s.m?.close();
    const fa = fs.readFileSync(nat.file);
    const fb = fs.readFileSync(sim.file);
    if (!fa.equals(fb)) fail('final file bytes', firstDiff(fa, fb), null);
  } finally {
    for (const s of sides) {
      try {
        s.m?.close();
      } catch {
        // already reported
      }
      fs.rmSync(s.file, { force: true });
    }
  }
}

/** A range argument with one more option (an undefined range becomes an options object). */
function withOption(range: unknown, key: string, value: unknown): unknown {
  if (value === undefined) return range;
  if (range === undefined) return { [key]: value };
  if (range !== null && typeof range === 'object' && !Array.isArray(range)) return { ...range, [key]: value };
  return range; // ill-typed: the API must refuse it either way
}

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `lengths ${a.length} / ${b.length}; first difference at byte ${i}: ${a[i]} / ${b[i]}`;
  return `lengths ${a.length} / ${b.length}`;
}

describe.skipIf(!native)(`differential: kernel vs simulator${native ? '' : ` (skipped: ${unavailable})`}`, () => {
  it(`agrees on ${RUNS} random operation sequences`, async () => {
    console.log(`differential seed: ${SEED} (replay with PAGEWISE_SEED=${SEED})`);
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(sequenceArb as fc.Arbitrary<Sequence>, async (seq) => {
        try {
          await runSequence(seq);
        } catch (err) {
          // The kernel may evict page-cache pages on its own at any moment (kswapd, or a DAMON
          // pageout scheme, which runs on these machines). A residency disagreement is replayed
          // once on a fresh file: a simulator bug disagrees again, a spontaneous eviction does not.
          if (!(err instanceof Disagreement) || !/residency/.test(err.message.split('\n')[0])) throw err;
          replays++;
          await runSequence(seq);
        }
      }),
      { numRuns: RUNS, seed: SEED, path: PATH, endOnFailure: false },
    );
    console.log(
      `differential: ${RUNS} sequences in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
        `(${replays} replayed after a residency disagreement that did not recur)`,
    );
    if (process.env.PAGEWISE_STATS) {
      const rows = [...stats].sort(([a], [b]) => a.localeCompare(b));
      console.log(rows.map(([op, s]) => `  ${op}: ${Object.entries(s).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('\n'));
    }
  }, 600_000);
});

if (!native) {
  describe('differential', () => {
    it.skip(`needs the native addon: ${unavailable}`, () => {});
  });
}
