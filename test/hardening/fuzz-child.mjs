// Argument fuzzer for the public API, run as a child process so that a crash
// (a signal) is observed by the parent instead of ending the test run.
//
//   node test/hardening/fuzz-child.mjs --seed 42 --calls 10000 [--json out.json]
//
// The backend is the package's own choice: PAGEWISE_BACKEND=native|simulator.
// fast-check generates scenarios of calls on every exported function and every
// Mapping method / getter with arbitrary arguments (wrong types, NaN,
// ±Infinity, negative, fractional, huge and unaligned numbers, lengths past
// the end, closed mappings, unknown advice, every option combination). Every
// throw and every rejection must be an Error with a `code` from a stable set.
//
// Two rules keep the fuzzer inside what pagewise promises (README, Hazards):
//  - JavaScript never reads or writes the bytes of a mapping that was mapped
//    with, or protect()ed to, a protection that forbids it, or that had
//    advise('guard-install') — that access raises SIGSEGV by design.
//  - Calls that commit memory (populate, lock, populate-*/collapse/
//    guard-install/willneed advice, map/mapFile with populate, resize of a
//    locked mapping) are skipped when they would cover more than BUDGET bytes:
//    populating a 64 TiB noreserve mapping would bring the OOM killer, which
//    is the machine's limit, not a pagewise fault. Skips are counted.
// Files are never truncated here (that hazard has its own test, files.test.ts).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const fc = require('fast-check');
const pw = require('../../dist/index.js');
const promRegistry = require('prom-client').Registry;

// ---------------------------------------------------------------------------
// Arguments

function argv(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const SEED = Number(argv('seed', '42'));
const TARGET = Number(argv('calls', '5000'));
const JSON_OUT = argv('json', undefined);
const PAGE = pw.pageSize;
const BUDGET = 32 * 2 ** 20;
const MAX_LIVE = 24;
const HANG_MS = 20_000;
// --trace FILE: append every call before it runs (to find the last call before a crash).
const TRACE = argv('trace', undefined);
const traceFd = TRACE ? fs.openSync(TRACE, 'w') : -1;
let nextId = 0;
function trace(c, rec) {
  if (traceFd < 0) return;
  const show = (v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'symbol' ? 'Symbol' : typeof v === 'function' ? 'fn' : v instanceof Rel ? `Rel(${v.base}*${v.mul}+${v.add})` : v);
  const m = rec ? `[m#${rec.id} len=${rec.m.length} kind=${rec.m.kind} shared=${rec.m.shared} prot=${rec.m.protection} closed=${rec.m.closed} noTouch=${rec.noTouch}]` : '';
  fs.writeSync(traceFd, `${JSON.stringify(c, (k, v) => show(v))} ${m}\n`);
}

// Codes a caller may see. Anything else is a failure.
const ALLOWED_CODES = new Set([
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_MAPPING_CLOSED',
  'ERR_MAPPING_BUSY',
  'ERR_MAPPING_TOO_LARGE',
  'ERR_OPERATION_NOT_SUPPORTED',
  'ERR_SIMULATED_OOM',
  'ERR_PAGEWISE_NATIVE_UNAVAILABLE',
  // Node's own, from fileURLToPath() on a URL argument.
  'ERR_INVALID_URL_SCHEME',
  'ERR_INVALID_FILE_URL_HOST',
  'ERR_INVALID_FILE_URL_PATH',
]);
const ERRNO_CODE = /^E[A-Z0-9]+$/;

// ---------------------------------------------------------------------------
// Fixtures: files of several sizes (one sparse, past 4 GiB), descriptors opened
// every way, and paths that are not regular files.

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-fuzz-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const sizes = [1, PAGE - 1, PAGE, 3 * PAGE + 17, 2 ** 20];
const files = sizes.map((size, i) => {
  const f = path.join(dir, `f${i}`);
  const b = Buffer.alloc(size);
  for (let j = 0; j < size; j++) b[j] = (j * 7 + i) & 0xff;
  fs.writeFileSync(f, b);
  return f;
});
const BIG = 2 ** 32 + 3 * PAGE + 5; // sparse: offsets past 2 GiB and 4 GiB
const bigFile = path.join(dir, 'big');
fs.closeSync(fs.openSync(bigFile, 'w'));
fs.truncateSync(bigFile, BIG);
fs.writeFileSync(path.join(dir, 'empty'), '');
files.push(bigFile, path.join(dir, 'empty'));
const fds = [];
for (const f of files) {
  for (const flags of ['r', 'r+', 'a+']) fds.push(fs.openSync(f, flags));
  fds.push(fs.openSync(f, fs.constants.O_WRONLY));
}
const fileSizes = new Map(files.map((f) => [f, fs.statSync(f).size]));
const fdSizes = new Map(fds.map((fd) => [fd, fs.fstatSync(fd).size]));
const specials = [
  dir,
  '/dev/zero',
  '/dev/null',
  '/proc/self/status',
  path.join(dir, 'missing'),
  '',
  'relative/path',
  `${files[0]}\u0000x`,
];

// ---------------------------------------------------------------------------
// Value arbitraries

/** A number resolved against the target mapping when the call runs. */
class Rel {
  constructor(base, mul, add) {
    Object.assign(this, { base, mul, add });
  }
  resolve(len) {
    const b = this.base === 'len' ? len : this.base === 'page' ? PAGE : this.base === 'half' ? Math.floor(len / 2) : 0;
    return b * this.mul + this.add;
  }
}

const weirdNumber = fc.constantFrom(
  NaN,
  Infinity,
  -Infinity,
  -0,
  -1,
  0.5,
  1.5,
  -PAGE,
  PAGE + 0.25,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 40,
  2 ** 47,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  2 ** 64,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
);
const relNumber = fc
  .record({
    base: fc.constantFrom('len', 'page', 'half', 'zero'),
    mul: fc.constantFrom(0, 1, 2, 3, -1),
    add: fc.constantFrom(0, 1, -1, 17, PAGE, -PAGE, PAGE - 1),
  })
  .map((r) => new Rel(r.base, r.mul, r.add));
const plainNumber = fc.oneof(
  fc.integer({ min: 0, max: 64 }).map((n) => n * PAGE),
  fc.integer({ min: -10, max: 70_000 }),
  fc.double({ noDefaultInfinity: false }),
  fc.maxSafeInteger(),
);
const number = fc.oneof({ weight: 3, arbitrary: relNumber }, { weight: 3, arbitrary: plainNumber }, { weight: 2, arbitrary: weirdNumber });

const junk = fc.oneof(
  fc.constantFrom(undefined, null, true, false, '', '0', '4096', 'NaN', [], [1], {}, () => 1, 1n, -1n, 2n ** 64n),
  fc.constant(Symbol('fuzz')),
  fc.constant(Object.create(null)),
  fc.constant(new Date(0)),
  fc.constant(new Uint8Array(4)),
  fc.constant(new Map()),
  fc.string({ maxLength: 8 }),
);
const maybe = (arb) => fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 5, arbitrary: arb }, { weight: 1, arbitrary: junk });
const anyValue = fc.oneof(number, junk);

// watchMemoryPressure / collectMetrics options: right and wrong keys, right and wrong values.
const levelOptions = (values) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ moderate: maybe(values), critical: maybe(values) }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.record({ moderat: values, critcal: values }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: junk },
  );
const pressureOptions = fc.oneof(
  { weight: 1, arbitrary: junk },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        sources: maybe(fc.oneof(fc.constantFrom('auto', 'synthetic', ['psi'], ['cgroup-v1', 'psy']), junk)),
        usageHeadroom: maybe(fc.oneof(number, fc.constantFrom(false, 'x', true, Number.NaN, -1))),
        psi: maybe(levelOptions(fc.constantFrom('some 150000 2000000', 'full 1 2', 'sometimes', false))),
        vmpressure: maybe(levelOptions(fc.constantFrom('low', 'medium', 'critical', 'high', false))),
        signal: maybe(fc.constant(AbortSignal.abort())),
        sorces: fc.constant('auto'),
        singal: fc.constant(1),
      },
      { requiredKeys: [] },
    ),
  },
);
const metricsOptions = fc.oneof(
  { weight: 1, arbitrary: junk },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        prefix: maybe(fc.constantFrom('pw_', '1bad', '')),
        mappings: maybe(fc.boolean()),
        arenas: maybe(fc.constantFrom({}, { a: 1 })),
        caches: maybe(fc.constantFrom({}, { c: null })),
        pressure: maybe(fc.constant({ on: 1 })),
        cache: fc.constant({}),
      },
      { requiredKeys: [] },
    ),
  },
);

const ADVICE = [...pw.ADVICE_NAMES];
const PROTECTIONS = ['none', 'read', 'read-write', 'read-exec', 'read-write-exec'];
const advice = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...ADVICE) }, fc.constantFrom('hwpoison', 'DONTNEED', 'soft-offline', ' free'), junk);
const protection = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...PROTECTIONS) }, fc.constantFrom('rw', 'write', 'exec'), junk);

/** { offset, length } with every combination of present / absent / wrong. */
const range = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 6, arbitrary: fc.record({ offset: maybe(number), length: maybe(number) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: junk },
);
const withRange = (extra) =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 6, arbitrary: fc.record({ offset: maybe(number), length: maybe(number), ...extra }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: junk },
  );

const mapOptions = fc.oneof(
  fc.constant(undefined),
  fc.record(
    {
      shared: maybe(fc.boolean()),
      protection: maybe(protection),
      populate: maybe(fc.boolean()),
      noreserve: maybe(fc.boolean()),
      hugePages: maybe(fc.constantFrom(true, false, '2MiB', '1GiB', '4KiB')),
    },
    { requiredKeys: [] },
  ),
  junk,
);
const mapFileOptions = fc.oneof(
  fc.constant(undefined),
  fc.record(
    {
      mode: maybe(fc.constantFrom('private', 'shared', 'read', 'SHARED')),
      offset: maybe(number),
      length: maybe(number),
      populate: maybe(fc.boolean()),
    },
    { requiredKeys: [] },
  ),
  junk,
);

/** A file argument: path, Buffer, file: URL, other URL, descriptor, or junk. */
const fileArg = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constantFrom('path', 'buffer', 'url'), i: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('fd'), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('special'), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('value'), v: fc.oneof(number, junk, fc.constantFrom(0, 1, 2, 99999, -1, 2 ** 31)) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'httpurl' }) },
);

const pick = fc.nat();
const call = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('map'), length: number, options: mapOptions, inst: pick }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('mapFile'), file: fileArg, options: mapFileOptions, inst: pick }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('fileResidency'), file: fileArg, options: withRange({ pages: maybe(fc.boolean()) }), inst: pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('evict', 'prefetch'), file: fileArg, range, inst: pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('supports'), advice, inst: pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('createPagewise'), kind: fc.oneof(fc.constantFrom('native', 'simulator', 'kernel', ''), junk) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('buffer'), m: pick, touch: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('view'), m: pick, offset: maybe(number), length: maybe(number), touch: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('touchOld'), v: pick }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('detachView'), m: pick, v: pick, junk: fc.option(junk) }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('advise'), m: pick, advice, range }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('residency'), m: pick, range }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('populate'), m: pick, options: withRange({ mode: maybe(fc.constantFrom('read', 'write', 'both')) }), wait: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('flush'), m: pick, options: withRange({ invalidate: maybe(fc.boolean()) }), wait: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('flushSync'), m: pick, options: withRange({ invalidate: maybe(fc.boolean()) }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('protect'), m: pick, protection, range }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('lock'), m: pick, options: withRange({ onFault: maybe(fc.boolean()) }), wait: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unlock'), m: pick, range }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('resize'), m: pick, length: number }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('close', 'dispose'), m: pick }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('getters'), m: pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('settle') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('gc') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('watchPressure'), options: pressureOptions }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('metrics'), options: metricsOptions }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('memoryUsage') }) },
);

// ---------------------------------------------------------------------------
// Execution

const stats = {
  backend: pw.backend,
  seed: SEED,
  calls: 0,
  ok: 0,
  errors: 0,
  skippedForBudget: 0,
  asyncOk: 0,
  asyncErrors: 0,
  runs: 0,
  codes: {},
  ops: {},
};
const failures = [];

class Violation extends Error {}

function checkError(err, what) {
  const code = err && typeof err === 'object' ? err.code : undefined;
  const okShape = err instanceof Error && typeof code === 'string' && (ALLOWED_CODES.has(code) || ERRNO_CODE.test(code));
  if (!okShape) {
    const shown = err instanceof Error ? `${err.name}: ${err.message} (code ${String(code)})\n${err.stack}` : String(err);
    throw new Violation(`${what}: untyped or unexpected error: ${shown}`);
  }
  stats.errors++; // sync throws and async rejections
  stats.codes[code] = (stats.codes[code] ?? 0) + 1;
}

function resolveNum(v, len) {
  return v instanceof Rel ? v.resolve(len) : v;
}
function resolveRange(r, len) {
  if (r === null || typeof r !== 'object' || Array.isArray(r) || r instanceof Rel) return r;
  if (Object.getPrototypeOf(r) !== Object.prototype) return r;
  const out = {};
  for (const [k, v] of Object.entries(r)) out[k] = resolveNum(v, len);
  return out;
}
/** Bytes a range argument would cover if valid (an upper bound). */
function covered(r, len) {
  if (r === undefined) return len;
  if (r === null || typeof r !== 'object') return 0;
  const off = typeof r.offset === 'number' && Number.isFinite(r.offset) && r.offset > 0 ? r.offset : 0;
  if (r.length === undefined) return Math.max(0, len - off);
  return typeof r.length === 'number' && Number.isFinite(r.length) ? Math.max(0, r.length) + PAGE : 0;
}
const COMMITTING_ADVICE = new Set(['populate-read', 'populate-write', 'collapse', 'guard-install', 'willneed']);

function fileValue(f, shared) {
  switch (f.t) {
    case 'path':
      return files[f.i % files.length];
    case 'buffer':
      return Buffer.from(files[f.i % files.length]);
    case 'url':
      return pathToFileURL(files[f.i % files.length]);
    case 'fd':
      return fds[f.i % fds.length];
    case 'special':
      return specials[f.i % specials.length];
    case 'httpurl':
      return new URL('http://example.com/x');
    default:
      return f.v instanceof Rel ? f.v.resolve(PAGE) : f.v;
  }
}
function fileSize(v) {
  if (typeof v === 'number') return fdSizes.get(v) ?? 0;
  const p = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : v instanceof URL && v.protocol === 'file:' ? decodeURIComponent(v.pathname) : '';
  return fileSizes.get(p) ?? 0;
}

function makeWatchdog(what) {
  let timer;
  const p = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Violation(`${what}: promise did not settle within ${HANG_MS} ms`)), HANG_MS);
  });
  return { p, clear: () => clearTimeout(timer) };
}

async function runScenario(calls) {
  stats.runs++;
  const instances = [pw, pw.pagewise];
  const maps = []; // { m, noTouch, locked }
  const views = []; // Uint8Array, with mapping record
  const pending = [];
  const seedMaps = () => {
    maps.push({ id: nextId++, m: pw.map(3 * PAGE + 5), noTouch: false, locked: false });
    maps.push({ id: nextId++, m: pw.mapFile(files[3]), noTouch: false, locked: false });
  };
  seedMaps();

  const settleAll = async () => {
    const all = pending.splice(0);
    const dog = makeWatchdog('pending async work');
    try {
      await Promise.race([Promise.all(all), dog.p]);
    } finally {
      dog.clear();
    }
  };

  const track = (what, promise) => {
    if (!(promise instanceof Promise)) throw new Violation(`${what}: did not return a Promise`);
    pending.push(
      promise.then(
        () => {
          stats.asyncOk++;
        },
        (err) => {
          stats.asyncErrors++;
          checkError(err, what);
        },
      ),
    );
  };

  const touch = (rec, view, where) => {
    if (rec.noTouch || view.length === 0) return;
    for (const w of where) {
      const i = Math.min(view.length - 1, Math.floor(w * view.length));
      view[i] = (view[i] + 1) & 0xff;
    }
  };

  try {
    for (const c of calls) {
      stats.calls++;
      stats.ops[c.op] = (stats.ops[c.op] ?? 0) + 1;
      const rec = maps.length > 0 && c.m !== undefined ? maps[c.m % maps.length] : undefined;
      const m = rec?.m;
      const len = m ? m.length : 0;
      const what = `${c.op}`;
      trace(c, rec);
      const inst = instances[(c.inst ?? 0) % instances.length];
      try {
        switch (c.op) {
          case 'map': {
            const length = resolveNum(c.length, PAGE);
            const o = resolveRange(c.options, length);
            if (o && typeof o === 'object' && o.populate === true && typeof length === 'number' && length > BUDGET) {
              stats.skippedForBudget++;
              break;
            }
            const mm = inst.map(length, o);
            if (!(mm instanceof pw.Mapping)) throw new Violation('map: did not return a Mapping');
            const prot = o && typeof o === 'object' && o.protection !== undefined ? o.protection : 'read-write';
            maps.push({ id: nextId++, m: mm, noTouch: prot !== 'read-write' && prot !== 'read-write-exec', locked: false });
            break;
          }
          case 'mapFile': {
            const shared = c.options && c.options.mode === 'shared';
            const f = fileValue(c.file, shared);
            const size = fileSize(f);
            const o = resolveRange(c.options, size);
            if (o && typeof o === 'object' && o.populate === true && covered(o, size) > BUDGET) {
              stats.skippedForBudget++;
              break;
            }
            const mm = inst.mapFile(f, o);
            if (!(mm instanceof pw.Mapping)) throw new Violation('mapFile: did not return a Mapping');
            maps.push({ id: nextId++, m: mm, noTouch: false, locked: false });
            break;
          }
          case 'fileResidency': {
            const f = fileValue(c.file);
            const r = inst.fileResidency(f, resolveRange(c.options, fileSize(f)));
            if (!(r.cached >= 0 && r.total >= r.cached && r.percent >= 0 && r.percent <= 100)) {
              throw new Violation(`fileResidency: inconsistent result ${JSON.stringify(r)}`);
            }
            break;
          }
          case 'evict':
          case 'prefetch': {
            const f = fileValue(c.file);
            const r = resolveRange(c.range, fileSize(f));
            if (c.op === 'prefetch' && covered(r, fileSize(f)) > BUDGET) {
              stats.skippedForBudget++;
              break;
            }
            if (inst[c.op](f, r) !== undefined) throw new Violation(`${c.op}: returned a value`);
            break;
          }
          case 'supports': {
            if (typeof inst.supports(c.advice) !== 'boolean') throw new Violation('supports: not a boolean');
            break;
          }
          case 'createPagewise': {
            const p = pw.createPagewise(c.kind);
            if (!(p instanceof pw.Pagewise)) throw new Violation('createPagewise: not a Pagewise');
            if (instances.length < 4) instances.push(p);
            break;
          }
          case 'buffer': {
            if (!m) break;
            const b = m.buffer;
            if (!(b instanceof Uint8Array) || b.length !== m.length) throw new Violation('buffer: wrong length');
            touch(rec, b, c.touch);
            views.push({ v: b, rec });
            break;
          }
          case 'view': {
            if (!m) break;
            const v = m.view(resolveNum(c.offset, len), resolveNum(c.length, len));
            if (!(v instanceof Uint8Array)) throw new Violation('view: not a Uint8Array');
            touch(rec, v, c.touch);
            views.push({ v, rec });
            break;
          }
          case 'touchOld': {
            if (views.length === 0) break;
            const { v, rec: r } = views[c.v % views.length];
            // Detached views have length 0; live ones are touched unless protected. A view of a
            // closed mapping stays attached over writable zero pages nobody else sees
            // (docs/RELIABILITY.md, "What close() guarantees"): touched whatever the protection was.
            if (!r.m.closed) touch(r, v, [0, 0.5, 0.999]);
            else touch({ noTouch: false }, v, [0, 0.5, 0.999]);
            break;
          }
          case 'detachView': {
            if (!m) break;
            const target = c.junk !== null ? c.junk : views.length > 0 ? views[c.v % views.length].v : new Uint8Array(1);
            m.detachView(target);
            break;
          }
          case 'advise': {
            if (!m) break;
            const r = resolveRange(c.range, len);
            if (COMMITTING_ADVICE.has(c.advice) && covered(r, len) > BUDGET) {
              stats.skippedForBudget++;
              break;
            }
            if (c.advice === 'guard-install') rec.noTouch = true; // before: it may apply partly and still throw
            const res = m.advise(c.advice, r);
            if (!(Number.isInteger(res.offset) && Number.isInteger(res.length) && res.length >= 0)) {
              throw new Violation(`advise: bad result ${JSON.stringify(res)}`);
            }
            break;
          }
          case 'residency': {
            if (!m) break;
            const r = resolveRange(c.range, len);
            if (covered(r, len) > 2 ** 34) {
              stats.skippedForBudget++;
              break;
            }
            const res = m.residency(r);
            if (res.pages.length !== res.total || res.resident > res.total) throw new Violation('residency: inconsistent');
            break;
          }
          case 'populate':
          case 'lock': {
            if (!m) break;
            const o = resolveRange(c.options, len);
            if (covered(o, len) > BUDGET) {
              stats.skippedForBudget++;
              break;
            }
            if (c.op === 'lock') rec.locked = true;
            const p = m[c.op](o);
            track(what, p);
            if (c.wait) await settleAll();
            break;
          }
          case 'flush': {
            if (!m) break;
            track(what, m.flush(resolveRange(c.options, len)));
            if (c.wait) await settleAll();
            break;
          }
          case 'flushSync': {
            if (!m) break;
            m.flushSync(resolveRange(c.options, len));
            break;
          }
          case 'protect': {
            if (!m) break;
            if (c.protection !== 'read-write' && c.protection !== 'read-write-exec') rec.noTouch = true;
            m.protect(c.protection, resolveRange(c.range, len));
            break;
          }
          case 'unlock': {
            if (!m) break;
            m.unlock(resolveRange(c.range, len));
            break;
          }
          case 'resize': {
            if (!m) break;
            const n = resolveNum(c.length, len);
            if (rec.locked && typeof n === 'number' && n > BUDGET) {
              stats.skippedForBudget++;
              break;
            }
            m.resize(n);
            if (m.length !== n) throw new Violation('resize: length not updated');
            break;
          }
          case 'close':
          case 'dispose': {
            if (!m) break;
            if (c.op === 'close') m.close();
            else m[Symbol.dispose]();
            if (!m.closed) throw new Violation('close: not closed');
            break;
          }
          case 'getters': {
            if (!m) break;
            const g = [m.length, m.closed, m.protection, m.pageSize, m.kind, m.shared];
            if (typeof g[0] !== 'number' || typeof g[1] !== 'boolean') throw new Violation('getters: wrong types');
            break;
          }
          case 'settle':
            await settleAll();
            break;
          case 'gc':
            globalThis.gc?.();
            break;
          case 'watchPressure': {
            const w = pw.watchMemoryPressure(c.options);
            w.close();
            break;
          }
          case 'metrics': {
            // A registry of its own: the package's default one would refuse a second registration.
            const o = c.options;
            const options = o !== null && typeof o === 'object' && Object.getPrototypeOf(o) === Object.prototype ? { registry: new promRegistry(), ...o } : o;
            pw.collectMetrics(options).close();
            break;
          }
          case 'memoryUsage': {
            const u = pw.memoryUsage();
            if (typeof u.effective !== 'number' || !(u.effective >= 0)) throw new Violation('memoryUsage: effective is not a number');
            break;
          }
        }
        stats.ok++;
      } catch (err) {
        if (err instanceof Violation) throw err;
        checkError(err, what);
      }
      // Keep the pool bounded: close (and forget) the oldest mappings.
      while (maps.length > MAX_LIVE) maps.shift().m.close();
      if (views.length > 64) views.splice(0, views.length - 64);
    }
    await settleAll();
  } finally {
    for (const r of maps) r.m.close();
    await settleAll().catch(() => {});
  }
  return true;
}

// ---------------------------------------------------------------------------

process.on('unhandledRejection', (err) => {
  failures.push(`unhandled rejection: ${err instanceof Error ? err.stack : String(err)}`);
});

const started = Date.now();
let batch = 0;
while (stats.calls < TARGET && failures.length === 0) {
  const seed = SEED + batch++;
  const remaining = TARGET - stats.calls;
  try {
    await fc.assert(fc.asyncProperty(fc.array(call, { minLength: 10, maxLength: 120, size: 'max' }), runScenario), {
      seed,
      numRuns: Math.max(1, Math.min(200, Math.ceil(remaining / 60))),
      endOnFailure: true,
    });
  } catch (err) {
    failures.push(`seed ${seed}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
stats.batches = batch;
stats.seconds = (Date.now() - started) / 1000;
stats.failures = failures.length;
const rss = process.memoryUsage().rss;
stats.rssMiB = Math.round(rss / 2 ** 20);
const out = JSON.stringify({ ...stats, failureText: failures.slice(0, 3) });
if (JSON_OUT) fs.writeFileSync(JSON_OUT, out);
console.log(out);
for (const fd of fds) fs.closeSync(fd);
process.exitCode = failures.length === 0 ? 0 : 1;
