// `pagewise lock --daemon`: lock in a detached child process and return once the files
// are locked (vmtouch -d). The child runs `pagewise lock` with the same arguments in its
// own session, holds the locks until SIGTERM / SIGINT, and removes its pid file on exit.
// The pid file is made before the child starts (holding this process's pid, so a second
// `lock --daemon` meanwhile sees it in use), safely (lib/cli/pid-file.ts), and gets the
// child's pid once the child is ready.
import * as path from 'node:path';
import { type CliIO, EXIT_FAILED, EXIT_OK } from './run';
import { PidFile, releasePidFile } from './pid-file';

/** Set in the child's environment: it is the daemon (write nothing once locked; own the pid file). */
export const DAEMON_CHILD = 'PAGEWISE_LOCK_DAEMON';
export const DAEMON_PID_FILE = 'PAGEWISE_LOCK_PID_FILE';
/** The identity (PidFile.id) of the pid file made for the child: it removes that file only. */
export const DAEMON_PID_FILE_ID = 'PAGEWISE_LOCK_PID_FILE_ID';

/** The line `lock` prints once everything is locked: the child is ready. */
export const READY_MARK = 'waiting for SIGINT or SIGTERM';

function cliScript(): string {
  // Under the test runner this module is TypeScript: run the built CLI.
  return __filename.endsWith('.ts') ? path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js') : path.join(__dirname, 'main.js');
}

/**
 * `args`: lock's arguments (--daemon and --pid-file are taken out for the child), or with
 * `vmtouch`, the child's whole vmtouch-mode command line (lib/cli/vmtouch.ts; -d, -w, -P
 * taken out already). In vmtouch mode the child's LOCKED line is all that is printed, and
 * warnings do not change the exit status (vmtouch's rule).
 */
export async function daemonize(io: CliIO, args: readonly string[], pidFile: string | undefined, quiet: boolean, vmtouch = false): Promise<number> {
  const childArgs = vmtouch
    ? [...args]
    : ['lock', ...args.filter((a, i) => a !== '--daemon' && a !== '--pid-file' && args[i - 1] !== '--pid-file' && !a.startsWith('--pid-file='))];
  const pidPath = pidFile === undefined ? undefined : path.resolve(pidFile);
  let claim: PidFile | undefined;
  if (pidPath !== undefined) {
    try {
      claim = PidFile.create(pidPath);
    } catch (err) {
      io.stderr.write(vmtouch ? `pagewise: FATAL: ${(err as Error).message}\n` : `pagewise lock: ${(err as Error).message}\n`);
      return EXIT_FAILED;
    }
  }
  const { spawn } = await import('node:child_process'); // only here: keeps the other commands' start-up small
  const child = spawn(process.execPath, [cliScript(), ...childArgs], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, [DAEMON_CHILD]: '1', ...(claim === undefined ? {} : { [DAEMON_PID_FILE]: claim.path, [DAEMON_PID_FILE_ID]: claim.id }) },
  });
  let stdout = '';
  let errors = 0;
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    errors += d.split('\n').filter((l) => l.startsWith('pagewise: ') && !(vmtouch && l.startsWith('pagewise: WARNING: '))).length;
    io.stderr.write(d);
  });
  const outcome = await new Promise<{ ready: boolean; code: number | null }>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.includes(READY_MARK)) resolve({ ready: true, code: null });
    });
    child.on('exit', (code) => resolve({ ready: false, code }));
    child.on('error', () => resolve({ ready: false, code: EXIT_FAILED }));
  });
  if (!outcome.ready) {
    claim?.release();
    if (!quiet) io.stdout.write(stdout);
    return outcome.code ?? EXIT_FAILED;
  }
  if (claim !== undefined) {
    claim.rewrite(child.pid ?? 0);
    claim.close();
  }
  // The child writes nothing more: let it go.
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  if (vmtouch) {
    if (!quiet) for (const l of stdout.split('\n')) if (l !== '' && !l.includes(READY_MARK)) io.stdout.write(`${l}\n`);
    return EXIT_OK;
  }
  if (!quiet) {
    const locked = stdout.split('\n').filter((l) => !l.includes(READY_MARK) && l !== '');
    for (const l of locked) io.stdout.write(`${l}\n`);
    const summary = stdout.split('\n').find((l) => l.includes(READY_MARK)) ?? '';
    io.stdout.write(
      `${summary.replace(/; waiting for SIGINT or SIGTERM.*$/, '')}; held by process ${child.pid} in the background` +
        `${pidPath === undefined ? '' : ` (pid file ${pidPath})`}: \`kill ${child.pid}\` unlocks\n`,
    );
  }
  return errors > 0 ? EXIT_FAILED : EXIT_OK;
}

/** In the daemon child, on exit: remove the pid file if it is still the one made for it and names this process. */
export function removeOwnPidFile(): void {
  const file = process.env[DAEMON_PID_FILE];
  const id = process.env[DAEMON_PID_FILE_ID];
  if (file === undefined || id === undefined) return;
  releasePidFile(file, id, process.pid);
}
