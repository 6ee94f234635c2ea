// The CLI and files truncated under it (issue 14): `lock` of a file truncated while
// locked, and `touch` / `stat` / `lock` while another process truncates the file in a
// loop, end with an exit status, never with a signal (SIGBUS).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onKernel, PAGE, pattern, tempFile } from './helpers';

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const haveDist = fs.existsSync(CLI);

/** Truncates `file` to `cut` and writes it back to full size, over and over, until stopped. */
const TRUNCATOR = `
const fs = require('node:fs');
const [file, cut] = [process.argv[1], Number(process.argv[2])];
const fd = fs.openSync(file, 'r+');
const all = fs.readFileSync(file);
process.stdout.write('ready\\n');
for (let i = 0; ; i++) {
  fs.ftruncateSync(fd, cut);
  fs.writeSync(fd, all, cut, all.length - cut, cut);
  if (i % 64 === 0 && fs.existsSync(file + '.stop')) break;
}
`;

async function truncating(file: string, cut: number): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, ['-e', TRUNCATOR, file, String(cut)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`truncator exited early (${code})`)));
  });
  return async () => {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    fs.writeFileSync(`${file}.stop`, '');
    await exited;
  };
}

/** Starts `pagewise lock`, resolves once it is waiting for a signal. */
async function startLock(files: string[]): Promise<{ child: ChildProcess; exited: Promise<[number | null, string | null]>; output: () => string }> {
  const child = spawn(process.execPath, [CLI, 'lock', ...files], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => {
      if (output.includes('waiting for SIGINT') || output.includes('nothing locked')) resolve();
    });
    void exited.then(([c, s]) => (output.includes('nothing locked') ? resolve() : reject(new Error(`lock exited early (${c}, ${s}): ${output}`))));
  });
  return { child, exited, output: () => output };
}

describe.skipIf(!haveDist || !onKernel)('the CLI and truncated files (native only: the file commands refuse the simulator; needs dist/)', () => {
  it('lock: the file truncated while locked; SIGTERM still unlocks and exits 0', async () => {
    const file = tempFile(pattern(64 * PAGE));
    const { child, exited, output } = await startLock([file]);
    expect(output()).toContain(`locked ${file} (256.0 KiB)`);
    fs.truncateSync(file, PAGE + 1);
    fs.truncateSync(file, 0);
    child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(output()).toMatch(/unlocking 1 file\n$/);
  });

  it('lock, touch and stat while another process truncates the file in a loop: an exit status, never a signal', async () => {
    const file = tempFile(pattern(256 * PAGE));
    const stop = await truncating(file, 16 * PAGE);
    try {
      for (let i = 0; i < 5; i++) {
        for (const command of ['touch', 'stat']) {
          const r = spawnSync(process.execPath, [CLI, command, file], { encoding: 'utf8', env: process.env });
          expect({ command, signal: r.signal }).toEqual({ command, signal: null });
          expect([0, 1]).toContain(r.status);
          if (r.status === 1) expect(r.stderr).toContain(`pagewise: ${file}: `); // e.g. "the file shrank while it was being read"
        }
        const { child, exited, output } = await startLock([file]);
        // It may have found nothing to lock (mlock met the truncated end: ENOMEM) and exited 1.
        if (output().includes('waiting for SIGINT')) child.kill('SIGTERM');
        const [code, signal] = await exited;
        expect(signal).toBeNull();
        expect([0, 1]).toContain(code);
      }
    } finally {
      await stop();
    }
  }, 300_000); // 15 CLI processes beside a truncation loop took over 60 s on a loaded 2-core machine
});
