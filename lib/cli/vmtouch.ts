// `pagewise [vmtouch options] <paths...>`: vmtouch's command line with vmtouch's meaning
// (vmtouch 1.3.1, Debian's), for scripts written for vmtouch. Options are read as GNU getopt
// reads "tevqlLdfFh0i:I:p:b:m:P:w" (bundled, attached values, options after the paths);
// the walk is vmtouch's (lstat unless -f, a warning for every symbolic link not followed,
// hard-linked inodes counted once unless -h, -i on every base name, -I on files, -F against
// the first path's device); totals are counted in pages of each file's range; the output
// is vmtouch's summary ("Files", "Directories", "Resident Pages" / "Touched Pages" /
// "Evicted Pages", "Elapsed", or "LOCKED ... pages"), and exit codes are vmtouch's: 0 when
// files could only be skipped with a warning, 1 for a fatal error or a usage error.
// test/cli-vmtouch.test.ts runs the same invocations through vmtouch and compares.
// The pagewise commands (stat, touch, evict, lock) are separate and unchanged by this mode.
import * as fs from 'node:fs';
import type { Pagewise } from '../api';
import type { Backend } from '../backend';
import type { Mapping } from '../mapping';
import { CHUNK, FIELD, FIELDS, type StatNative, rowError, statNative, statPaths } from './stat/native';
import { READY_MARK, removeOwnPidFile } from './daemon';
import { PidFile } from './pid-file';
import type { CliIO } from './run';
import { Fatal, Usage, VMTOUCH_FAILED, type VmtouchOptions, basename, formatG, matcher, parseVmtouchArgs, strerror, vmtouchChart, vmtouchSize } from './vmtouch-options';

interface Totals {
  files: number;
  directories: number;
  pages: number;
  resident: number;
}

/** The CLI's native batch calls, or undefined (then every file is counted on its own). */
function nativeStat(): StatNative | undefined {
  try {
    return statNative();
  } catch {
    return undefined;
  }
}

interface Held {
  mapping: Mapping;
}

/** One vmtouch run over the paths: the walk and each file's work, as vmtouch_crawl / vmtouch_file do. */
class Crawl {
  readonly totals: Totals = { files: 0, directories: 0, pages: 0, resident: 0 };
  readonly held: Held[] = [];
  #seen = new Set<string>();
  #ancestors: number[] = [];
  #device: number | undefined;
  readonly #ignored: (name: string) => boolean;
  readonly #included: (name: string) => boolean;
  /**
   * Plain whole-file counting (no -t -e -l -L -v -p): files wait here and are counted in
   * batches (open + fstat + cachestat natively, lib/cli/stat/native.ts) instead of one by one.
   */
  readonly #batched: boolean;
  readonly #native: StatNative | undefined;
  #pending: string[] = [];
  /**
   * Files found in a directory whose entry says "regular file" need no lstat of their own when
   * nothing but their inode is asked of it (no -f, -F or -I): the batch's fstat gives it, and
   * the hard-link rule is applied from there (#unstated marks them in #pending).
   */
  readonly #skipLstat: boolean;
  #unstated: boolean[] = [];

  constructor(
    readonly o: VmtouchOptions,
    /** The library's API, loaded on first use (plain counting needs only the backend). */
    readonly api: () => Promise<Pagewise>,
    readonly io: CliIO,
    readonly backend: Backend,
  ) {
    this.#ignored = o.ignore.length === 0 ? () => false : matcher(o.ignore);
    this.#included = o.include.length === 0 ? () => true : matcher(o.include);
    this.#native = nativeStat();
    this.#batched =
      this.#native !== undefined && !o.touch && !o.evict && !o.lock && !o.lockAll && !o.verbose && o.offset === 0 && o.maxLength === 0;
    this.#skipLstat = this.#batched && !o.follow && !o.singleFs && o.include.length === 0;
  }

  /** Count the files waiting for a batch (see #batched); a file the batch cannot count goes the one-by-one way. */
  async flush(): Promise<void> {
    const paths = this.#pending;
    const unstated = this.#unstated;
    this.#pending = [];
    this.#unstated = [];
    if (paths.length === 0) return;
    const stats = statPaths(this.#native as StatNative, paths, true);
    const { rows } = stats;
    for (let i = 0; i < paths.length; i++) {
      const at = i * FIELDS;
      const error = rowError(stats, i);
      if (error !== undefined) {
        if (error.syscall === 'open') this.warn(`unable to open ${paths[i]} (${strerror(error)}), skipping`);
        else await this.file(paths[i]); // fstat or cachestat failed: let the one-by-one way say what
        continue;
      }
      if (rows[at + FIELD.regular] !== 1) {
        if (unstated[i]) this.totals.files--; // no longer a regular file: vmtouch's lstat would not have counted it
        this.warn(`skipping non-regular file: ${paths[i]}`);
        continue;
      }
      if (unstated[i] && !this.o.countHardLinks) {
        // vmtouch's rule is for inodes with more than one link; an inode met twice in a walk has them.
        const key = `${rows[at + FIELD.dev]}:${rows[at + FIELD.ino]}`;
        if (this.#seen.has(key)) {
          this.totals.files--;
          continue;
        }
        this.#seen.add(key);
      }
      const size = rows[at + FIELD.size];
      if (size === 0) continue;
      if (size > this.o.maxFileSize) {
        this.warn(`file ${paths[i]} too large, skipping`);
        continue;
      }
      this.totals.pages += Math.ceil(size / this.backend.pageSize);
      this.totals.resident += rows[at + FIELD.cached];
    }
  }

  warn(text: string): void {
    if (!this.o.quiet) this.io.stderr.write(`pagewise: WARNING: ${text}\n`);
  }

  async crawl(given: string, stopped: () => boolean = () => false, entry?: fs.Dirent): Promise<void> {
    if (stopped()) return;
    let p = given;
    if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    if (this.#ignored(basename(p))) return;
    if (entry !== undefined && this.#skipLstat && entry.isFile()) {
      this.totals.files++;
      this.#unstated.push(true);
      if (this.#pending.push(p) >= CHUNK) await this.flush();
      return;
    }
    let st: fs.Stats;
    try {
      st = this.o.follow ? fs.statSync(p) : fs.lstatSync(p);
    } catch (err) {
      this.warn(`unable to stat ${p} (${strerror(err)})`);
      return;
    }
    if (st.isSymbolicLink()) {
      this.warn(`not following symbolic link ${p}`);
      return;
    }
    if (this.o.singleFs) {
      if (this.#device === undefined) this.#device = st.dev;
      else if (st.dev !== this.#device) {
        this.warn(`not recursing into separate filesystem ${p}`);
        return;
      }
    }
    if (!this.o.countHardLinks && st.nlink > 1) {
      if (this.#pending.length > 0) await this.flush(); // the inodes met before this one first
      const key = `${st.dev}:${st.ino}`;
      if (this.#seen.has(key)) return;
      this.#seen.add(key);
    }
    if (st.isDirectory()) {
      if (this.#ancestors.includes(st.ino)) {
        this.warn(`symbolic link loop detected: ${p}`);
        return;
      }
      this.totals.directories++;
      let dir: fs.Dir;
      try {
        // readdir(3) order, as vmtouch walks (fs.readdirSync sorts); entries fetched in large batches.
        dir = fs.opendirSync(p, { bufferSize: 1024 });
      } catch (err) {
        this.warn(`unable to opendir ${p} (${strerror(err)}), skipping`);
        return;
      }
      this.#ancestors.push(st.ino);
      try {
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
          if (stopped()) break;
          await this.crawl(`${p}/${entry.name}`, stopped, entry);
        }
      } finally {
        this.#ancestors.pop();
        dir.closeSync();
      }
    } else if (st.isFile()) {
      if (this.#included(basename(p))) {
        this.totals.files++;
        if (!this.#batched) await this.file(p);
        else {
          this.#unstated.push(false);
          if (this.#pending.push(p) >= CHUNK) await this.flush();
        }
      }
    } else {
      this.warn(`skipping non-regular file: ${p}`);
    }
  }

  async file(p: string): Promise<void> {
    const { o } = this;
    const pw = await this.api();
    let fd: number;
    const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;
    try {
      try {
        fd = fs.openSync(p, flags | (fs.constants.O_NOATIME ?? 0));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
        fd = fs.openSync(p, flags);
      }
    } catch (err) {
      this.warn(`unable to open ${p} (${strerror(err)}), skipping`);
      return;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) {
        this.warn(`skipping non-regular file: ${p}`); // swapped since the walk looked at it
        return;
      }
      const size = st.size;
      if (size === 0) return;
      if (size > o.maxFileSize) {
        this.warn(`file ${p} too large, skipping`);
        return;
      }
      let length: number;
      if (o.maxLength > 0 && o.offset + o.maxLength < size) length = o.maxLength;
      else if (o.offset >= size) {
        this.warn(`file ${p} smaller than offset, skipping`);
        return;
      } else length = size - o.offset;
      const pages = Math.ceil(length / pw.pageSize);
      const range = { offset: o.offset, length };
      if (o.evict) {
        this.totals.pages += pages;
        if (o.verbose) this.io.stdout.write(`Evicting ${p}\n`);
        try {
          pw.evict(fd, range);
        } catch (err) {
          this.warn(`unable to posix_fadvise file ${p} (${strerror(err)})`);
        }
        return;
      }
      let mapping: Mapping | undefined;
      if (o.touch || o.lock || o.lockAll) {
        try {
          mapping = pw.mapFile(fd, range);
        } catch (err) {
          this.warn(`unable to mmap file ${p} (${strerror(err)}), skipping`);
          return;
        }
      }
      this.totals.pages += pages;
      try {
        const vector = o.verbose ? pw.fileResidency(fd, { ...range, pages: true }).pages : undefined;
        const before = vector === undefined ? pw.fileResidency(fd, range).cached : vector.reduce((a, b) => a + (b & 1), 0);
        this.totals.resident += before;
        if (o.verbose) this.io.stdout.write(`${p}\n${vmtouchChart(vector, pages)}`);
        if (mapping !== undefined) await mapping.populate({ mode: 'read' });
        if (o.verbose) this.io.stdout.write(`${vmtouchChart(vector, pages, o.touch)}\n`);
        if (mapping !== undefined && (o.lock || o.lockAll)) {
          try {
            await mapping.lock();
          } catch (err) {
            throw new Fatal(`mlock: ${p} (${strerror(err)})`);
          }
          this.held.push({ mapping });
          mapping = undefined;
        }
      } finally {
        mapping?.close();
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  release(): void {
    for (const h of this.held) h.mapping.close();
    this.held.length = 0;
  }
}

/** The paths of a -b list: records ending in the delimiter (newline, or NUL with -0); like vmtouch, the last character of each is dropped. */
function readList(o: VmtouchOptions, crawl: Crawl): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(o.batch === '-' ? 0 : (o.batch as string), 'utf8');
  } catch (err) {
    crawl.warn(`unable to open ${o.batch} (${strerror(err)}), skipping`);
    return undefined;
  }
  const delimiter = o.nulDelimited ? '\0' : '\n';
  const records: string[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf(delimiter, at);
    const stop = end === -1 ? text.length : end + 1;
    records.push(text.slice(at, stop - 1)); // getdelim's record minus its last character
    at = stop;
  }
  return records;
}

const USAGE = `Usage: pagewise [vmtouch options] <files or directories...>
(vmtouch's command line: 'pagewise --help' lists it and the pagewise commands)
`;

/**
 * Run vmtouch's command line over `backend` (the native one); `api` loads the library's API over it;
 * `daemon.child`: this process is the background child of -d (print the ready mark once
 * locked, then nothing); `daemon.spawn` starts that child.
 */
export async function runVmtouch(
  argv: readonly string[],
  io: CliIO,
  api: () => Promise<Pagewise>,
  backend: Backend,
  daemon: { child: boolean; spawn: (args: string[], pidFile: string | undefined, quiet: boolean) => Promise<number> },
): Promise<number> {
  let o: VmtouchOptions;
  try {
    o = parseVmtouchArgs(argv, backend.pageSize);
  } catch (err) {
    if (err instanceof Usage) {
      io.stderr.write(`pagewise: ${err.message}\n${USAGE}`);
      return VMTOUCH_FAILED;
    }
    if (err instanceof Fatal) {
      io.stderr.write(`pagewise: FATAL: ${err.message}\n`);
      return VMTOUCH_FAILED;
    }
    throw err;
  }
  if (o.daemon && !daemon.child) {
    // The child does the work without -d, -w or -P; it prints its LOCKED line only with -w.
    // Its lock flag first: main() knows a vmtouch command line by its first word.
    return daemon.spawn([o.lock ? '-l' : '-L', ...o.childArgs, ...(o.wait ? [] : ['-q']), '--', ...o.paths], o.pidFile, !o.wait);
  }
  let loaded: Promise<Pagewise> | undefined;
  const crawl = new Crawl(o, () => (loaded ??= api()), io, backend);
  const locking = o.lock || o.lockAll;
  // A lock ends on a signal: listen before anything is locked or the pid file is made, so
  // that a signal at any moment releases both (the walk stops at the next file).
  const signalled = locking ? untilSignal(io) : undefined;
  let pidFile: PidFile | undefined;
  try {
    // As vmtouch: the pid file is written once everything is locked (its appearing says so);
    // what would refuse it is told before anything is locked.
    const pidFileOr = (make: (file: string) => PidFile | void): PidFile | undefined => {
      if (o.pidFile === undefined) return undefined;
      try {
        return make(o.pidFile) ?? undefined;
      } catch (err) {
        throw new Fatal((err as Error).message);
      }
    };
    pidFileOr((file) => PidFile.check(file));
    const started = process.hrtime.bigint();
    const stopped = (): boolean => signalled?.happened === true;
    if (o.batch !== undefined) for (const p of readList(o, crawl) ?? []) if (!stopped()) await crawl.crawl(p, stopped);
    for (const p of o.paths) if (!stopped()) await crawl.crawl(p, stopped);
    await crawl.flush();
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    const { totals } = crawl;
    const page = backend.pageSize;
    if (signalled !== undefined) {
      if (signalled.happened) return 0;
      pidFile = pidFileOr((file) => PidFile.create(file));
      if (!o.quiet || daemon.child) io.stdout.write(`LOCKED ${totals.pages} pages (${vmtouchSize(totals.pages * page)})\n`);
      if (daemon.child) io.stdout.write(`${READY_MARK}\n`);
      await signalled.promise;
      return 0;
    }
    if (!o.quiet) {
      let text = o.verbose ? '\n' : '';
      text += `           Files: ${totals.files}\n     Directories: ${totals.directories}\n`;
      if (o.touch) text += `   Touched Pages: ${totals.pages} (${vmtouchSize(totals.pages * page)})\n`;
      else if (o.evict) text += `   Evicted Pages: ${totals.pages} (${vmtouchSize(totals.pages * page)})\n`;
      else {
        const percent = totals.pages ? formatG((100 * totals.resident) / totals.pages, 3) + '%' : '';
        text += `  Resident Pages: ${totals.resident}/${totals.pages}  ${vmtouchSize(totals.resident * page)}/${vmtouchSize(totals.pages * page)}  ${percent}\n`;
      }
      text += `         Elapsed: ${formatG(elapsed, 5)} seconds\n`;
      io.stdout.write(text);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof Fatal)) throw err;
    io.stderr.write(`pagewise: FATAL: ${err.message}\n`);
    return VMTOUCH_FAILED;
  } finally {
    signalled?.stop();
    crawl.release();
    if (pidFile !== undefined) pidFile.release();
    if (daemon.child) removeOwnPidFile();
  }
}

/** SIGINT, SIGTERM or SIGQUIT (or io.signal) from now on: `happened`, `promise`; stop() stops listening. */
function untilSignal(io: CliIO): { happened: boolean; promise: Promise<void>; stop: () => void } {
  const signals = ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const;
  let resolve: () => void = () => {};
  const state = { happened: false, promise: new Promise<void>((r) => (resolve = r)), stop: () => {} };
  const keepAlive = setInterval(() => {}, 2 ** 30); // signal listeners alone do not keep the event loop alive
  const done = (): void => {
    state.happened = true;
    resolve();
  };
  state.stop = () => {
    clearInterval(keepAlive);
    for (const s of signals) process.off(s, done);
    io.signal?.removeEventListener('abort', done);
  };
  for (const s of signals) process.on(s, done);
  if (io.signal?.aborted) done();
  else io.signal?.addEventListener('abort', done, { once: true });
  return state;
}
