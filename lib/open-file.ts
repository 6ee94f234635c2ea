// Opening the file a caller names, for mapFile / fileResidency / evict / prefetch.
//
// - The path reaches open(2) byte for byte: a Buffer as is (a non-UTF-8 name
//   decoded to a string would name another file), a file: URL percent-decoded
//   to bytes where fileURLToPath cannot (its escapes are not UTF-8).
// - Only regular files: stat before the open refuses FIFOs, sockets, devices and
//   directories without opening them (opening a FIFO blocks until a writer comes;
//   opening some devices has effects). The open itself uses O_NONBLOCK, so a file
//   swapped for a FIFO in between cannot hang it either, and fstat after the open
//   refuses what was opened if it is not a regular file.
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { invalidArgType, invalidArgValue } from './errors';

type FileArgument = string | URL | Buffer | number;

/** What open(2) gets for a path argument: a string, or the exact bytes. */
function pathBytes(file: string | URL | Buffer): string | Buffer {
  let target: string | Buffer;
  if (typeof file === 'string') target = file;
  else if (Buffer.isBuffer(file)) target = file;
  else if (file instanceof URL) target = urlPath(file);
  else throw invalidArgType('file', 'of type string or an instance of Buffer or URL, or a file descriptor', file);
  if (typeof target === 'string' ? target.includes('\u0000') : target.includes(0)) {
    throw invalidArgValue('file', file, 'must be a string, Buffer or URL without null bytes');
  }
  return target;
}

function urlPath(url: URL): string | Buffer {
  try {
    return fileURLToPath(url);
  } catch (err) {
    // Scheme, host and encoded '/' were checked before the decoding failed:
    // only escapes that are not UTF-8 are left, and open(2) takes bytes.
    if (!(err instanceof URIError)) throw err;
  }
  const bytes: number[] = [];
  const text = url.pathname;
  for (let i = 0; i < text.length; i++) {
    const hex = text[i] === '%' ? text.slice(i + 1, i + 3) : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i], 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** Refuse anything but a regular file (the caller's argument in the message). */
export function requireRegularFile(stat: fs.Stats, file: FileArgument): void {
  if (!stat.isFile()) throw invalidArgValue('file', file, `is not a regular file (it is a ${kindOf(stat)})`);
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'directory';
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isSocket()) return 'socket';
  if (stat.isCharacterDevice()) return 'character device';
  if (stat.isBlockDevice()) return 'block device';
  return 'special file';
}

/**
 * Open a file by path without ever blocking in open(2): `check` (default: regular files only)
 * runs on stat before the open and on fstat after it. The caller closes the descriptor.
 */
export function openRegularFile(
  file: string | URL | Buffer,
  flags: 'r' | 'r+',
  check: (stat: fs.Stats, file: FileArgument) => void = requireRegularFile,
): { fd: number; path: string | Buffer } {
  const path = pathBytes(file);
  check(fs.statSync(path), file);
  const access = flags === 'r+' ? fs.constants.O_RDWR : fs.constants.O_RDONLY;
  const fd = fs.openSync(path, access | fs.constants.O_NONBLOCK); // libuv adds O_CLOEXEC
  try {
    check(fs.fstatSync(fd), file);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { fd, path };
}
