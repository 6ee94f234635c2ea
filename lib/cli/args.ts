// Small, well-defined parsers and formatters for the command line: sizes with
// K/M/G/T suffixes, vmtouch-style byte ranges, human-readable sizes, and the
// glob subset used by --include / --exclude.

/** A command-line mistake: reported with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * A byte count: `4096`, `64K`, `1.5M`, `2G`, `1T` (binary multiples: K = 1024).
 * `KiB` / `KB` / `k` spellings are accepted; the result must be a whole number of bytes.
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`invalid ${what} '${text}': expected a number of bytes with an optional K, M, G or T suffix (e.g. 4096, 64K, 1.5G)`);
  const bytes = Number(m[1]) * UNITS[m[2].toLowerCase()];
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`invalid ${what} '${text}': not a whole number of bytes below 2^53`);
  return bytes;
}

/** A byte range [start, end); end undefined = to the end of the file. */
export interface ByteRange {
  start: number;
  end: number | undefined;
}

/**
 * vmtouch's -p syntax: `START-END`, `START-`, `-END` or `SIZE` (= `0-SIZE`).
 * END is exclusive; both ends accept size suffixes. Ranges past the end of a
 * file are clipped to it.
 */
export function parseRange(text: string): ByteRange {
  const dash = text.indexOf('-');
  if (dash === -1) {
    const end = parseSize(text, 'range');
    if (end === 0) throw new UsageError(`invalid range '${text}': it is empty`);
    return { start: 0, end };
  }
  if (text.indexOf('-', dash + 1) !== -1) throw new UsageError(`invalid range '${text}': expected START-END, START-, -END or SIZE`);
  const left = text.slice(0, dash).trim();
  const right = text.slice(dash + 1).trim();
  if (left === '' && right === '') throw new UsageError(`invalid range '${text}': expected START-END, START-, -END or SIZE`);
  const start = left === '' ? 0 : parseSize(left, 'range start');
  const end = right === '' ? undefined : parseSize(right, 'range end');
  if (end !== undefined && end <= start) throw new UsageError(`invalid range '${text}': the end must be greater than the start`);
  return { start, end };
}

/** A byte range clipped to a file of `size` bytes: [offset, offset + length). */
export function clipRange(range: ByteRange | undefined, size: number): { offset: number; length: number } {
  const start = Math.min(range?.start ?? 0, size);
  const end = Math.min(range?.end ?? size, size);
  return { offset: start, length: Math.max(0, end - start) };
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** 0 B, 512 B, 4.0 KiB, 1.5 MiB, 2.0 GiB ... (binary units, one decimal). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < BYTE_UNITS.length - 1) {
    value /= 1024;
    i++;
  }
  let shown = value.toFixed(1);
  // 1023.96 KiB would print as "1024.0 KiB": move to the next unit instead.
  if (shown === '1024.0' && i < BYTE_UNITS.length - 1) {
    value /= 1024;
    i++;
    shown = value.toFixed(1);
  }
  return `${shown} ${BYTE_UNITS[i]}`;
}

export function formatPercent(percent: number): string {
  // The common cases of a stat table over many files, without toFixed.
  if (percent === 100) return '100.0%';
  if (percent === 0) return '0.0%';
  // Never round a partially resident file up to 100% or a non-empty residency down to 0%.
  let shown = percent.toFixed(1);
  if (shown === '100.0' && percent < 100) shown = '99.9';
  if (shown === '0.0' && percent > 0) shown = '0.1';
  return `${shown}%`;
}

/**
 * A glob as a RegExp over '/'-separated paths. Supported syntax:
 *   `*`      any run of characters except '/' (dot files included)
 *   `?`      one character except '/'
 *   `**`     as a whole path segment: any number of segments, including none
 *   `[abc]`, `[a-z]`, `[!abc]` / `[^abc]`   one character (never '/') of / not of a set
 *   `\x`     the character x itself
 * Everything else matches itself. The whole path must match. A pattern that is not a
 * glob (an unclosed `[`, a reversed range `[z-a]`, a trailing `\`) is a UsageError.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let i = 0;
  const n = glob.length;
  while (i < n) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const atSegmentStart = i === 0 || glob[i - 1] === '/';
        let j = i;
        while (glob[j] === '*') j++;
        const atSegmentEnd = j === n || glob[j] === '/';
        if (atSegmentStart && atSegmentEnd) {
          if (j === n) {
            re += '.*'; // trailing `**`: everything below
          } else {
            re += '(?:[^/]*/)*'; // `**/`: zero or more whole segments
            j++;
          }
          i = j;
          continue;
        }
        // `a**b` is just `a*b`
        re += '[^/]*';
        i = j;
        continue;
      }
      re += '[^/]*';
      i++;
    } else if (c === '?') {
      re += '[^/]';
      i++;
    } else if (c === '[') {
      const close = findClass(glob, i);
      if (close === -1) throw new UsageError(`invalid glob '${glob}': '[' at ${i + 1} opens a character class that is never closed with ']' (write \\[ for a literal '[')`);
      let body = glob.slice(i + 1, close);
      let negate = false;
      if (body[0] === '!' || body[0] === '^') {
        negate = true;
        body = body.slice(1);
      }
      const escaped = body.replace(/\\(.)/g, '$1').replace(/[\\\]^]/g, '\\$&');
      const cls = negate ? `[^/${escaped}]` : `(?!/)[${escaped}]`;
      try {
        new RegExp(cls);
      } catch {
        throw new UsageError(`invalid glob '${glob}': '[${glob.slice(i + 1, close)}]' is not a valid character class (a range must go upwards, as in [a-z])`);
      }
      re += cls;
      i = close + 1;
    } else if (c === '\\') {
      if (i + 1 === n) throw new UsageError(`invalid glob '${glob}': it ends with a '\\' that escapes nothing (write \\\\ for a literal '\\')`);
      re += escapeRegExp(glob[i + 1]);
      i += 2;
    } else {
      re += escapeRegExp(c);
      i++;
    }
  }
  return new RegExp(`^${re}$`, 's');
}

function findClass(glob: string, open: number): number {
  let j = open + 1;
  if (glob[j] === '!' || glob[j] === '^') j++;
  if (glob[j] === ']') j++; // a leading ']' is literal
  for (; j < glob.length; j++) {
    if (glob[j] === '\\') j++;
    else if (glob[j] === ']') return j;
  }
  return -1;
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * --include / --exclude filters. A pattern with a '/' is matched against the
 * path relative to the argument it was found under; a pattern without one
 * against the base name (like .gitignore): `*.db` matches at any depth.
 */
export class PathFilter {
  readonly #include: Array<(rel: string) => boolean>;
  readonly #exclude: Array<(rel: string) => boolean>;

  constructor(include: readonly string[] = [], exclude: readonly string[] = []) {
    this.#include = include.map(compile);
    this.#exclude = exclude.map(compile);
  }

  get empty(): boolean {
    return this.#include.length === 0 && this.#exclude.length === 0;
  }

  /** A directory is skipped (not descended into) when it matches an exclude pattern. */
  descend(rel: string): boolean {
    return !this.#exclude.some((m) => m(rel));
  }

  /** A file is taken when it matches no exclude pattern and, if there are include patterns, one of them. */
  accept(rel: string): boolean {
    if (this.#exclude.some((m) => m(rel))) return false;
    return this.#include.length === 0 || this.#include.some((m) => m(rel));
  }
}

function compile(pattern: string): (rel: string) => boolean {
  let p = pattern;
  while (p.startsWith('./')) p = p.slice(2);
  if (p.endsWith('/') && p.length > 1) p = p.slice(0, -1);
  const re = globToRegExp(p);
  if (p.includes('/')) return (rel) => re.test(rel);
  return (rel) => re.test(rel.slice(rel.lastIndexOf('/') + 1));
}
