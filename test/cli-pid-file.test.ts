// The pid file of `pagewise lock --daemon --pid-file` (issue 27): never written through a
// symbolic link, never into a FIFO or directory, never over a running daemon's file or a
// file that is not a pid file; a stale one is replaced; the daemon removes only its own.
// The PidFile unit runs in both projects (it needs no backend); the daemon runs on the kernel.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PidFile, parsePid, releasePidFile } from '../lib/cli/pid-file';
import { PAGE, onKernel, pattern } from './helpers';

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const haveDist = fs.existsSync(CLI);
if (!haveDist) console.warn('test/cli-pid-file.test.ts: dist/cli/main.js is missing (run `npm test`, which builds first): daemon tests are SKIPPED');

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-pid-file-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let serial = 0;
const fresh = (name: string): string => path.join(root, `${name}-${serial++}`);

/** A target that must never change: its bytes and its inode's times are compared after. */
function precious(): { file: string; check: () => void } {
  const file = fresh('precious');
  fs.writeFileSync(file, 'precious\n');
  const before = fs.statSync(file);
  return {
    file,
    check: () => {
      expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');
      const after = fs.statSync(file);
      expect(after.ino).toBe(before.ino);
      expect(after.mtimeMs).toBe(before.mtimeMs);
    },
  };
}

/** The pid of a process that has exited (reaped), for a stale pid file. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  return pid;
}

function refusedWith(fn: () => unknown, code: string, file: string): Error {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected an error').toBeInstanceOf(Error);
  const e = caught as Error & { code: string; path: string };
  expect(e.code).toBe(code);
  expect(e.path).toBe(file);
  expect(e.message).toContain(`'${file}'`);
  return e;
}

describe('PidFile (both projects: plain files)', () => {
  it('creates a new file with the pid, mode 0644 whatever the umask, and removes it on release', () => {
    const file = fresh('new.pid');
    const old = process.umask(0o077);
    let p: PidFile;
    try {
      p = PidFile.create(file);
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    p.rewrite(42);
    expect(fs.readFileSync(file, 'utf8')).toBe('42\n');
    p.rewrite(1234567);
    expect(fs.readFileSync(file, 'utf8')).toBe('1234567\n');
    expect(p.release()).toBe(true);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses a symbolic link to a file, to a directory and a dangling one: nothing is written through it', () => {
    const target = precious();
    const toFile = fresh('link-file.pid');
    fs.symlinkSync(target.file, toFile);
    refusedWith(() => PidFile.create(toFile), 'ERR_PID_FILE_SYMLINK', toFile);
    target.check();

    const dir = fresh('dir');
    fs.mkdirSync(dir);
    const toDir = fresh('link-dir.pid');
    fs.symlinkSync(dir, toDir);
    refusedWith(() => PidFile.create(toDir), 'ERR_PID_FILE_SYMLINK', toDir);
    expect(fs.readdirSync(dir)).toEqual([]);

    const nowhere = fresh('nowhere');
    const dangling = fresh('link-dangling.pid');
    fs.symlinkSync(nowhere, dangling);
    refusedWith(() => PidFile.create(dangling), 'ERR_PID_FILE_SYMLINK', dangling);
    expect(fs.existsSync(nowhere)).toBe(false); // O_CREAT did not create the link's target
    expect(fs.lstatSync(toFile).isSymbolicLink()).toBe(true);
  });

  it('refuses a FIFO (without blocking on it) and a directory', () => {
    const fifo = fresh('fifo.pid');
    execFileSync('mkfifo', [fifo]);
    const e = refusedWith(() => PidFile.create(fifo), 'ERR_PID_FILE_NOT_REGULAR', fifo);
    expect(e.message).toContain('a FIFO');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    const dir = fresh('dir.pid');
    fs.mkdirSync(dir);
    expect(refusedWith(() => PidFile.create(dir), 'ERR_PID_FILE_NOT_REGULAR', dir).message).toContain('a directory');
  });

  it('refuses the pid file of a running process, and a file that holds no pid', () => {
    const live = fresh('live.pid');
    fs.writeFileSync(live, `${process.ppid}\n`);
    const e = refusedWith(() => PidFile.create(live), 'ERR_PID_FILE_IN_USE', live) as Error & { pid: number };
    expect(e.pid).toBe(process.ppid);
    expect(e.message).toContain(`process ${process.ppid}`);
    expect(fs.readFileSync(live, 'utf8')).toBe(`${process.ppid}\n`);

    for (const text of ['', 'precious data\n', '-5\n', '0\n']) {
      const file = fresh('not-pid');
      fs.writeFileSync(file, text);
      refusedWith(() => PidFile.create(file), 'ERR_PID_FILE_NOT_PID', file);
      expect(fs.readFileSync(file, 'utf8')).toBe(text);
    }
  });

  it('replaces a stale pid file (a new inode renamed over the name) and leaves no temporary file', () => {
    const file = fresh('stale.pid');
    const dead = deadPid();
    fs.writeFileSync(file, `${dead}\n`);
    // A hard link to the stale file sees whether it was written through (it must not be).
    const witness = fresh('witness');
    fs.linkSync(file, witness);
    const p = PidFile.create(file);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
    expect(fs.readFileSync(witness, 'utf8')).toBe(`${dead}\n`);
    expect(fs.statSync(file).ino).not.toBe(fs.statSync(witness).ino);
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(p.release()).toBe(true);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('release removes only the file it made: not one replaced meanwhile, not a symlink put in its place, not another pid', () => {
    const file = fresh('replaced.pid');
    const p = PidFile.create(file);
    const id = p.id;
    p.close();
    // Replaced by another file that even holds the same pid: a different inode, left alone.
    fs.rmSync(file);
    fs.writeFileSync(file, `${process.pid}\n`);
    expect(releasePidFile(file, id, process.pid)).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${process.pid}\n`);
    fs.rmSync(file);

    // A symlink in its place: not followed, not removed.
    const target = precious();
    fs.symlinkSync(target.file, file);
    expect(releasePidFile(file, id, process.pid)).toBe(false);
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
    target.check();
    fs.rmSync(file);

    // Same inode, another pid written into it: left alone.
    const q = PidFile.create(file);
    q.rewrite(process.pid + 1);
    expect(releasePidFile(file, q.id, process.pid)).toBe(false);
    expect(fs.existsSync(file)).toBe(true);
    expect(q.release()).toBe(true);
  });

  it('names the path in system errors (a missing directory) and keeps the errno code', () => {
    const file = path.join(fresh('missing-dir'), 'x.pid');
    const e = refusedWith(() => PidFile.create(file), 'ENOENT', file) as Error & { syscall?: string };
    expect(e.syscall).toBe('open');
  });

  it('check() refuses what create() would refuse, and makes nothing', () => {
    const target = precious();
    const link = fresh('check-link.pid');
    fs.symlinkSync(target.file, link);
    refusedWith(() => PidFile.check(link), 'ERR_PID_FILE_SYMLINK', link);
    const absent = fresh('check-absent.pid');
    PidFile.check(absent);
    expect(fs.existsSync(absent)).toBe(false);
    const inMissingDir = path.join(fresh('no-dir'), 'x.pid');
    refusedWith(() => PidFile.check(inMissingDir), 'ENOENT', inMissingDir);
    target.check();
  });

  it('parsePid: the first line, a positive decimal', () => {
    expect(parsePid('123\n')).toBe(123);
    expect(parsePid(' 77 \nmore')).toBe(77);
    expect(parsePid('12a\n')).toBeUndefined();
    expect(parsePid('')).toBeUndefined();
    expect(parsePid('99999999999\n')).toBeUndefined();
  });
});

function spawnCli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, PAGEWISE_BACKEND: 'native' }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 500 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((res) => setTimeout(res, 20));
  expect(fs.existsSync(`/proc/${pid}`), `process ${pid} still runs`).toBe(false);
}

function dataFile(): string {
  const f = fresh('data');
  fs.writeFileSync(f, pattern(16 * PAGE));
  return f;
}

describe.skipIf(!onKernel || !haveDist)('lock --daemon --pid-file (native only: lock needs the kernel)', () => {
  it('refuses a symlink (to a file, to a directory), a FIFO, and a live pid file before any daemon starts: exit 1, the path named', () => {
    const f = dataFile();
    const target = precious();
    const dir = fresh('dir');
    fs.mkdirSync(dir);
    const cases: Array<[string, string]> = [];
    const toFile = fresh('pid');
    fs.symlinkSync(target.file, toFile);
    cases.push([toFile, 'is a symbolic link']);
    const toDir = fresh('pid');
    fs.symlinkSync(dir, toDir);
    cases.push([toDir, 'is a symbolic link']);
    const fifo = fresh('pid');
    execFileSync('mkfifo', [fifo]);
    cases.push([fifo, 'is a FIFO']);
    const live = fresh('pid');
    fs.writeFileSync(live, `${process.pid}\n`);
    cases.push([live, `process ${process.pid}`]);
    for (const [pidFile, reason] of cases) {
      const r = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', f]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`pagewise lock: pid file '${pidFile}'`);
      expect(r.stderr).toContain(reason);
      expect(r.stdout).not.toContain('held by process');
    }
    target.check();
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.readFileSync(live, 'utf8')).toBe(`${process.pid}\n`);
  });

  it("vmtouch's -P (pagewise -l -P / -d -l -P) refuses a symbolic link before locking anything: FATAL, exit 1, the target untouched", () => {
    const f = dataFile();
    const target = precious();
    for (const flags of [['-l'], ['-d', '-l'], ['-d', '-w', '-L']]) {
      const link = fresh('vm-link.pid');
      fs.symlinkSync(target.file, link);
      const r = spawnCli([...flags, '-P', link, f]);
      expect(r.code, flags.join(' ')).toBe(1);
      expect(r.stderr, flags.join(' ')).toContain(`pagewise: FATAL: pid file '${link}' is a symbolic link`);
      expect(r.stdout, flags.join(' ')).not.toContain('LOCKED');
    }
    target.check();
  });

  it('replaces a stale pid file; a pid file replaced while the daemon runs is left alone when it exits', async () => {
    const f = dataFile();
    const pidFile = fresh('stale.pid');
    fs.writeFileSync(pidFile, `${deadPid()}\n`);
    const r = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', f]);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
    expect(fs.statSync(pidFile).mode & 0o777).toBe(0o644);
    // While it runs, a second daemon on the same pid file is refused.
    const second = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', f]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`is in use: process ${pid}`);
    // Someone replaces the pid file (even with the daemon's own pid): a different file, not the daemon's to remove.
    fs.rmSync(pidFile);
    fs.writeFileSync(pidFile, `${pid}\n`);
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    expect(fs.readFileSync(pidFile, 'utf8')).toBe(`${pid}\n`);
  });

  it('a symlink put in place of the pid file while the daemon runs: not followed, not removed', async () => {
    const f = dataFile();
    const pidFile = fresh('swap.pid');
    const r = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', f]);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    const target = precious();
    fs.rmSync(pidFile);
    fs.symlinkSync(target.file, pidFile);
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    expect(fs.lstatSync(pidFile).isSymbolicLink()).toBe(true);
    target.check();
  });

  it('the daemon removes its own pid file on SIGTERM; a daemon that cannot start removes the file made for it', async () => {
    const f = dataFile();
    const pidFile = fresh('own.pid');
    const r = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', f]);
    expect(r.code, r.stderr).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    expect(fs.existsSync(pidFile)).toBe(false);

    const failed = spawnCli(['lock', '--daemon', '--pid-file', pidFile, '-q', fresh('missing')]);
    expect(failed.code).toBe(1);
    expect(fs.existsSync(pidFile)).toBe(false);
  });
});
