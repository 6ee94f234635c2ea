// VolatileCache with producers that misbehave in every way we could think of, in
// a child process (a crash must be observed). Seeded; prints one JSON line.
//
//   node --expose-gc producers-child.mjs --seed N --calls N
//
// After every call: every throw is a coded error (or exactly what the producer
// threw), a 'hit' shows the bytes last produced for that key (or bytes the key's
// own producer wrote later through a target it kept: documented as its own
// problem), and periodically, with no handle held, clear() leaves no byte
// allocated: a span leaked on an error path would show here, and in a small
// arena would soon make every get() fail with ERR_ARENA_FULL.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { VolatileCache, VolatileArena, pagewise: pw } = require(path.join(here, '..', '..', 'dist', 'index.js'));
const PAGE = pw.pageSize;

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const seed = arg('seed', 1);
const calls = arg('calls', 2000);
let s = seed >>> 0 || 1;
const rnd = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) / 2 ** 32;
};
const pick = (a) => a[Math.floor(rnd() * a.length)];

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];
const ARENA = 64 * PAGE;
const out = { seed, calls: 0, backend: pw.kind, outcomes: {}, behaviours: {}, codes: {}, producerThrows: 0, checks: 0, caches: 1, unhandledRejections: 0, failures: [] };
const fail = (what) => {
  if (out.failures.length < 50) out.failures.push(what);
};
const count = (o, k) => (o[k] = (o[k] ?? 0) + 1);
process.on('unhandledRejection', () => out.unhandledRejections++); // a producer's own promise, refused by get()

let gen = 0;
const expected = new Map(); // key -> the bytes last produced for it
const lateByte = (key) => 0xc0 + KEYS.indexOf(key); // what a producer that kept its target writes later
const value = (key, length) => {
  const g = ++gen;
  const v = new Uint8Array(length);
  for (let i = 0; i < length; i++) v[i] = (g * 7 + i + KEYS.indexOf(key) * 13) & 0x7f; // never a late byte
  return v;
};
const lengths = [0, 1, 100, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 9 * PAGE];

function newCache() {
  const options = { budget: 24 * PAGE, arenaSize: ARENA, decayMs: pick([0, -1, 10]), freeDelayMs: pick([0, 5]) };
  if (rnd() < 0.3) options.max = 3;
  if (rnd() < 0.3) options.strict = true;
  if (rnd() < 0.3) options.zero = true;
  return new VolatileCache(options);
}
let cache = newCache();
const held = []; // [key, handle]
const kept = []; // [key, target] kept by misbehaving fill producers
let pending = null; // [key, bytes] a well-behaved producer made: the expected value if get() succeeds

class Thrown {
  constructor(tag) {
    this.tag = tag;
  }
}

// Re-entrant calls from inside a producer. Their own errors are checked like any other.
function inner(action) {
  try {
    action();
  } catch (e) {
    checkError(e, 'inner');
  }
}

function innerGet(key) {
  inner(() => {
    const outer = pending;
    const h = cache.get(key, good(key));
    if (h.outcome !== 'hit') expected.set(key, pending[1]);
    pending = outer;
    checkHandle(key, h);
    if (rnd() < 0.5) h.release();
    else held.push([key, h]);
  });
}

function good(key) {
  return (k) => {
    const v = value(k, pick(lengths));
    pending = [k, v];
    return v;
  };
}

function detached(length) {
  const u = new Uint8Array(length);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

class LyingBuffer extends Uint8Array {
  get buffer() {
    return new ArrayBuffer(8); // attached, whatever the real one is
  }
  get length() {
    return 2 ** 30;
  }
}

const trapAll = new Proxy(
  {},
  {
    get() {
      throw new Thrown('trap');
    },
    getPrototypeOf() {
      throw new Thrown('trap');
    },
    has() {
      throw new Thrown('trap');
    },
    ownKeys() {
      throw new Thrown('trap');
    },
    getOwnPropertyDescriptor() {
      throw new Thrown('trap');
    },
  },
);

// Function producers: name -> (key) => producer. A producer that returns a good value sets `pending`.
const functionProducers = {
  good: (key) => good(key),
  'throws an Error': () => () => {
    throw new Thrown('error');
  },
  'throws undefined': () => () => {
    throw undefined;
  },
  'returns a detached view': () => () => detached(PAGE),
  'returns a detached zero-length view': () => () => detached(0),
  'returns a subclass lying about buffer and length (detached)': () => () => {
    const u = new LyingBuffer(PAGE);
    structuredClone(u.buffer, { transfer: [Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'buffer').get.call(u)] });
    return u;
  },
  'returns a subclass lying about length': (key) => () => {
    const u = new LyingBuffer(3);
    u.set([1, 2, 3]);
    pending = [key, Uint8Array.from([1, 2, 3])];
    return u;
  },
  'returns a Proxy lying about length': () => () => new Proxy(new Uint8Array(4), { get: (t, p) => (p === 'length' || p === 'byteLength' ? 2 ** 40 : Reflect.get(t, p)) }),
  'returns a Proxy whose traps throw': () => () => trapAll,
  'returns a string': () => () => 'bytes',
  'returns a number': () => () => 4096,
  'returns null': () => () => null,
  'returns undefined': () => () => undefined,
  'returns an ArrayBuffer': () => () => new ArrayBuffer(PAGE),
  'returns a DataView': () => () => new DataView(new ArrayBuffer(8)),
  'returns an Int32Array': () => () => new Int32Array(4),
  'returns a Uint8ClampedArray': () => () => new Uint8ClampedArray(4),
  'returns a plain array': () => () => [1, 2, 3],
  'returns an array-like object': () => () => ({ length: 4, 0: 1 }),
  'returns a Symbol': () => () => Symbol('x'),
  'returns a BigInt': () => () => 10n,
  'returns a function': () => () => () => new Uint8Array(1),
  'returns a Promise of bytes': () => () => Promise.resolve(new Uint8Array(4)),
  'is async and rejects': () => async () => {
    throw new Thrown('async');
  },
  'returns a thenable': () => () => ({ then: (ok) => ok(new Uint8Array(4)) }),
  'returns a Buffer': (key) => () => {
    const v = Buffer.from(value(key, pick(lengths)));
    pending = [key, new Uint8Array(v)];
    return v;
  },
  'returns a SharedArrayBuffer view': (key) => () => {
    const v = value(key, PAGE + 5);
    const shared = new Uint8Array(new SharedArrayBuffer(v.length));
    shared.set(v);
    pending = [key, v];
    return shared;
  },
  'returns more than the arena holds': () => () => new Uint8Array(ARENA + PAGE),
  'returns another entry\'s cached bytes': (key) => () => {
    const other = held.find(([k]) => k !== key);
    if (other === undefined) return good(key)(key);
    try {
      const v = other[1].bytes;
      pending = [key, v.slice()];
      return v;
    } catch (e) {
      checkError(e, 'bytes of a held handle');
      return good(key)(key);
    }
  },
  're-enters get() of the same key': (key) => () => {
    try {
      cache.get(key, good(key));
      fail(`re-entrant get of ${key} inside its produce succeeded`);
    } catch (e) {
      if (e?.code !== 'ERR_CACHE_REENTRANT_GET') fail(`re-entrant get: ${e?.code ?? e}`);
    }
    return good(key)(key);
  },
  're-enters get() of other keys': (key) => () => {
    for (const k of KEYS) if (k !== key && rnd() < 0.4) innerGet(k);
    return good(key)(key);
  },
  're-enters peek() and has() of its key': (key) => () => {
    inner(() => {
      const h = cache.peek(key);
      if (h !== undefined) fail(`peek(${key}) inside its produce found an entry`);
      cache.has(key);
    });
    return good(key)(key);
  },
  'deletes its own key': (key) => () => {
    inner(() => cache.delete(key));
    return good(key)(key);
  },
  'clears the cache': (key) => () => {
    inner(() => cache.clear());
    return good(key)(key);
  },
  'raises critical pressure': (key) => () => {
    inner(() => cache.handlePressure('critical'));
    return good(key)(key);
  },
  'releases every held handle': (key) => () => {
    releaseAll();
    return good(key)(key);
  },
  'closes the cache': (key) => () => {
    inner(() => cache.close());
    return good(key)(key);
  },
  'closes the cache and throws': () => () => {
    inner(() => cache.close());
    throw new Thrown('after close');
  },
};

// Fill producers: { size, fill }.
const fillProducers = {
  'fill: good': (key) => {
    const length = pick(lengths);
    return {
      size: length,
      fill: (t, k) => {
        const v = value(k, length);
        t.set(v);
        pending = [k, v];
      },
    };
  },
  'fill: size as a function': (key) => {
    const length = pick(lengths);
    return {
      size: () => length,
      fill: (t, k) => {
        const v = value(k, t.length);
        t.set(v);
        pending = [k, v];
      },
    };
  },
  'fill: size NaN': () => ({ size: NaN, fill() {} }),
  'fill: size negative': () => ({ size: -1, fill() {} }),
  'fill: size a string': () => ({ size: '4096', fill() {} }),
  'fill: size 2**60': () => ({ size: 2 ** 60, fill() {} }),
  'fill: size more than the arena': () => ({ size: ARENA + PAGE, fill() {} }),
  'fill: size() throws': () => ({
    size() {
      throw new Thrown('size');
    },
    fill() {},
  }),
  'fill: size() re-enters get() of its key': (key) => ({
    size() {
      try {
        cache.get(key, good(key));
        fail('re-entrant get from size() succeeded');
      } catch (e) {
        if (e?.code !== 'ERR_CACHE_REENTRANT_GET') fail(`re-entrant get from size(): ${e?.code ?? e}`);
      }
      return PAGE;
    },
    fill: (t, k) => {
      const v = value(k, t.length);
      t.set(v);
      pending = [k, v];
    },
  }),
  'fill: throws': () => ({
    size: PAGE,
    fill() {
      throw new Thrown('fill');
    },
  }),
  'fill: writes half and throws': () => ({
    size: 2 * PAGE,
    fill(t) {
      t.fill(0xee, 0, PAGE);
      throw new Thrown('fill');
    },
  }),
  'fill: keeps the target and writes later': (key) => ({
    size: PAGE,
    fill: (t, k) => {
      const v = value(k, t.length);
      t.set(v);
      pending = [k, v];
      kept.push([k, t]);
    },
  }),
  'fill: transfers the target away': () => ({
    size: PAGE,
    fill(t) {
      try {
        structuredClone(t.buffer, { transfer: [t.buffer] });
      } catch (e) {
        if (typeof e?.name !== 'string') fail('transfer threw a non-error');
      }
      throw new Thrown('transferred'); // whatever happened, this value is not trustworthy
    },
  }),
  'fill: re-enters get() of other keys': (key) => ({
    size: 2 * PAGE,
    fill: (t, k) => {
      for (const o of KEYS) if (o !== key && rnd() < 0.4) innerGet(o);
      const v = value(k, t.length);
      t.set(v);
      pending = [k, v];
    },
  }),
  'fill: closes the cache': () => ({
    size: PAGE,
    fill(t, k) {
      inner(() => cache.close());
      const v = value(k, t.length);
      try {
        t.set(v);
      } catch (e) {
        checkError(e, 'target after close');
      }
    },
  }),
  'fill: clears the cache': (key) => ({
    size: PAGE,
    fill: (t, k) => {
      inner(() => cache.clear());
      const v = value(k, t.length);
      t.set(v);
      pending = [k, v];
    },
  }),
  'fill: deletes its own key and raises critical pressure': (key) => ({
    size: PAGE,
    fill: (t, k) => {
      inner(() => cache.delete(k));
      inner(() => cache.handlePressure('critical'));
      const v = value(k, t.length);
      t.set(v);
      pending = [k, v];
    },
  }),
  'fill: a Proxy whose traps throw': () => trapAll,
  'fill: fill is not a function': () => ({ size: PAGE, fill: 42 }),
};

const all = { ...functionProducers, ...fillProducers };
const names = Object.keys(all);

function isCoded(e) {
  return e instanceof Error && typeof e.code === 'string' && /^(ERR_[A-Z_]+|E[A-Z]+)$/.test(e.code);
}

function checkError(e, where) {
  if (e instanceof Thrown || e === undefined) {
    out.producerThrows++;
    return;
  }
  if (isCoded(e)) {
    count(out.codes, e.code);
    return;
  }
  fail(`${where}: uncoded ${e?.name}: ${e?.message ?? String(e)}`);
}

function checkHandle(key, h) {
  let bytes;
  try {
    bytes = h.bytes;
  } catch (e) {
    checkError(e, `bytes of ${key}`); // e.g. ERR_BUFFER_FREED after the cache closed
    return;
  }
  out.checks++;
  const want = expected.get(key);
  if (h.outcome === 'hit') {
    if (want === undefined) return; // produced by a producer whose value we do not track
    const late = lateByte(key);
    if (bytes.length !== want.length) {
      fail(`hit of ${key}: ${bytes.length} bytes, ${want.length} produced`);
      return;
    }
    for (let i = 0; i < want.length; i++) {
      if (bytes[i] !== want[i] && bytes[i] !== late) {
        fail(`hit of ${key}: byte ${i} is ${bytes[i]}, produced ${want[i]}`);
        return;
      }
    }
  }
}

function releaseAll() {
  while (held.length > 0) {
    const [, h] = held.pop();
    try {
      h.release();
      if (rnd() < 0.1) h.release(); // twice: must be harmless or coded
    } catch (e) {
      checkError(e, 'release');
    }
  }
}

function checkEmpty(where) {
  if (cache.arena.closed) return;
  releaseAll();
  cache.clear();
  const st = cache.stats;
  const a = st.arena;
  if (st.entries !== 0 || st.bytes !== 0 || st.pinnedBytes !== 0) fail(`${where}: after clear() entries ${st.entries}, bytes ${st.bytes}, pinned ${st.pinnedBytes}`);
  if (a.buffers !== 0 || a.pinnedBytes !== 0 || a.unpinnedBytes !== 0 || a.freeBytes + a.quarantinedBytes !== a.size) {
    fail(`${where}: arena after clear(): buffers ${a.buffers}, pinned ${a.pinnedBytes}, unpinned ${a.unpinnedBytes}, free ${a.freeBytes} + quarantined ${a.quarantinedBytes} of ${a.size}`);
  }
}

for (let i = 0; i < calls; i++) {
  const key = pick(KEYS);
  const name = pick(names);
  count(out.behaviours, name);
  let producer;
  try {
    producer = all[name](key);
  } catch (e) {
    checkError(e, name);
    continue;
  }
  pending = null;
  let h;
  try {
    h = cache.get(key, producer);
  } catch (e) {
    checkError(e, `get(${key}) with a producer that ${name}`);
    // A failed regeneration removes the entry: nothing is expected of the key any more.
    if (!cache.has(key)) expected.delete(key);
  }
  out.calls++;
  if (h !== undefined) {
    count(out.outcomes, h.outcome);
    if (h.outcome !== 'hit') {
      if (pending !== null && pending[0] === key) expected.set(key, pending[1]);
      else expected.delete(key);
    }
    checkHandle(key, h);
    if (rnd() < 0.3) held.push([key, h]);
    else {
      try {
        h.release();
      } catch (e) {
        checkError(e, 'release');
      }
    }
  }
  // A producer that kept its target writes through it now (its own entry at most).
  if (kept.length > 0 && rnd() < 0.3) {
    const [k, t] = kept.splice(Math.floor(rnd() * kept.length), 1)[0];
    try {
      t.fill(lateByte(k));
      count(out, 'lateWrites');
    } catch (e) {
      // A detached target (its entry was freed or made volatile) refuses the write: JavaScript's own TypeError.
      if (e instanceof TypeError) count(out, 'lateWritesRefused');
      else checkError(e, 'late write');
    }
  }
  if (rnd() < 0.05) inner(() => cache.handlePressure(pick(['moderate', 'critical'])));
  if (held.length > 8) releaseAll();
  if (cache.arena.closed) {
    // A producer closed it: everything held must fail with a code, then start again.
    for (const [k, hh] of held) checkHandle(k, hh);
    releaseAll();
    kept.length = 0;
    expected.clear();
    cache = newCache();
    out.caches++;
  } else if (i % 97 === 96) {
    checkEmpty(`call ${i}`);
    expected.clear();
  }
}
checkEmpty('end');
// After everything: the arena must still hand out most of itself (no leaked span).
try {
  const b = cache.arena.alloc(ARENA / 2);
  b.free();
} catch (e) {
  fail(`arena.alloc(half the arena) after clear(): ${e.code ?? e.message}`);
}
cache.close();
await new Promise((r) => setTimeout(r, 20)); // let rejections of refused promises surface
console.log(JSON.stringify(out));
if (out.failures.length > 0) process.exitCode = 1;
