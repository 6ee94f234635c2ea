// Shared memory that cannot be truncated (issue 14): a memfd sealed against
// shrinking, mapped shared. A file mapping raises SIGBUS when someone truncates
// the file under it; nobody (not even the process that made it) can shrink this
// one, so no mapping of it in any process can fault that way. Its descriptor can
// be handed to a child process (stdio) or used by a worker thread; either maps
// the same pages with mapFile(fd, { mode: 'shared' }).
import * as fs from 'node:fs';
import type { Backend } from './backend';
import { invalidArgValue, kernelError, pagewiseError } from './errors';
import type { Mapping } from './mapping';
import { optionKeys, validateBoolean, validateInteger, validateObject } from './validate';

export interface SharedMemoryOptions {
  /** Shown in /proc/<pid>/fd and /proc/<pid>/maps as memfd:<name>. At most 249 bytes. Default 'pagewise'. */
  name?: string;
  /** Also seal against growing (F_SEAL_GROW): the size is then fixed for good. Default false. */
  sealGrow?: boolean;
}

const SHARED_MEMORY_KEYS = optionKeys<SharedMemoryOptions>()(['name', 'sealGrow'] as const);

export class SharedMemory implements Disposable {
  #fd: number;
  /** The memory, mapped shared (kind 'file'). */
  readonly mapping: Mapping;
  /** Bytes. */
  readonly size: number;

  /** @internal Use createSharedMemory(). */
  constructor(fd: number, mapping: Mapping, size: number) {
    this.#fd = fd;
    this.mapping = mapping;
    this.size = size;
  }

  /**
   * The memfd descriptor (close-on-exec). Pass it to a child in `stdio` (the child
   * gets it as a plain descriptor), or to a worker thread (descriptors are per process).
   */
  get fd(): number {
    if (this.#fd < 0) throw pagewiseError('ERR_MAPPING_CLOSED', 'Cannot get the descriptor: the shared memory is closed');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Unmap and close the descriptor. Other processes' mappings and descriptors keep the memory alive. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    this.mapping.close();
    const fd = this.#fd;
    this.#fd = -1;
    fs.closeSync(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export function createSharedMemory(
  backend: Backend,
  mapFd: (fd: number) => Mapping,
  size: number,
  options: SharedMemoryOptions | undefined,
): SharedMemory {
  validateInteger('size', size, 1);
  const o = validateObject<SharedMemoryOptions>('options', options, SHARED_MEMORY_KEYS);
  let name = 'pagewise';
  if (o.name !== undefined) {
    if (typeof o.name !== 'string' || o.name.includes('\u0000') || Buffer.byteLength(o.name) > 249) {
      throw invalidArgValue('options.name', o.name, 'must be a string of at most 249 bytes without null bytes');
    }
    name = o.name;
  }
  const sealGrow = o.sealGrow === undefined ? false : validateBoolean('options.sealGrow', o.sealGrow);
  let fd: number;
  try {
    fd = backend.createMemfd(name, size, sealGrow);
  } catch (err) {
    throw kernelError(err);
  }
  try {
    return new SharedMemory(fd, mapFd(fd), size);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}
