#!/usr/bin/env node
// The `pagewise` command line: page-cache tools in the spirit of vmtouch and
// util-linux fincore, built on the library's own API.
//
//   pagewise stat  <paths...>   residency (cachestat where the kernel has it)
//   pagewise touch <paths...>   read into the page cache, off the event loop
//   pagewise evict <paths...>   posix_fadvise(POSIX_FADV_DONTNEED)
//   pagewise lock  <paths...>   mmap + mlock until SIGINT / SIGTERM
//   pagewise demo               the volatile-cache-under-pressure example
//
// main() returns the exit code instead of exiting, so tests can run it in-process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Pagewise } from '../api';
import type { Backend } from '../backend';
import { loadNativeBackend } from '../native';
import { PathFilter, UsageError, parseRange, parseSize } from './args';
import {
  type CliIO,
  type CliStream,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  type Run,
  evictCommand,
  lockCommand,
  reportFailure,
  statCommand,
  statFromCounts,
  statNeedsOnlyCounts,
  touchCommand,
} from './commands';
import { DAEMON_CHILD } from './daemon';
import { collectFiles } from './files';
import { collectCounted, statCounted } from './stat/counted';
import { type NativeWalk, statNative } from './stat/native';
import { fdStream } from './output';
import { readSnapshot } from './snapshot';
import { HELP } from './help';

export type { CliIO, CliStream } from './commands';
export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './commands';

const FILE_COMMANDS = ['stat', 'touch', 'evict', 'lock'] as const;
type FileCommand = (typeof FILE_COMMANDS)[number];

/** The native addon is not available: the file commands would only see the simulator's model. */
export const EXIT_UNAVAILABLE = 69; // EX_UNAVAILABLE in sysexits.h

// vmtouch's letters name the same options here (-p -I -i -b -0 -f -F -m, and -q -v -d -P
// where the command has them); vmtouch's verbs (-t -e -l -L) are answered with a hint.
const SHARED = {
  help: { type: 'boolean', short: 'h' },
  range: { type: 'string', short: 'p' },
  include: { type: 'string', multiple: true, short: 'I' },
  exclude: { type: 'string', multiple: true, short: 'i' },
  'files-from': { type: 'string', multiple: true, short: 'b' },
  null: { type: 'boolean', short: '0' },
  follow: { type: 'boolean', short: 'f' },
  'one-file-system': { type: 'boolean', short: 'F' },
  'max-size': { type: 'string', short: 'm' },
} as const;

const OPTIONS = {
  stat: {
    ...SHARED,
    verbose: { type: 'boolean', short: 'v' },
    quiet: { type: 'boolean', short: 'q' },
    json: { type: 'boolean' },
    pages: { type: 'boolean' },
    summary: { type: 'boolean', short: 's' },
  },
  touch: { ...SHARED, verbose: { type: 'boolean', short: 'v' }, quiet: { type: 'boolean', short: 'q' }, 'no-progress': { type: 'boolean' }, from: { type: 'string' } },
  evict: { ...SHARED, verbose: { type: 'boolean', short: 'v' }, quiet: { type: 'boolean', short: 'q' } },
  lock: { ...SHARED, quiet: { type: 'boolean', short: 'q' }, daemon: { type: 'boolean', short: 'd' }, 'pid-file': { type: 'string', short: 'P' } },
  demo: { help: { type: 'boolean', short: 'h' }, limit: { type: 'string' } },
} as const;

/** vmtouch's flags that a pagewise command does not take, and what to type instead. */
const VMTOUCH_FLAGS: Record<string, string> = {
  '-t': "vmtouch's -t (touch) is 'pagewise touch <paths>' (or vmtouch's own command line: 'pagewise -t <paths>')",
  '-e': "vmtouch's -e (evict) is 'pagewise evict <paths>' (or vmtouch's own command line: 'pagewise -e <paths>')",
  '-l': "vmtouch's -l (lock) is 'pagewise lock <paths>' (or vmtouch's own command line: 'pagewise -l <paths>')",
  '-L': "vmtouch's -L (lock) is 'pagewise lock <paths>' (or vmtouch's own command line: 'pagewise -L <paths>')",
  '-d': "vmtouch's -d (daemon) is 'pagewise lock --daemon [--pid-file FILE] <paths>'",
  '-P': "vmtouch's -P (pid file) is '--pid-file FILE' of 'pagewise lock --daemon'",
  '-q': "vmtouch's -q (quiet) is '-q' of stat, touch, evict and lock",
  '-v': "vmtouch's -v is '-v' of stat (residency strips), touch and evict",
  '-w': "touch always waits until every page is read, and lock --daemon until every file is locked (vmtouch's -w is the default here)",
};

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface Values {
  help?: boolean;
  range?: string;
  include?: string[];
  exclude?: string[];
  'files-from'?: string[];
  null?: boolean;
  follow?: boolean;
  'one-file-system'?: boolean;
  'max-size'?: string;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  pages?: boolean;
  summary?: boolean;
  'no-progress'?: boolean;
  from?: string;
  daemon?: boolean;
  'pid-file'?: string;
  limit?: string;
}

/**
 * `--range -20K` would read as an option `-2...`: parseArgs refuses option values that
 * start with '-'. A value that is a dash followed by a digit is joined to --range.
 */
function joinNegativeValues(args: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') {
      joined.push(...args.slice(i));
      break;
    }
    if ((args[i] === '--range' || args[i] === '-p') && i + 1 < args.length && /^-[\d.]/.test(args[i + 1])) {
      joined.push(`--range=${args[i + 1]}`);
      i++;
    } else {
      joined.push(args[i]);
    }
  }
  return joined;
}

/** "unknown option '-t'", with the pagewise spelling when it is one of vmtouch's flags. */
function unknownOption(option: string): UsageError {
  const short = /^-[A-Za-z]/.test(option) && !option.startsWith('--') ? option.slice(0, 2) : option;
  const hint = VMTOUCH_FLAGS[short];
  return new UsageError(hint ? `unknown option '${option}': ${hint}` : `unknown option '${option}'`);
}

function parse(command: keyof typeof OPTIONS, args: string[], positionals: boolean): { values: Values; positionals: string[] } {
  try {
    const { values, positionals: rest } = parseArgs({
      args: joinNegativeValues(args),
      options: OPTIONS[command],
      allowPositionals: positionals,
      strict: true,
    });
    return { values: values as Values, positionals: rest };
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = (err as Error).message;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      // parseArgs' own text suggests '--' quoting (with an unbalanced quote): name the option instead.
      const option = /'(-[^']*)'/.exec(message)?.[1] ?? message;
      throw unknownOption(option);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(message)?.[1];
      throw new UsageError(arg === undefined ? 'unexpected argument' : `unexpected argument '${arg}'`);
    }
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError(message);
    throw err;
  }
}

/** Paths from --files-from FILE ('-' = standard input): one per line, or NUL-separated when the list has a NUL (or with -0). */
function readFileList(source: string, nul = false): string[] {
  let text: string;
  try {
    text = fs.readFileSync(source === '-' ? 0 : source, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --files-from '${source}': ${(err as Error).message}`);
  }
  const parts = nul || text.includes('\0') ? text.split('\0') : text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  return parts.filter((p) => p !== '');
}

/**
 * The native backend, or why it cannot be had. The CLI loads only what a command needs
 * (not the simulator, the arena or the cache; for a plain `stat` not even the library's
 * API): start-up time is part of every command.
 */
function nativeBackend(): { backend: Backend; reason?: undefined } | { backend?: undefined; reason: string } {
  const forced = process.env.PAGEWISE_BACKEND;
  if (forced === 'simulator') return { reason: 'PAGEWISE_BACKEND=simulator is set' };
  if (forced !== undefined && forced !== '' && forced !== 'native') return { reason: `PAGEWISE_BACKEND=${forced} is not 'native' or 'simulator'` };
  try {
    return { backend: loadNativeBackend() };
  } catch (err) {
    return { reason: (err as Error).message.replace(/^pagewise: /, '') };
  }
}

/** The library's API over the backend (loaded on first use). */
async function pagewiseOf(backend: Backend): Promise<Pagewise> {
  const { Pagewise } = await import('../api.js');
  return new Pagewise(backend);
}

function refuseOnSimulator(io: CliIO, command: FileCommand | 'vmtouch mode', json: boolean, reason: string): number {
  const message =
    `pagewise ${command}: the native addon is not available (${reason}), so pagewise cannot see or change ` +
    "this machine's page cache; the reference simulator would only report its own model.";
  const fix =
    'Install the native addon: `npm rebuild pagewise` in the project that depends on pagewise (Linux; a prebuilt ' +
    'addon ships for linux-x64, other platforms need a C++ compiler and Python), or unset PAGEWISE_BACKEND.';
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ backend: 'simulator', error: { code: 'ERR_PAGEWISE_NATIVE_UNAVAILABLE', message, reason, fix } }, null, 2)}\n`,
    );
  }
  io.stderr.write(`${message}\n${fix}\n`);
  return EXIT_UNAVAILABLE;
}

/**
 * vmtouch's command line (lib/cli/vmtouch.ts): the first word is an option, or a path that
 * is not a command's name. A word that is neither (no '/', nothing by that name) stays an
 * unknown command: `pagewise stats` is a typo, not a file to look for.
 */
function isVmtouchCommandLine(first: string): boolean {
  if (first === 'demo' || (FILE_COMMANDS as readonly string[]).includes(first)) return false;
  if (first.startsWith('-') || first.includes('/')) return true;
  try {
    fs.lstatSync(first);
    return true;
  } catch {
    return false;
  }
}

async function vmtouchMode(argv: string[], io: CliIO): Promise<number> {
  const { backend, reason } = nativeBackend();
  if (backend === undefined) return refuseOnSimulator(io, 'vmtouch mode', false, reason);
  const [{ runVmtouch }, { daemonize }] = await Promise.all([import('./vmtouch.js'), import('./daemon.js')]);
  return await runVmtouch(argv, io, () => pagewiseOf(backend), backend, {
    child: process.env[DAEMON_CHILD] === '1',
    spawn: (args, pidFile, quiet) => daemonize(io, args, pidFile, quiet, true),
  });
}

/**
 * Run the CLI with `argv` (the arguments after the script: process.argv.slice(2))
 * and return the exit code. Output goes to io (process.stdout / process.stderr by default).
 */
export async function main(argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  let usageFor: string = 'main';
  try {
    if (command === undefined) {
      io.stderr.write(HELP.main);
      return EXIT_USAGE;
    }
    if ((command === '-h' && rest.length === 0) || command === '--help') {
      io.stdout.write(HELP.main);
      return EXIT_OK;
    }
    if (command === '--version' || command === '-V') {
      io.stdout.write(`${version()}\n`);
      return EXIT_OK;
    }
    if (command === 'help') {
      const topic = rest[0] ?? 'main';
      if (rest.length > 1 || !(topic in HELP)) throw new UsageError(`unknown command '${topic}'`);
      io.stdout.write(HELP[topic]);
      return EXIT_OK;
    }
    if (command.startsWith('--')) {
      // vmtouch has no long options: this is a pagewise option before its command.
      const e = unknownOption(command);
      throw new UsageError(`${e.message} (the command comes first)`);
    }
    if (isVmtouchCommandLine(command)) return await vmtouchMode(argv, io);
    if (command === 'demo') {
      usageFor = 'demo';
      const { values } = parse('demo', rest, false);
      if (values.help) {
        io.stdout.write(HELP.demo);
        return EXIT_OK;
      }
      let limitMiB: number | undefined;
      if (values.limit !== undefined) {
        const bytes = parseSize(values.limit, '--limit');
        if (bytes === 0 || bytes % 2 ** 20 !== 0) throw new UsageError(`invalid --limit '${values.limit}': expected a whole number of MiB (e.g. 256M)`);
        limitMiB = bytes / 2 ** 20;
      }
      const { runDemo } = await import('./demo.js');
      return await runDemo({ limitMiB, log: (line: string) => void io.stdout.write(`${line}\n`) });
    }
    if (!(FILE_COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command '${command}'`);
    const name = command as FileCommand;
    usageFor = name;
    const { values: v, positionals } = parse(name, rest, true);
    if (v.help) {
      io.stdout.write(HELP[name]);
      return EXIT_OK;
    }
    const range = v.range === undefined ? undefined : parseRange(v.range);
    const maxSize = v['max-size'] === undefined ? undefined : parseSize(v['max-size'], '--max-size');
    for (const g of [...(v.include ?? []), ...(v.exclude ?? [])]) {
      if (g === '') throw new UsageError('empty --include / --exclude pattern');
    }
    const filter = new PathFilter(v.include, v.exclude);
    if (v.pages && !v.json) throw new UsageError('--pages goes with --json (it adds each file\'s resident page runs: a snapshot for touch --from)');
    if (v['pid-file'] !== undefined && !v.daemon) throw new UsageError('--pid-file goes with --daemon');
    if (name === 'stat' && v.quiet) {
      if (v.json || v.verbose) throw new UsageError(`-q prints nothing but errors: it does not go with ${v.json ? '--json' : '-v'}`);
      io = { ...io, stdout: { write: () => true } }; // stat -q: only errors (and the exit status) tell
    }
    if (v.from !== undefined && (positionals.length > 0 || v['files-from'] !== undefined)) {
      throw new UsageError('--from takes its files from the snapshot: give no paths and no --files-from');
    }
    const paths = [...positionals];
    for (const list of v['files-from'] ?? []) paths.push(...readFileList(list, v.null === true));
    if (paths.length === 0 && v.from === undefined) throw new UsageError('no paths given');
    const { backend, reason } = nativeBackend();
    if (backend === undefined) return refuseOnSimulator(io, name, v.json === true, reason);
    if (v.daemon) return await (await import('./daemon.js')).daemonize(io, rest, v['pid-file'], v.quiet === true);

    // Whole-file stat: answered from the native batch's counts, with no object per file, when it can be.
    const walked = new Map<string, NativeWalk>();
    if (name === 'stat' && range === undefined && v.verbose !== true && v.pages !== true) {
      const options = { follow: v.follow === true, oneFileSystem: v['one-file-system'] === true, maxSize };
      const counted = collectCounted(paths, filter, statNative(), options, walked);
      if (counted !== undefined) return statCounted(io, statNative(), counted, { json: v.json === true, summaryOnly: v.summary === true });
    }
    const snapshot = v.from === undefined ? undefined : readSnapshot(v.from);
    const collected = collectFiles(snapshot ? snapshot.files.map((f) => f.path) : paths, filter, statNative(), {
      follow: v.follow === true,
      oneFileSystem: v['one-file-system'] === true,
      maxSize,
      cachestat: name === 'stat' && range === undefined && v.verbose !== true && v.pages !== true,
      walked,
    });
    for (const f of collected.failures) reportFailure(io, f);
    const common = {
      io,
      files: collected.files,
      directories: collected.directories,
      failures: collected.failures,
      range,
      summaryOnly: v.summary === true,
      skippedLarge: collected.skippedLarge,
      skippedOtherFs: collected.skippedOtherFs,
    };
    if (name === 'stat' && statNeedsOnlyCounts(collected.files, range, v.verbose === true, v.pages === true)) {
      return statFromCounts({ ...common, pageSize: backend.pageSize, kind: backend.kind }, v.json === true);
    }
    const run: Run = {
      ...common,
      pw: await pagewiseOf(backend),
      verbose: v.verbose === true,
      quiet: v.quiet === true,
    };
    switch (name) {
      case 'stat':
        return statCommand(run, v.json === true, v.pages === true);
      case 'touch':
        return await touchCommand(run, v['no-progress'] !== true, snapshot);
      case 'evict':
        return evictCommand(run);
      case 'lock':
        return await lockCommand(run, process.env[DAEMON_CHILD] === '1');
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const prefix = usageFor === 'main' ? 'pagewise' : `pagewise ${usageFor}`;
      const helpHint = usageFor === 'main' ? 'pagewise --help' : `pagewise ${usageFor} --help`;
      io.stderr.write(`${prefix}: ${err.message}\nTry '${helpHint}'.\n`);
      return EXIT_USAGE;
    }
    const e = err as Error;
    io.stderr.write(`pagewise: ${e?.stack ?? String(err)}\n`);
    return EXIT_FAILED;
  }
}

if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) {
  const argv = process.argv.slice(2);
  // stat writes through the descriptors (lib/cli/output.ts): start-up time is most of a
  // short stat. The other commands (progress bars, daemons) use Node's streams.
  const io: CliIO =
    argv[0] === 'stat'
      ? { stdout: fdStream(1, () => process.stdout), stderr: fdStream(2, () => process.stderr) }
      : { stdout: process.stdout, stderr: process.stderr };
  if (argv[0] !== 'stat') {
    // `pagewise touch -v dir | head`: a closed pipe ends the output, not with a stack trace.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  main(argv, io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      io.stderr.write(`pagewise: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT_FAILED;
    },
  );
}
