// Copies out of and into a mapping that can never kill the process (issue 14).
// A JavaScript access through mapping.buffer to a page the file no longer has
// raises SIGBUS; these copies go through process_vm_readv / process_vm_writev on
// the calling process instead, which stop at such a page and report how far they
// got. Mapping.read/readSync/write/writeSync (lib/mapping.ts) turn a short copy
// into an EFAULT error that carries the count.
import type { BackendMapping } from './backend';
import { type ErrnoError, errnoError, invalidArgType, kernelError, mappingClosed } from './errors';
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

export function shortRead(bytesRead: number, length: number): ShortReadError {
  const hint = `copied ${bytesRead} of ${length} bytes: a page past the end of the file, or one that cannot be read`;
  const err = errnoError('EFAULT', 'process_vm_readv', hint) as ShortReadError;
  err.bytesRead = bytesRead;
  return err;
}

export function shortWrite(bytesWritten: number, length: number): ShortWriteError {
  const hint = `copied ${bytesWritten} of ${length} bytes: a page past the end of the file, or one that cannot be written`;
  const err = errnoError('EFAULT', 'process_vm_writev', hint) as ShortWriteError;
  err.bytesWritten = bytesWritten;
  return err;
}

/** Checks read() arguments against a mapping of `size` bytes; returns the target to fill. */
export function readArgs(offset: unknown, length: unknown, target: unknown, size: number, ownMemory: boolean): [number, number, Uint8Array] {
  const start = validateInteger('offset', offset, 0, size);
  if (target !== undefined && !(target instanceof Uint8Array)) throw invalidArgType('target', 'an instance of Uint8Array', target);
  const room = target === undefined ? size - start : Math.min(size - start, target.byteLength);
  const len = validateInteger('length', length, 0, room);
  // A threadpool copy writes into its own ArrayBuffer (allocUnsafeSlow: not a slice of
  // the shared pool), which no JavaScript can transfer or detach while the copy runs.
  const into = target ?? (ownMemory ? Buffer.allocUnsafeSlow(len) : Buffer.allocUnsafe(len));
  return [start, len, into];
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

export function readSync(region: BackendMapping, at: number, length: number, into: Uint8Array): Uint8Array {
  const n = length === 0 ? 0 : copying('read', () => region.readInto(at, length, into));
  if (n < length) throw shortRead(n, length);
  return into.subarray(0, length);
}

export async function read(region: BackendMapping, at: number, length: number, into: Uint8Array): Promise<Uint8Array> {
  const n =
    length < copySettings.asyncMin
      ? copying('read', () => region.readInto(at, length, into))
      : await copyingAsync('read', () => region.readIntoAsync(at, length, into));
  if (n < length) throw shortRead(n, length);
  return into.subarray(0, length);
}

export function writeSync(region: BackendMapping, at: number, source: Uint8Array): number {
  const n = source.byteLength === 0 ? 0 : copying('write', () => region.writeFrom(at, source));
  if (n < source.byteLength) throw shortWrite(n, source.byteLength);
  return n;
}

export async function write(region: BackendMapping, at: number, source: Uint8Array): Promise<number> {
  const length = source.byteLength;
  const n =
    length < copySettings.asyncMin
      ? copying('write', () => region.writeFrom(at, source))
      : await copyingAsync('write', () => region.writeFromAsync(at, source));
  if (n < length) throw shortWrite(n, length);
  return n;
}
