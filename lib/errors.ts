// Errors shaped like Node's own, built only here: argument errors carry Node's
// codes (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ...) with `name` 'TypeError' /
// 'RangeError' / 'Error' and the code in `code`, the stack and String(err) (as
// Node's own, e.g. Buffer.alloc(-1)); kernel failures look like fs errors
// (`EINVAL: invalid argument, madvise` with code, errno, syscall). The native
// addon only reports errno numbers and a syscall name (kernelError() below).
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap, inspect, types } from 'node:util';
import { plural } from './plural';

export interface ErrnoError extends Error {
  code: string;
  /** Negative, as Node reports it. */
  errno: number;
  syscall: string;
}

export interface CodedError extends Error {
  code: string;
}

let systemErrors: Map<number, [string, string]> | undefined;

/** libuv's map lacks a few Linux errnos (e.g. EHWPOISON); os.constants has their names. */
function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return `E${errno}`;
}

/** errno error from a positive errno number or a code name (e.g. 'EINVAL'); `hint` is appended to the message. */
export function errnoError(errnoOrCode: number | string, syscall: string, hint?: string): ErrnoError {
  systemErrors ??= getSystemErrorMap();
  let errno = 0;
  let name = '';
  let text = '';
  if (typeof errnoOrCode === 'number') {
    errno = -Math.abs(errnoOrCode);
    const entry = systemErrors.get(errno);
    name = entry?.[0] ?? errnoName(-errno);
    text = entry?.[1] ?? 'unknown error';
  } else {
    for (const [n, [code, message]] of systemErrors) {
      if (code === errnoOrCode) {
        errno = n;
        name = code;
        text = message;
        break;
      }
    }
    if (name === '') throw new Error(`unknown errno code ${errnoOrCode}`);
  }
  const err = new Error(`${name}: ${text}, ${syscall}${hint ? ` (${hint})` : ''}`) as ErrnoError;
  // In the order Node's own fs errors have them (Object.keys: errno, code, syscall).
  err.errno = errno;
  err.code = name;
  err.syscall = syscall;
  return err;
}

function coded<E extends Error>(err: E, code: string): E & CodedError {
  const e = err as E & CodedError;
  // As Node does: the stack and String(err) show `RangeError [ERR_OUT_OF_RANGE]: ...`,
  // while `name` stays the class's own ('RangeError') and the code is in `code`.
  Object.defineProperty(e, 'name', { value: `${err.name} [${code}]`, configurable: true, writable: true, enumerable: false });
  void e.stack; // V8 formats the stack header now, with the decorated name
  delete (e as { name?: string }).name;
  e.code = code;
  Object.defineProperty(e, 'toString', {
    value(this: Error) {
      return `${this.name} [${code}]: ${this.message}`;
    },
    configurable: true,
    writable: true,
    enumerable: false,
  });
  return e;
}

/**
 * A value for an error message that never reads memory behind a view or an
 * ArrayBuffer: util.inspect() reads a typed array's elements (and Buffer's
 * custom inspect its first bytes), and a view over mapped memory protected to
 * 'none' or guard-installed would raise SIGSEGV right there. Objects are shown
 * one level deep, nested objects by class name only.
 */
function show(value: unknown, nested = false): string {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return inspect(value);
  if (typeof value === 'function') return `[Function: ${value.name || '(anonymous)'}]`;
  const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  if (ArrayBuffer.isView(value) || types.isAnyArrayBuffer(value)) {
    return `${ctor ?? 'ArrayBuffer'}(${plural((value as ArrayBufferView).byteLength, 'byte')})`;
  }
  const proto = Object.getPrototypeOf(value);
  const plain = proto === Object.prototype || proto === null;
  if (nested || (!plain && !Array.isArray(value))) return `[${ctor ?? 'Object'}]`;
  const keys = Object.keys(value);
  const items = keys
    .slice(0, 8)
    .map((k) => (Array.isArray(value) ? '' : `${k}: `) + show((value as Record<string, unknown>)[k], true));
  if (keys.length > 8) items.push(`... ${keys.length - 8} more`);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  return items.length === 0 ? `${open}${close}` : `${open} ${items.join(', ')} ${close}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor;
    return ctor?.name ? `an instance of ${ctor.name}` : show(value);
  }
  let shown = inspect(value);
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof value} (${shown})`;
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError & CodedError {
  return coded(
    new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

export function outOfRange(name: string, range: string, actual: unknown): RangeError & CodedError {
  const shown = typeof actual === 'number' || typeof actual === 'bigint' ? String(actual) : show(actual);
  return coded(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
  );
}

export function invalidArgValue(name: string, actual: unknown, reason: string): TypeError & CodedError {
  return coded(
    new TypeError(`The argument '${name}' ${reason}. Received ${show(actual)}`),
    'ERR_INVALID_ARG_VALUE',
  );
}

/** `new X()` on a class users may not construct (Node: ERR_ILLEGAL_CONSTRUCTOR); `hint` says what to call instead. */
export function illegalConstructor(hint?: string): TypeError & CodedError {
  return coded(new TypeError(hint ? `Illegal constructor: ${hint}` : 'Illegal constructor'), 'ERR_ILLEGAL_CONSTRUCTOR');
}

export function invalidThis(type: string): TypeError & CodedError {
  return coded(new TypeError(`Value of "this" must be of type ${type}`), 'ERR_INVALID_THIS');
}

export function mappingClosed(operation: string): Error & CodedError {
  return coded(new Error(`Cannot ${operation}: the mapping is closed`), 'ERR_MAPPING_CLOSED');
}

/**
 * The registry of pagewise's own error codes (as Node's E() in lib/internal/errors.js):
 * pagewiseError() takes only a code listed here, so a misspelt or unregistered code does
 * not compile. To add a code, add one line: `ERR_NAME: 'when it is thrown',`. Node's own
 * argument codes (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE,
 * ERR_ILLEGAL_CONSTRUCTOR, ERR_INVALID_THIS, ERR_MAPPING_CLOSED) have their own builders above.
 */
export const ERROR_CODES = {
  ERR_ARENA_CLOSED: 'an arena method after close()',
  ERR_ARENA_FULL: 'alloc() finds no room and the arena may not grow',
  ERR_BUFFER_FREED: 'a volatile buffer used after free()',
  ERR_BUFFER_PINNED: 'pin() on a pinned buffer',
  ERR_BUFFER_UNPINNED: 'bytes of an unpinned buffer read',
  ERR_CACHE_ASYNC_PRODUCE: 'get() given a producer that returned a promise (fetch() takes async producers)',
  ERR_CACHE_CLOSED: 'a cache method after close()',
  ERR_CACHE_NO_MEMO_METHOD: 'memo() on a cache made without a memoMethod option',
  ERR_CACHE_REENTRANT_GET: 'get() of a key from inside its own produce()',
  ERR_HANDLE_RELEASED: 'a cache handle used after release()',
  ERR_INVALID_STATE: 'a buffer detached or transferred while a copy ran',
  ERR_MAPPING_BUSY: 'resize() while populate(), lock() or flush() is in flight',
  ERR_MAPPING_CLOSED: 'a mapping or shared memory used after close()',
  ERR_MAPPING_TOO_LARGE: 'a mapping larger than a JavaScript view can address',
  ERR_MEMORY_USAGE_UNSUPPORTED: 'memoryUsage() where /proc/self/smaps cannot be read',
  ERR_NOT_SUPPORTED: 'a kernel feature a call needs is missing (the message names it: PAGEMAP_SCAN, userfaultfd WP-async)',
  ERR_OPERATION_NOT_SUPPORTED: 'an operation this backend or mapping kind cannot do',
  ERR_PAGEWISE_METRICS_REGISTERED: 'collectMetrics() again on a registry that has its metrics',
  ERR_PAGEWISE_NATIVE_UNAVAILABLE: 'the native addon cannot be loaded',
  ERR_PAGEWISE_PROM_CLIENT_MISSING: 'collectMetrics() without prom-client installed',
  ERR_WRITE_TRACKER_CLOSED: 'a write tracker used after close()',
  ERR_SIMULATED_OOM: 'the simulator refuses a mapping the machine could not hold',
} as const satisfies Record<`ERR_${string}`, string>;

export type PagewiseErrorCode = keyof typeof ERROR_CODES;

/** Any other pagewise-specific failure, with a registered code (ERROR_CODES). */
export function pagewiseError(code: PagewiseErrorCode, message: string): Error & CodedError {
  return coded(new Error(message), code);
}

/**
 * The error a backend threw, as the public API reports it. The native addon
 * throws only errno numbers with the syscall (`{ errno, syscall }`, no message
 * worth showing) and short coded errors; the simulator throws errors built here.
 * Kernel errors get their Node-style code and message, plus `hint` (what the
 * library knows about the failure) and `advice` when given.
 */
export function kernelError(err: unknown, hint?: (code: string) => string | undefined, advice?: string): unknown {
  const e = err as Partial<ErrnoError> | null;
  if (e === null || typeof e !== 'object' || typeof e.errno !== 'number' || typeof e.syscall !== 'string') return err;
  const errno = Math.abs(e.errno);
  const plain = errnoError(errno, e.syscall);
  const extra = hint?.(plain.code);
  const out = extra ? errnoError(errno, e.syscall, extra) : plain;
  if (advice !== undefined) (out as ErrnoError & { advice?: string }).advice = advice;
  return out;
}

/**
 * A close name for "did you mean", or undefined: the candidate the word abbreviates (a
 * prefix of 3 or more letters: 'len' -> 'length'), else the one at the smallest edit
 * distance, if that distance is at most 2 or a third of the word.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  if (w.length >= 3) {
    const abbreviated = candidates.filter((c) => c.toLowerCase().startsWith(w));
    if (abbreviated.length === 1) return abbreviated[0];
  }
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance && d <= Math.max(2, Math.floor(w.length / 3))) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
