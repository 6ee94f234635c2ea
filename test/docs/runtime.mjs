// Loaded with `node --import` before every README / docs JavaScript block the doc test runs
// (test/docs.test.ts). Two things a block may use without declaring them:
//
// - Stand-ins for the reader's own code the examples call (`render`, `send`, ...), as
//   globals, so a block that declares the same name itself simply shadows them.
// - `__doc.check(line, value, expected)`: the doc test rewrites a line ending in
//   `// → EXPECTED` into such a call; failures are printed at exit and fail the block.
//
// EXPECTED, the "→" convention (also described at the top of test/docs.test.ts):
//   64, 'text', true, null, undefined   that value (numbers may use _ separators)
//   number, string, boolean, bigint      any value of that type
//   Uint8Array(64)                       an instance of that class with length 64
//   { a: 1, b, ... }                     an object with key a matching 1, key b present; `...` allows
//                                        other keys (without it the keys must be exactly these)
//   [1, 2] / [number, ...]               an array, element by element; `...` allows more
//   A | B                                either
//   ...                                  anything
import { Writable } from 'node:stream';
import { inspect } from 'node:util';

const stand = {
  /** Something a program computed at some cost. */
  expensiveResult: new Uint8Array(100_000).fill(7),
  data: new Uint8Array(100_000).fill(7),
  id: 'item-1',
  url: '/report',
  /** Recompute what the kernel purged, in place. */
  regenerate: (bytes) => bytes.fill(7),
  /** Render a value for a key: bytes. */
  render: (key) => new TextEncoder().encode(`rendered ${key} `.repeat(100)),
  /** Fill `target` with the value for `key`. */
  decodeInto: (target, key) => target.fill(String(key).length),
  /** Hand bytes to someone else, synchronously (copies them). */
  send: (bytes) => {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('send() takes bytes');
    stand.sent.push(Uint8Array.from(bytes));
  },
  sent: [],
};
/** A slow writable stream (an HTTP response, a socket): it takes each chunk on a later turn. */
stand.req = { url: '/index.html', method: 'GET', headers: {} }; // an http.IncomingMessage, as far as examples read it
stand.res = slowStream();
stand.stream = stand.res;

function slowStream() {
  return new Writable({
    highWaterMark: 1024,
    write(chunk, _encoding, callback) {
      setTimeout(() => {
        stand.sent.push(Uint8Array.from(chunk));
        callback();
      }, 5);
    },
  });
}

for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(stand))) {
  if (name !== 'sent') Object.defineProperty(globalThis, name, { ...desc, configurable: true });
}

// ---- the → convention ----

/** Split at `sep` outside brackets and quotes. */
function splitTop(text, sep) {
  const parts = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0 && c === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

const ANY = new Set(['...', '…']);

function unquote(text) {
  return /^(['"`]).*\1$/s.test(text) ? text.slice(1, -1) : undefined;
}

/** Whether `actual` matches the pattern text; throws on a pattern this convention does not know. */
export function matches(actual, pattern) {
  pattern = pattern.trim();
  const alternatives = splitTop(pattern, '|');
  if (alternatives.length > 1) return alternatives.some((a) => matches(actual, a));
  if (ANY.has(pattern)) return true;
  if (['number', 'string', 'boolean', 'bigint', 'function'].includes(pattern)) return typeof actual === pattern;
  if (pattern === 'true' || pattern === 'false') return actual === (pattern === 'true');
  if (pattern === 'null') return actual === null;
  if (pattern === 'undefined') return actual === undefined;
  const text = unquote(pattern);
  if (text !== undefined) return actual === text;
  if (/^-?[\d_]+(\.\d+)?$/.test(pattern)) return actual === Number(pattern.replace(/_/g, ''));
  const sized = /^([A-Z]\w*)\((\d+)\)$/.exec(pattern);
  if (sized) return actual?.constructor?.name === sized[1] && actual.length === Number(sized[2]);
  if (pattern.startsWith('{') && pattern.endsWith('}')) {
    if (typeof actual !== 'object' || actual === null) return false;
    let open = false;
    const named = new Set();
    for (const entry of splitTop(pattern.slice(1, -1), ',').filter((e) => e !== '')) {
      if (ANY.has(entry)) {
        open = true;
        continue;
      }
      const [rawKey, ...rest] = splitTop(entry, ':');
      const key = unquote(rawKey) ?? rawKey;
      if (!(key in actual)) return false;
      named.add(key);
      if (rest.length > 0 && !matches(actual[key], rest.join(':'))) return false;
    }
    return open || Object.keys(actual).every((k) => named.has(k));
  }
  if (pattern.startsWith('[') && pattern.endsWith(']')) {
    if (!Array.isArray(actual)) return false;
    const items = splitTop(pattern.slice(1, -1), ',').filter((e) => e !== '');
    const open = items.length > 0 && ANY.has(items[items.length - 1]);
    const fixed = open ? items.slice(0, -1) : items;
    if (open ? actual.length < fixed.length : actual.length !== fixed.length) return false;
    return fixed.every((p, i) => matches(actual[i], p));
  }
  throw new Error(`the doc test does not know the pattern ${JSON.stringify(pattern)} (see test/docs/runtime.mjs)`);
}

const failures = [];
globalThis.__doc = {
  check(line, actual, expected) {
    let ok;
    try {
      ok = matches(actual, expected);
    } catch (err) {
      failures.push(`line ${line}: ${err.message}`);
      return;
    }
    if (!ok) failures.push(`line ${line}: expected ${expected}, got ${inspect(actual, { depth: 2, maxArrayLength: 8, breakLength: Infinity })}`);
  },
};

process.on('exit', () => {
  if (failures.length === 0) return;
  process.stderr.write(`doc-check failed:\n${failures.join('\n')}\n`);
  process.exitCode = 1;
});
