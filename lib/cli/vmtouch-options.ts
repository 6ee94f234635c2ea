// vmtouch's command line as vmtouch 1.3.1 reads it (GNU getopt over "tevqlLdfFh0i:I:p:b:m:P:w",
// its parse_size and parse_range, its option checks), and the figures it prints in its own
// formats (pretty_print_size, printf's %g, the residency chart, strerror's words).
// lib/cli/vmtouch.ts runs it.
import { getSystemErrorMap } from 'node:util';
import { globToRegExp } from './args';

/** vmtouch's exit status for a fatal or usage error. */
export const VMTOUCH_FAILED = 1;

const WITH_VALUE = new Set(['i', 'I', 'p', 'b', 'm', 'P']);
const FLAGS = new Set(['t', 'e', 'v', 'q', 'l', 'L', 'd', 'f', 'F', 'h', '0', 'w']);

/** A fatal error (vmtouch: "FATAL: ..."; exit 1). */
export class Fatal extends Error {}
/** A usage error (an unknown option, a missing value, no paths; exit 1 as vmtouch's usage()). */
export class Usage extends Error {}

export interface VmtouchOptions {
  touch: boolean;
  evict: boolean;
  quiet: boolean;
  verbose: number;
  lock: boolean;
  lockAll: boolean;
  daemon: boolean;
  follow: boolean;
  singleFs: boolean;
  countHardLinks: boolean;
  wait: boolean;
  nulDelimited: boolean;
  maxFileSize: number;
  /** -p: the page-aligned start and the length from it (0 = to the end of each file). */
  offset: number;
  maxLength: number;
  ignore: string[];
  include: string[];
  batch: string | undefined;
  pidFile: string | undefined;
  paths: string[];
  /** The option words to pass on to a daemon's child (without -d, -w and -P). */
  childArgs: string[];
}

/** vmtouch's parse_size: a decimal number with an optional k, m or g (binary) suffix. */
export function parseVmtouchSize(text: string): number {
  const bad = 'bad size. examples: 4096, 4k, 100M, 1.5G';
  if (text.length < 1) throw new Fatal(bad);
  let body = text;
  let multiplier = 1;
  const last = text[text.length - 1].toLowerCase();
  if (/[a-z]/.test(last)) {
    const m = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[last];
    if (m === undefined) throw new Fatal(`unknown size multiplier: ${last}`);
    multiplier = m;
    body = text.slice(0, -1);
  }
  // strtod: leading white space, then a decimal number (an empty rest is 0, as strtod leaves it).
  const trimmed = body.replace(/^\s+/, '');
  if (trimmed !== '' && !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed)) throw new Fatal(bad);
  const value = trimmed === '' ? 0 : Number(trimmed);
  if (value < 0 || !Number.isFinite(value)) throw new Fatal(bad);
  const bytes = value * multiplier;
  if (bytes > Number.MAX_SAFE_INTEGER) throw new Fatal(bad);
  return Math.trunc(bytes);
}

/**
 * Read vmtouch's arguments as GNU getopt does: "-tv" is -t -v, "-m1M" and "-m 1M" alike,
 * options anywhere among the paths, "--" ends the options.
 */
export function parseVmtouchArgs(argv: readonly string[], pageSize: number): VmtouchOptions {
  const o: VmtouchOptions = {
    touch: false,
    evict: false,
    quiet: false,
    verbose: 0,
    lock: false,
    lockAll: false,
    daemon: false,
    follow: false,
    singleFs: false,
    countHardLinks: false,
    wait: false,
    nulDelimited: false,
    maxFileSize: Number.MAX_SAFE_INTEGER,
    offset: 0,
    maxLength: 0,
    ignore: [],
    include: [],
    batch: undefined,
    pidFile: undefined,
    paths: [],
    childArgs: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      o.paths.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      o.paths.push(arg);
      continue;
    }
    if (arg.startsWith('--')) throw new Usage(`unrecognized option '${arg}'`);
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j];
      if (WITH_VALUE.has(c)) {
        let value: string;
        if (j + 1 < arg.length) value = arg.slice(j + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new Usage(`option requires an argument -- '${c}'`);
        applyValue(o, c, value, pageSize);
        break;
      }
      if (!FLAGS.has(c)) throw new Usage(`invalid option -- '${c}'`);
      applyFlag(o, c);
    }
  }
  if (o.touch && o.evict) throw new Fatal('invalid option combination: -t and -e');
  if (o.evict && o.lock) throw new Fatal('invalid option combination: -e and -l');
  if (o.lock && o.lockAll) throw new Fatal('invalid option combination: -l and -L');
  if (o.daemon) {
    if (!(o.lock || o.lockAll)) throw new Fatal('daemon mode must be combined with -l or -L');
    if (!o.wait) {
      o.quiet = true;
      o.verbose = 0;
    }
  }
  if (o.wait && !o.daemon) throw new Fatal('wait mode must be combined with -d');
  if (o.quiet && o.verbose) throw new Fatal('invalid option combination: -q and -v');
  if (o.pidFile !== undefined && !o.lock && !o.lockAll) throw new Fatal('pidfile can only be created when -l or -L is specified');
  if (o.paths.length === 0 && o.batch === undefined) throw new Usage('no files or directories specified');
  return o;
}

function applyFlag(o: VmtouchOptions, c: string): void {
  switch (c) {
    case 't':
      o.touch = true;
      break;
    case 'e':
      o.evict = true;
      break;
    case 'q':
      o.quiet = true;
      break;
    case 'v':
      o.verbose++;
      break;
    case 'l':
      o.lock = true;
      o.touch = true;
      break;
    case 'L':
      o.lockAll = true;
      o.touch = true;
      break;
    case 'd':
      o.daemon = true;
      return;
    case 'f':
      o.follow = true;
      break;
    case 'F':
      o.singleFs = true;
      break;
    case 'h':
      o.countHardLinks = true;
      break;
    case '0':
      o.nulDelimited = true;
      break;
    case 'w':
      o.wait = true;
      return;
  }
  o.childArgs.push(`-${c}`);
}

function applyValue(o: VmtouchOptions, c: string, value: string, pageSize: number): void {
  switch (c) {
    case 'p': {
      // vmtouch's parse_range: [START]-[END], or END alone; START rounded down to a page.
      const parts = value.split('-');
      if (parts.length > 2) throw new Fatal('malformed range: multiple hyphens');
      let lower = 0;
      let upper = 0;
      if (parts.length === 1) upper = parseVmtouchSize(parts[0]);
      else {
        if (parts[0] !== '') lower = parseVmtouchSize(parts[0]);
        if (parts[1] !== '') upper = parseVmtouchSize(parts[1]);
      }
      o.offset = Math.floor(lower / pageSize) * pageSize;
      if (upper) {
        if (upper <= o.offset) throw new Fatal('range limits out of order');
        o.maxLength = upper - o.offset;
      }
      break;
    }
    case 'm':
      o.maxFileSize = parseVmtouchSize(value);
      break;
    case 'i':
      o.ignore.push(value);
      break;
    case 'I':
      o.include.push(value);
      break;
    case 'b':
      o.batch = value;
      break;
    case 'P':
      o.pidFile = value;
      return;
  }
  o.childArgs.push(`-${c}`, value);
}

/** vmtouch's pretty_print_size: whole K, M or G (binary, rounded down). */
export function vmtouchSize(bytes: number): string {
  if (bytes < 1024) return String(bytes);
  let v = Math.floor(bytes / 1024);
  if (v < 1024) return `${v}K`;
  v = Math.floor(v / 1024);
  if (v < 1024) return `${v}M`;
  return `${Math.floor(v / 1024)}G`;
}

/** `x` with `digits` decimals, ties to even as printf rounds an exact binary tie (toFixed rounds them up). */
function fixed(x: number, digits: number): string {
  const wide = x.toFixed(Math.min(100, digits + 25));
  const cut = wide.indexOf('.') + (digits === 0 ? 0 : 1) + digits;
  const tail = wide.slice(cut + (digits === 0 ? 1 : 0));
  if (/^50*$/.test(tail)) {
    const head = wide.slice(0, cut);
    if (Number(head[head.length - 1]) % 2 === 0) return head;
  }
  return x.toFixed(digits);
}

/** printf's "%.<precision>g". */
export function formatG(x: number, precision: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const exponent = Number(x.toExponential(precision - 1).split('e')[1]);
  const strip = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exponent < -4 || exponent >= precision) {
    const [mantissa, e] = x.toExponential(precision - 1).split('e');
    const n = Number(e);
    return `${strip(mantissa)}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return strip(fixed(x, precision - 1 - exponent));
}

/** vmtouch's residency chart: one cell per ceil-ish group of pages ('O' all, 'o' some, ' ' none), then "r/n". */
export function vmtouchChart(pages: Uint8Array | undefined, n: number, allResident = false): string {
  const perCell = n <= 60 ? 1 : Math.floor(n / 60) + 1;
  let chart = '';
  let inCell = 0;
  let residentInCell = 0;
  let resident = 0;
  const cell = (count: number, of: number) => (count === of ? 'O' : count === 0 ? ' ' : 'o');
  for (let i = 0; i < n; i++) {
    if (allResident || (pages !== undefined && pages[i] & 1)) {
      residentInCell++;
      resident++;
    }
    if (++inCell === perCell) {
      chart += cell(residentInCell, perCell);
      inCell = residentInCell = 0;
    }
  }
  if (inCell) chart += cell(residentInCell, inCell);
  return `\r[${chart}] ${resident}/${n}`;
}

let errorTexts: Map<number, [string, string]> | undefined;
/** strerror(3)'s wording for an fs error (libuv's, first letter up; the few that differ, as glibc says them). */
export function strerror(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const glibc: Record<string, string> = {
    ELOOP: 'Too many levels of symbolic links',
    ENOTDIR: 'Not a directory',
    EACCES: 'Permission denied',
    ENOENT: 'No such file or directory',
  };
  if (e.code !== undefined && glibc[e.code] !== undefined) return glibc[e.code];
  errorTexts ??= getSystemErrorMap();
  const text = e.errno === undefined ? undefined : errorTexts.get(e.errno)?.[1];
  const message = text ?? e.message ?? String(err);
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/** basename(3) of a path without a trailing '/' (crawl() strips one): what follows the last '/'. */
export const basename = (p: string): string => (p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1));

/** fnmatch(3) with no flags, on base names (no '/' in them): the glob subset of args.ts. */
export function matcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => {
    try {
      return globToRegExp(p);
    } catch {
      return new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 's'); // not a glob: itself
    }
  });
  return (name) => res.some((re) => re.test(name));
}
