// The pid file of `pagewise lock --daemon --pid-file FILE` (and vmtouch mode's -P), made
// the way daemons must make one when they run as root in a directory others can write
// (/tmp, /run/user, a shared /var/run):
//
// - never through a symbolic link, never into a FIFO, device or directory: the name is
//   created with O_CREAT | O_EXCL | O_NOFOLLOW (open(2)), so whatever already sits at the
//   path is never opened for writing, let alone truncated;
// - mode 0644 whatever the umask (fchmod), so other users can read the pid;
// - a pid file whose process still runs is refused ("in use"); one whose process is gone
//   (stale) is replaced by rename(2) of a new file made beside it with O_EXCL (rename
//   replaces the name, never writes through it), and only if the name still holds the
//   same inode that was found stale;
// - a file that does not hold a process id is refused: it is not a pid file, and
//   replacing it would destroy someone's data;
// - on exit the file is removed only if it is still the inode this process made and
//   still holds the pid it wrote.
//
// Only the last component of the path is guarded: the directories above it are the
// caller's choice, as for every other program.
import * as fs from 'node:fs';
import * as path from 'node:path';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** Why a pid file was refused: `code` says what, the message names the path. */
export interface PidFileError extends Error {
  code: 'ERR_PID_FILE_SYMLINK' | 'ERR_PID_FILE_NOT_REGULAR' | 'ERR_PID_FILE_IN_USE' | 'ERR_PID_FILE_NOT_PID' | string;
  path: string;
  /** The running process that holds the pid file (ERR_PID_FILE_IN_USE). */
  pid?: number;
}

function refuse(code: string, file: string, reason: string, extra: { pid?: number; cause?: unknown } = {}): PidFileError {
  const err = new Error(`pid file '${file}' ${reason}`) as PidFileError;
  err.code = code;
  err.path = file;
  if (extra.pid !== undefined) err.pid = extra.pid;
  if (extra.cause !== undefined) (err as { cause?: unknown }).cause = extra.cause;
  return err;
}

/** A system error on the pid file, with its errno code kept and the path named. */
function systemError(file: string, err: unknown, doing: string): PidFileError {
  const e = err as NodeJS.ErrnoException;
  const wrapped = refuse(e.code ?? 'ERR_PID_FILE', file, `cannot be ${doing}: ${e.message}`, { cause: err });
  if (e.errno !== undefined) (wrapped as NodeJS.ErrnoException).errno = e.errno;
  if (e.syscall !== undefined) (wrapped as NodeJS.ErrnoException).syscall = e.syscall;
  return wrapped;
}

function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'a special file';
}

/** The pid a pid file's text names: its first line, a decimal number > 0; undefined for anything else. */
export function parsePid(text: string): number | undefined {
  const first = text.split('\n', 1)[0].trim();
  if (!/^\d{1,10}$/.test(first)) return undefined;
  const pid = Number(first);
  return pid > 0 && pid <= 0x3fffffff ? pid : undefined;
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function processName(pid: number): string {
  try {
    return ` (${fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`;
  } catch {
    return '';
  }
}

/**
 * A file's identity: device, inode and the inode's birth time (statx; 0 where the file
 * system keeps none), so that an inode number reused by a new file is not taken for the old one.
 */
function identity(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.birthtimeMs}`;
}
const sameFile = (a: fs.Stats, b: fs.Stats): boolean => identity(a) === identity(b);

/** Read a regular file at `file` without following a symlink or blocking on a FIFO; with the stats of what was read. */
function readExisting(file: string): { text: string; st: fs.Stats } {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw refuse('ERR_PID_FILE_NOT_REGULAR', file, `is ${kindOf(st)}, not a regular file: not replaced`);
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return { text: buf.subarray(0, n).toString('latin1'), st };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What is at `file`: nothing ('absent'), a stale pid file (replaceable), 'again' when it
 * changed while being looked at; anything else is refused with a PidFileError.
 */
function inspect(file: string): 'absent' | 'again' | { stale: fs.Stats } {
  let existing: fs.Stats;
  try {
    existing = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw systemError(file, err, 'looked at');
  }
  if (existing.isSymbolicLink()) {
    throw refuse('ERR_PID_FILE_SYMLINK', file, 'is a symbolic link: pagewise never writes through one (remove it, or name another path)');
  }
  if (!existing.isFile()) throw refuse('ERR_PID_FILE_NOT_REGULAR', file, `is ${kindOf(existing)}, not a regular file: not replaced`);
  let found: { text: string; st: fs.Stats };
  try {
    found = readExisting(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return 'again'; // removed or swapped for a symlink meanwhile
    if (typeof code === 'string' && code.startsWith('ERR_PID_FILE')) throw err;
    throw systemError(file, err, 'read');
  }
  const old = parsePid(found.text);
  if (old === undefined) {
    throw refuse(
      'ERR_PID_FILE_NOT_PID',
      file,
      found.text.length === 0
        ? 'is empty (another pagewise may be starting; if not, remove it): not replaced'
        : 'does not hold a process id, so it is not a pid file: not replaced',
    );
  }
  if (processAlive(old)) {
    throw refuse('ERR_PID_FILE_IN_USE', file, `is in use: process ${old}${processName(old)} is running (stop it, or remove the file if it is not a pagewise daemon)`, { pid: old });
  }
  return { stale: found.st };
}

/** A pid file this process made and may rewrite (with the daemon's pid) or remove. */
export class PidFile {
  readonly path: string;
  #fd: number;
  /** The file made (identity()): only this one is ever rewritten or removed. */
  readonly id: string;
  #pid: number;

  private constructor(file: string, fd: number, st: fs.Stats, pid: number) {
    this.path = file;
    this.#fd = fd;
    this.id = identity(st);
    this.#pid = pid;
  }

  get pid(): number {
    return this.#pid;
  }

  /**
   * Create the pid file at `file` holding `pid` (default: this process), or throw a
   * PidFileError: symbolic link, not a regular file, in use by a running process, not a
   * pid file, or a system error (EACCES, ENOENT ...) with the path named.
   */
  static create(file: string, pid: number = process.pid): PidFile {
    const resolved = path.resolve(file);
    // A few rounds at most: each lost race (someone made or replaced the file meanwhile) is looked at again.
    for (let round = 0; round < 5; round++) {
      const found = inspect(resolved);
      if (found === 'again') continue;
      if (found === 'absent') {
        let fd: number;
        try {
          fd = fs.openSync(resolved, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // made meanwhile: look again
          throw systemError(resolved, err, 'created');
        }
        return PidFile.#filled(resolved, fd, pid);
      }
      const made = PidFile.#replaceStale(resolved, found.stale, pid);
      if (made !== undefined) return made;
    }
    throw refuse('ERR_PID_FILE_IN_USE', resolved, 'keeps changing while pagewise creates it (another process is making it): not replaced');
  }

  /**
   * Throw the PidFileError that create() would throw for `file` now, without making anything
   * (a command that locks first and writes its pid file after, as vmtouch -P does, refuses early).
   */
  static check(file: string): void {
    const resolved = path.resolve(file);
    inspect(resolved);
    // A missing file's directory must take a new file: EACCES / ENOENT are told now, not after locking.
    try {
      fs.accessSync(path.dirname(resolved), fs.constants.W_OK | fs.constants.X_OK);
    } catch (err) {
      throw systemError(resolved, err, 'created');
    }
  }

  static #filled(file: string, fd: number, pid: number): PidFile {
    try {
      fs.fchmodSync(fd, 0o644); // whatever the umask: a pid file is for others to read
      fs.writeSync(fd, `${pid}\n`, 0);
      return new PidFile(file, fd, fs.fstatSync(fd), pid);
    } catch (err) {
      // Remove what was made (it is ours: the name was created just now by O_EXCL).
      const st = fs.fstatSync(fd);
      fs.closeSync(fd);
      unlinkIfSame(file, st);
      throw systemError(file, err, 'written');
    }
  }

  /** A new file beside the stale one, renamed over it if the name still holds the stale inode; undefined if it changed meanwhile. */
  static #replaceStale(file: string, stale: fs.Stats, pid: number): PidFile | undefined {
    const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`);
    let fd: number;
    try {
      fd = fs.openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    } catch (err) {
      throw systemError(file, err, 'replaced (a new file beside it could not be made)');
    }
    let made: PidFile;
    try {
      made = PidFile.#filled(temp, fd, pid);
    } catch (err) {
      throw systemError(file, (err as { cause?: unknown }).cause ?? err, 'replaced');
    }
    let now: fs.Stats | undefined;
    try {
      now = fs.lstatSync(file);
    } catch {
      now = undefined;
    }
    if (now === undefined || !sameFile(now, stale)) {
      made.#dropTemp(temp);
      return undefined;
    }
    try {
      fs.renameSync(temp, file);
    } catch (err) {
      made.#dropTemp(temp);
      throw systemError(file, err, 'replaced');
    }
    return new PidFile(file, made.#fd, fs.fstatSync(made.#fd), pid);
  }

  #dropTemp(temp: string): void {
    const st = fs.fstatSync(this.#fd);
    fs.closeSync(this.#fd);
    this.#fd = -1;
    unlinkIfSame(temp, st);
  }

  /**
   * Write another pid into the file (the daemon's, once it is ready): the longer text is
   * written first and the rest cut off after, so a reader never sees an empty file.
   */
  rewrite(pid: number): void {
    if (this.#fd < 0) throw new Error(`pagewise: internal error: pid file '${this.path}' is closed`);
    const text = `${pid}\n`;
    fs.writeSync(this.#fd, text, 0);
    fs.ftruncateSync(this.#fd, Buffer.byteLength(text));
    this.#pid = pid;
  }

  /** Stop holding the descriptor (the file stays). */
  close(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Remove the file if it is still the one made here and still holds its pid (see releasePidFile). */
  release(): boolean {
    this.close();
    return releasePidFile(this.path, this.id, this.#pid);
  }
}

function unlinkIfSame(file: string, st: fs.Stats): boolean {
  try {
    const now = fs.lstatSync(file);
    if (!sameFile(now, st)) return false;
    fs.unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Remove the pid file at `file` if it is still the file `id` (PidFile.id) and still holds
 * `pid`: a pid file another process made or replaced meanwhile is left alone, and a
 * symbolic link put in its place is neither followed nor removed. Returns whether it was removed.
 */
export function releasePidFile(file: string, id: string, pid: number): boolean {
  let found: { text: string; st: fs.Stats };
  try {
    found = readExisting(file);
  } catch {
    return false; // gone, a symlink (ELOOP), or not a regular file: not ours
  }
  if (identity(found.st) !== id || parsePid(found.text) !== pid) return false;
  return unlinkIfSame(file, found.st);
}
