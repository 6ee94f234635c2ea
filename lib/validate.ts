// Argument checks shared by every public entry point. Each throws Node-style
// errors (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE).
import { closest, invalidArgType, invalidArgValue, outOfRange } from './errors';

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

/**
 * An options object (undefined = {}). With `keys`, any other own property is
 * rejected (ERR_INVALID_ARG_VALUE naming it, with a "did you mean" when one is
 * close): a typo such as `{ ofset: 4096 }` must not silently widen a destructive
 * operation to the whole mapping.
 */
export function validateObject<T extends object>(name: string, value: unknown, keys?: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || !isPlain(value)) {
    throw invalidArgType(name, 'a plain object', value);
  }
  if (keys !== undefined) {
    // A range is checked on every advise / residency call (hot path): its two keys
    // compare literally, without an array search. Other lists search the array.
    const range = keys === rangeKeys;
    for (const key in value) {
      if ((range ? key !== 'offset' && key !== 'length' : !keys.includes(key)) && Object.prototype.hasOwnProperty.call(value, key)) {
        throw unknownKey(name, value, key, keys);
      }
    }
  }
  return value as Partial<T>;
}

/**
 * A plain object ({...}, Object.create(null), or one from another realm): an array, a typed
 * array or a class instance is refused up front, before its keys are enumerated (a typed
 * array of 200 M elements would be walked index by index).
 */
function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return true;
  // Another realm's Object.prototype (vm contexts): a null-prototype object whose constructor is 'Object'.
  return (
    typeof proto === 'object' &&
    Object.getPrototypeOf(proto) === null &&
    (proto as { constructor?: { name?: unknown } }).constructor?.name === 'Object'
  );
}

/**
 * Every key of an options interface T, checked by the compiler both ways: a key T does
 * not have does not compile (`satisfies`), and neither does a list that misses one of T's
 * keys (the `missing` parameter then has a type nothing can satisfy). Usage:
 *   const KEYS = optionKeys<MapOptions>()(['shared', 'name'] as const);
 */
export function optionKeys<T>() {
  return <const K extends ReadonlyArray<keyof T & string>>(
    keys: K,
    ...missing: [Exclude<keyof T, K[number]>] extends [never] ? [] : [{ missingKeys: Exclude<keyof T, K[number]> }]
  ): readonly (keyof T & string)[] => {
    void missing;
    return Object.freeze([...keys]);
  };
}

function unknownKey(name: string, value: unknown, key: string, keys: readonly string[]): Error {
  const guess = closest(key, keys);
  const known = keys.map((k) => `'${k}'`).join(', ');
  return invalidArgValue(
    name,
    value,
    `has an unknown property '${key}' (${guess !== undefined ? `did you mean '${guess}'? ` : ''}known: ${known})`,
  );
}

export function validateOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (!(allowed as readonly string[]).includes(value)) {
    const guess = closest(value, allowed);
    const hint = guess !== undefined ? ` (did you mean '${guess}'?)` : '';
    throw invalidArgValue(name, value, `must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}${hint}`);
  }
  return value as T;
}

/**
 * A byte range relative to a mapping (or a file). Public signatures take
 * `Range & object` so that a string (which has a `length`) does not type-check.
 */
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

// Used inside this module under a local name: an exported const is read through
// this module's exports object, one more object touched per call (hot path).
const rangeKeys: readonly string[] = Object.freeze(['offset', 'length'] as const satisfies ReadonlyArray<keyof Range>);
export const RANGE_KEYS = rangeKeys;

/**
 * Validate a range against a mapping of `size` bytes; returns [offset, length].
 * `keys`: every property the object may have (an options object that extends Range).
 */
export function validateRange(range: unknown, size: number, name = 'range', keys: readonly string[] = rangeKeys): [number, number] {
  const offset = rangeOffset(range, size, name, keys);
  return [offset, rangeLength(range, offset, size, name)];
}

/**
 * The first half of validateRange without its array (the per-call paths keep
 * both numbers in locals): checks that `range` is undefined or an object with
 * no other own keys than `keys`, and returns its offset (default 0).
 */
export function rangeOffset(range: unknown, size: number, name = 'range', keys: readonly string[] = rangeKeys): number {
  if (range === undefined) return 0;
  const o = validateObject<Range>(name, range, keys).offset;
  return o === undefined ? 0 : isIndex(o, size) ? o : validateInteger(`${name}.offset`, o, 0, size);
}

/** The second half of validateRange: the length of `range` (already checked by rangeOffset) that starts at `offset`; default: to `size`. */
export function rangeLength(range: unknown, offset: number, size: number, name = 'range'): number {
  const l = range === undefined ? undefined : (range as Range).length;
  return l === undefined ? size - offset : isIndex(l, size - offset) ? l : validateInteger(`${name}.length`, l, 0, size - offset);
}
