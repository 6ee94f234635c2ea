// Argument checks shared by every public entry point. Each throws Node-style
// errors (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE).
import { invalidArgType, invalidArgValue, outOfRange } from './errors';

/** A safe integer in [min, max]. */
export function validateInteger(name: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

export function validateBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validateObject<T extends object>(name: string, value: unknown): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value);
  }
  return value as Partial<T>;
}

export function validateOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (!(allowed as readonly string[]).includes(value)) {
    throw invalidArgValue(name, value, `must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
  return value as T;
}

/** A byte range relative to a mapping. */
export interface Range {
  /** First byte (default 0). */
  offset?: number;
  /** Bytes (default: to the end of the mapping). */
  length?: number;
}

/** An integer in [0, max]: the common case, checked without building an argument name. */
function isIndex(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

/** Validate a range against a mapping of `size` bytes; returns [offset, length]. */
export function validateRange(range: unknown, size: number, name = 'range'): [number, number] {
  if (range === undefined) return [0, size];
  const r = validateObject<Range>(name, range);
  const o = r.offset;
  const offset = o === undefined ? 0 : isIndex(o, size) ? o : validateInteger(`${name}.offset`, o, 0, size);
  const l = r.length;
  const length =
    l === undefined ? size - offset : isIndex(l, size - offset) ? l : validateInteger(`${name}.length`, l, 0, size - offset);
  return [offset, length];
}
