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
import { pagewise } from '../index';
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
  touchCommand,
} from './commands';
import { collectFiles } from './files';
import { runDemo } from './demo';
import { HELP } from './help';

export type { CliIO, CliStream } from './commands';
export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './commands';

const FILE_COMMANDS = ['stat', 'touch', 'evict', 'lock'] as const;
type FileCommand = (typeof FILE_COMMANDS)[number];

const SHARED = {
  help: { type: 'boolean', short: 'h' },
  range: { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
} as const;

const OPTIONS = {
  stat: { ...SHARED, verbose: { type: 'boolean', short: 'v' }, json: { type: 'boolean' } },
  touch: { ...SHARED, verbose: { type: 'boolean', short: 'v' }, 'no-progress': { type: 'boolean' } },
  evict: { ...SHARED, verbose: { type: 'boolean', short: 'v' } },
  lock: { ...SHARED },
  demo: { help: { type: 'boolean', short: 'h' }, limit: { type: 'string' } },
} as const;

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
  verbose?: boolean;
  json?: boolean;
  'no-progress'?: boolean;
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
    if (args[i] === '--range' && i + 1 < args.length && /^-[\d.]/.test(args[i + 1])) {
      joined.push(`--range=${args[i + 1]}`);
      i++;
    } else {
      joined.push(args[i]);
    }
  }
  return joined;
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
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
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
    if (command === '-h' || command === '--help') {
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
    if (command.startsWith('-')) throw new UsageError(`unknown option '${command}' (the command comes first)`);
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
    if (positionals.length === 0) throw new UsageError('no paths given');
    const range = v.range === undefined ? undefined : parseRange(v.range);
    for (const g of [...(v.include ?? []), ...(v.exclude ?? [])]) {
      if (g === '') throw new UsageError('empty --include / --exclude pattern');
    }
    const filter = new PathFilter(v.include, v.exclude);
    const collected = collectFiles(positionals, filter);
    for (const f of collected.failures) reportFailure(io, f);
    const run: Run = {
      pw: pagewise,
      io,
      files: collected.files,
      directories: collected.directories,
      failures: collected.failures,
      range,
      verbose: v.verbose === true,
    };
    switch (name) {
      case 'stat':
        return statCommand(run, v.json === true);
      case 'touch':
        return await touchCommand(run, v['no-progress'] !== true);
      case 'evict':
        return evictCommand(run);
      case 'lock':
        return await lockCommand(run);
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
  // `pagewise stat dir | head`: a closed pipe ends the output, not with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`pagewise: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT_FAILED;
    },
  );
}
