// `pagewise lock`: map files and mlock them until SIGINT / SIGTERM (or the caller's
// AbortSignal); in the --daemon child, remove the pid file on the way out.
import * as fs from 'node:fs';
import type { Mapping } from '../../mapping';
import { formatBytes } from '../args';
import { READY_MARK, removeOwnPidFile } from '../daemon';
import { failureOf } from '../files';
import { EXIT_FAILED, EXIT_OK, type Run, alignedRange, errorCount, openRegular, out, plural, reportFailure, showPath } from '../run';

/** RLIMIT_MEMLOCK (soft) from /proc/self/limits: bytes, Infinity, or undefined if unknown. */
export function memlockLimit(): number | undefined {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max locked memory'));
    const soft = line?.slice('Max locked memory'.length).trim().split(/\s+/)[0];
    if (soft === undefined) return undefined;
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return undefined;
  }
}

function lockHint(code: string | undefined): string {
  const limit = memlockLimit();
  const shown = limit === undefined ? 'unknown' : limit === Infinity ? 'unlimited' : formatBytes(limit);
  switch (code) {
    case 'EPERM':
      return `not permitted to lock memory (RLIMIT_MEMLOCK ${shown}); raise \`ulimit -l\` or run with CAP_IPC_LOCK`;
    case 'ENOMEM':
      return `over the locked-memory limit (RLIMIT_MEMLOCK ${shown}) or out of memory; raise \`ulimit -l\` or run with CAP_IPC_LOCK`;
    case 'EAGAIN':
      return 'some pages could not be locked (EAGAIN); try again, or free memory';
    default:
      return '';
  }
}

export async function lockCommand(run: Run, daemonChild = false): Promise<number> {
  const { pw, io } = run;
  const held: Array<{ path: string; mapping: Mapping; locked: boolean }> = [];
  let stopping = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    wake();
  };
  // Listen before locking: a signal while mlock runs still ends cleanly.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  // Signal listeners do not keep the event loop alive; this does, until stopped.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  let lockedBytes = 0;
  try {
    for (const target of run.files) {
      if (stopping) break;
      let mapping: Mapping | undefined;
      try {
        const { fd, size } = openRegular(target.path);
        let length: number;
        try {
          const range = alignedRange(run, size);
          length = range.length;
          // Mapping.lock() locks the file's page-cache pages, not private copies. (The mapping keeps the file.)
          if (length > 0) mapping = pw.mapFile(fd, range);
        } finally {
          fs.closeSync(fd);
        }
        if (mapping === undefined) {
          if (!run.quiet) out(run, `skipped ${showPath(target.path)} (nothing to lock: empty file or range)`);
          continue;
        }
        const entry = { path: target.path, mapping, locked: false };
        held.push(entry);
        // A signal does not wait for mlock of a large file: stop waiting, and close (below) abandons it.
        const done = await Promise.race([mapping.lock().then(() => true), stopped.then(() => false)]);
        if (!done || stopping) break;
        entry.locked = true;
        lockedBytes += length;
        if (!run.quiet) out(run, `locked ${showPath(target.path)} (${formatBytes(length)})`);
      } catch (err) {
        if (stopping) break;
        const code = (err as { code?: string }).code;
        const hint = lockHint(code);
        const f = failureOf(target.path, err);
        if (hint) f.reason = `cannot lock: ${hint}`;
        run.failures.push(f);
        reportFailure(io, f);
        const last = held[held.length - 1];
        if (last?.mapping === mapping) held.pop();
        mapping?.close();
      }
    }
    const count = held.filter((h) => h.locked).length;
    if (!stopping) {
      if (count === 0) {
        out(run, `nothing locked${errorCount(run)}`);
        return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
      }
      if (!run.quiet || daemonChild) out(
        run,
        `locked ${plural(count, 'file')}, ${formatBytes(lockedBytes)}` +
          (run.failures.length > 0 ? ` (${plural(run.failures.length, 'error')})` : '') +
          `; ${READY_MARK} (Ctrl-C) to unlock and exit`,
      );
      // The daemon's parent has what it needs now and stops reading: write nothing more.
      if (daemonChild) run.quiet = true;
      await stopped;
    }
    if (!run.quiet) out(run, `unlocking ${plural(count, 'file')}`);
    return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
  } finally {
    for (const h of held) {
      try {
        if (h.locked && !h.mapping.closed) h.mapping.unlock();
      } catch {
        // munlock cannot fail on a live mapping; unmapping unlocks anyway.
      }
      h.mapping.close();
    }
    clearInterval(keepAlive);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (daemonChild) removeOwnPidFile();
    io.signal?.removeEventListener('abort', stop);
  }
}
