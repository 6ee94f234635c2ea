// Copies out of and into a mapping that can never kill the process (issue 14).
// A JavaScript access through mapping.buffer to a page the file no longer has
// raises SIGBUS; these copies go through process_vm_readv / process_vm_writev on
// the calling process instead, which stop at such a page and report how far they
// got. Mapping.read/readSync/write/writeSync (lib/mapping.ts) turn a short copy
// into an EFAULT error that carries the count.
import type { BackendMapping } from './backend';
import { type ErrnoError, errnoError, invalidArgType, kernelError, mappingClosed, pagewiseError } from './errors';
import { plural } from './plural';
import { validateInteger } from './validate';

/**
 * Copies of at least this many bytes run on the libuv threadpool when made with
 * read() / write(); smaller ones are made on the calling thread (a threadpool round
 * trip costs more than copying them). Internal: tests lower it to drive the
 * threadpool path with small copies.
 */
export const copySettings = { asyncMin: 1 << 20 };

/** EFAULT from read() / readSync(): the first bytesRead bytes were copied into the target. */
export interface ShortReadError extends ErrnoError {
  bytesRead: number;
}

/** EFAULT from write() / writeSync(): the first bytesWritten bytes reached the mapping. */
export interface ShortWriteError extends ErrnoError {
  bytesWritten: number;
}

function shortRead(bytesRead: number, length: number): ShortReadError {
  const hint = `copied ${bytesRead} of ${plural(length, 'byte')}: a page past the end of the file, or one that cannot be read`;
  const err = errnoError('EFAULT', 'process_vm_readv', hint) as ShortReadError;
  err.bytesRead = bytesRead;
  return err;
}

function shortWrite(bytesWritten: number, length: number): ShortWriteError {
  const hint = `copied ${bytesWritten} of ${plural(length, 'byte')}: a page past the end of the file, or one that cannot be written`;
  const err = errnoError('EFAULT', 'process_vm_writev', hint) as ShortWriteError;
  err.bytesWritten = bytesWritten;
  return err;
}

/** Checks read() arguments against a mapping of `size` bytes; returns [offset, length, the caller's target]. */
export function readArgs(offset: unknown, length: unknown, target: unknown, size: number): [number, number, Uint8Array | undefined] {
  const start = validateInteger('offset', offset, 0, size);
  if (target !== undefined && !(target instanceof Uint8Array)) throw invalidArgType('target', 'an instance of Uint8Array', target);
  const room = target === undefined ? size - start : Math.min(size - start, target.byteLength);
  const len = validateInteger('length', length, 0, room);
  return [start, len, target];
}

/** Checks write() arguments against a mapping of `size` bytes. */
export function writeArgs(offset: unknown, source: unknown, size: number): [number, Uint8Array] {
  const start = validateInteger('offset', offset, 0, size);
  if (!(source instanceof Uint8Array)) throw invalidArgType('source', 'an instance of Uint8Array', source);
  validateInteger('source.byteLength', source.byteLength, 0, size - start);
  return [start, source];
}

/** A backend copy, with its errors as the public API reports them (kernel errors, ERR_MAPPING_CLOSED). */
function copying(operation: string, copy: () => number): number {
  try {
    return copy();
  } catch (err) {
    throw publicError(operation, err);
  }
}

async function copyingAsync(operation: string, copy: () => Promise<number>): Promise<number> {
  try {
    return await copy();
  } catch (err) {
    throw publicError(operation, err);
  }
}

function publicError(operation: string, err: unknown): unknown {
  if ((err as ErrnoError | undefined)?.code === 'ERR_MAPPING_CLOSED') return mappingClosed(operation);
  return kernelError(err);
}

export function readSync(region: BackendMapping, at: number, length: number, target: Uint8Array | undefined): Uint8Array {
  const into = target ?? Buffer.allocUnsafe(length);
  const n = length === 0 ? 0 : copying('read', () => region.readInto(at, length, into));
  if (n < length) throw shortRead(n, length);
  return into.subarray(0, length);
}

/**
 * The threadpool only ever copies into or out of a buffer no JavaScript can reach:
 * a caller's buffer could be detached or transferred meanwhile (its memory freed or
 * moved under the copy), so the bytes go through a private buffer and the caller's
 * is touched on the main thread only.
 */
export async function read(region: BackendMapping, at: number, length: number, target: Uint8Array | undefined): Promise<Uint8Array> {
  if (length < copySettings.asyncMin) return readSync(region, at, length, target);
  const own = Buffer.allocUnsafeSlow(length);
  const n = await copyingAsync('read', () => region.readIntoAsync(at, length, own));
  let result: Uint8Array = own.subarray(0, length);
  if (target !== undefined) {
    if (target.byteLength < n) throw detachedMeanwhile('target');
    target.set(own.subarray(0, n));
    result = target.subarray(0, length);
  }
  if (n < length) throw shortRead(n, length);
  return result;
}

export function writeSync(region: BackendMapping, at: number, source: Uint8Array): number {
  const n = source.byteLength === 0 ? 0 : copying('write', () => region.writeFrom(at, source));
  if (n < source.byteLength) throw shortWrite(n, source.byteLength);
  return n;
}

export async function write(region: BackendMapping, at: number, source: Uint8Array): Promise<number> {
  const length = source.byteLength;
  if (length < copySettings.asyncMin) return writeSync(region, at, source);
  const own = Buffer.allocUnsafeSlow(length);
  own.set(source); // the caller may detach source once this returns
  const n = await copyingAsync('write', () => region.writeFromAsync(at, own));
  if (n < length) throw shortWrite(n, length);
  return n;
}

function detachedMeanwhile(name: string): Error {
  return pagewiseError('ERR_INVALID_STATE', `The ${name} buffer was detached or transferred while the copy ran; the bytes were not delivered`);
}
