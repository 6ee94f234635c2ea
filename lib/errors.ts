// Errors shaped like Node's own: argument errors carry Node's codes
// (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ...); kernel failures look like fs
// errors (`EINVAL: invalid argument, madvise` with code, errno, syscall).
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap, inspect, types } from 'node:util';

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

/** errno error from a positive errno number or a code name (e.g. 'EINVAL'). */
export function errnoError(errnoOrCode: number | string, syscall: string): ErrnoError {
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
  const err = new Error(`${name}: ${text}, ${syscall}`) as ErrnoError;
  err.code = name;
  err.errno = errno;
  err.syscall = syscall;
  return err;
}

function coded<E extends Error>(err: E, code: string): E & CodedError {
  const e = err as E & CodedError;
  e.code = code;
  // Node's own argument errors show the code in the name: `RangeError [ERR_OUT_OF_RANGE]`.
  Object.defineProperty(e, 'name', {
    value: `${err.name} [${code}]`,
    configurable: true,
    writable: true,
    enumerable: false,
  });
  void e.stack; // capture the stack with the decorated name
  Object.defineProperty(e, 'name', { value: err.name, configurable: true, writable: true, enumerable: false });
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
    return `${ctor ?? 'ArrayBuffer'}(${(value as ArrayBufferView).byteLength} bytes)`;
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

export function invalidThis(type: string): TypeError & CodedError {
  return coded(new TypeError(`Value of "this" must be of type ${type}`), 'ERR_INVALID_THIS');
}

export function mappingClosed(operation: string): Error & CodedError {
  return coded(new Error(`Cannot ${operation}: the mapping is closed`), 'ERR_MAPPING_CLOSED');
}

/** Any other pagewise-specific failure, with a stable code. */
export function pagewiseError(code: string, message: string): Error & CodedError {
  return coded(new Error(message), code);
}
