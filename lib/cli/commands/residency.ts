// Residency of an open file as the CLI asks for it: the library's fileResidency, with a
// clear failure where the kernel refuses (cachestat) or would make the answer up (mincore).
import * as fs from 'node:fs';
import type { FileResidency } from '../../api';
import type { Run } from '../run';

/**
 * Whether the kernel tells this process the truth about a file's residency:
 * cachestat(2) refuses (EPERM) and mincore(2) reports every page as resident
 * for files the caller can neither write nor own (Linux 5.0+ / 6.x hardening
 * against page-cache side channels). Root passes both checks.
 */
export function canWriteOrOwn(file: string): boolean {
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : -1;
  if (euid === 0) return true;
  if (fs.statSync(file).uid === euid) return true;
  try {
    fs.accessSync(file, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const HIDDEN =
  'the kernel reports page-cache residency only for files you own or can write ' +
  '(cachestat refuses; mincore would claim every page resident): run as the owner or root';

/** fileResidency of an open file, with a clear failure instead of an EPERM or an answer the kernel made up. */
export function residency(run: Run, fd: number, file: string, range: { offset: number; length: number } | undefined, pages = false): FileResidency {
  let r: FileResidency;
  try {
    r = range === undefined && !pages ? run.pw.fileResidency(fd) : run.pw.fileResidency(fd, { ...range, pages });
  } catch (err) {
    const e = err as { code?: string; syscall?: string; message: string };
    if (e.code === 'EPERM' && e.syscall === 'cachestat') e.message = HIDDEN;
    throw err;
  }
  if (r.source === 'mincore' && !canWriteOrOwn(file)) {
    throw Object.assign(new Error(HIDDEN), { code: 'EPERM_RESIDENCY' });
  }
  return r;
}
