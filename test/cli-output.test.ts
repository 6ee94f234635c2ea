// `pagewise stat` writes to its descriptors itself (lib/cli/output.ts, native/cli/stat_text.cc).
// A stdout in non-blocking mode (O_NONBLOCK belongs to the open file, so whoever shares the
// pipe, socket or terminal may set it: a shell job, a supervisor, another Node process)
// refuses writes with EAGAIN while the reader lags: the whole output must still arrive, in
// order, with exit code 0. (Node's own spawn makes a child's stdio blocking, so the test
// starts pagewise through python3, which sets O_NONBLOCK and execs.)
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onKernel } from './helpers';

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const haveDist = fs.existsSync(CLI);
// Made when a test first needs it: where every test here is skipped (the simulator project) no
// hook runs, and a directory made when the file loads would be left behind.
let root: string | undefined;
const tmpRoot = (): string => (root ??= fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-cli-output-')));
afterAll(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

// System calls a writer sleeps in while its pipe is full: poll, ppoll (the native writer),
// epoll_wait, epoll_pwait, epoll_pwait2 (Node's stream, after the fallback).
const WAITING = new Set([7, 271, 232, 281, 441]);

/** The system call the process's main thread is blocked in, or undefined (running, gone, unreadable). */
function blockedIn(pid: number): number | undefined {
  try {
    const first = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0];
    return /^\d+$/.test(first) ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run `pagewise ARGS` with a non-blocking stdout (the socket this test reads), read nothing
 * until pagewise waits for it to take more, then read it all.
 */
async function runBehindSlowReader(args: string[]): Promise<{ stdout: string; code: number | null; sawWait: boolean; stderr: string }> {
  const exec = [
    'import fcntl, os, sys',
    'fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)',
    'os.execv(sys.argv[1], sys.argv[1:])',
  ].join('\n');
  const env = { ...process.env, PAGEWISE_BACKEND: 'native' };
  const child: ChildProcess = spawn('python3', ['-c', exec, process.execPath, CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = child.stdout!;
  stdout.pause();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Bounded wait for the condition: pagewise started, then sleeps on its full stdout.
  let sawWait = false;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const call = blockedIn(child.pid!); // python3 execs: the same process is pagewise

    if (call !== undefined && WAITING.has(call)) {
      sawWait = true;
      break;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const chunks: Buffer[] = [];
  stdout.on('data', (d: Buffer) => chunks.push(d));
  stdout.resume();
  const code = await exited;
  return { stdout: Buffer.concat(chunks).toString('utf8'), code, sawWait, stderr };
}

const havePython = spawnSync('python3', ['-c', 'import fcntl'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!haveDist || !onKernel || !havePython || !fs.existsSync('/proc/self/syscall'))(
  'a non-blocking stdout that refuses writes (EAGAIN) (native only: stat refuses the simulator; needs python3 and /proc/PID/syscall)',
  () => {
    // Made before the tests, not while they are collected: a skipped describe's body still runs.
    let d = '';
    beforeAll(() => {
      d = path.join(tmpRoot(), 'tree');
      // ~6,000 rows: several hundred KiB, far more than the pipe and the reader's buffer hold.
      for (let i = 0; i < 60; i++) {
        fs.mkdirSync(path.join(d, `s${i}`), { recursive: true });
        for (let j = 0; j < 100; j++) fs.writeFileSync(path.join(d, `s${i}`, `f${j}`), j % 3 === 0 ? '' : 'x'.repeat(j * 50));
      }
    });
    const env = { ...process.env, PAGEWISE_BACKEND: 'native' };
    const reference = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, maxBuffer: 256 * 2 ** 20 });

    // The table and --json: written by native/cli/stat_text.cc, which waits (poll) and goes on.
    // -v: written by lib/cli/output.ts, which hands the rest to Node's stream.
    for (const flags of [[], ['--json'], ['-v']]) {
      it(`pagewise ${['stat', ...flags].join(' ')} DIR: the whole output, in order, exit code 0`, async () => {
        const args = ['stat', ...flags, d];
        const expected = reference(args);
        expect(expected.status).toBe(0);
        expect(expected.stdout.length).toBeGreaterThan(300_000);
        const slow = await runBehindSlowReader(args);
        expect(slow.sawWait, `pagewise never waited on its stdout (stderr: ${slow.stderr})`).toBe(true);
        expect(slow.code, slow.stderr).toBe(0);
        expect(slow.stdout.length).toBe(expected.stdout.length);
        expect(slow.stdout).toBe(expected.stdout);
      }, 120_000);
    }
  },
);
