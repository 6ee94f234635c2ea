// The `pagewise` CLI (stat, touch, evict, lock) on special files: FIFOs, a socket,
// devices, /proc files, symbolic links to them, directories holding them, lists
// given with --files-from, and a directory entry a shell flips between a regular
// file and a FIFO while the commands walk it. Native only (the file commands
// refuse the simulator). Prints one JSON line.
//
//   node cli-special-child.mjs [rounds]
//
// Every run must end by itself (bounded: 30 s) with exit status 0 or 1 and no
// signal; `lock` is sent SIGINT once it reports that it holds files.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', '..', 'dist', 'cli', 'main.js');
const rounds = Number(process.argv[2] ?? 1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-cli-special-'));
const out = { rounds, runs: 0, statuses: {}, failures: [] };
const fail = (what) => out.failures.length < 50 && out.failures.push(what);
const LIMIT_MS = 30_000;

function runCli(args) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PAGEWISE_BACKEND: 'native' } });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!interrupted && stdout.includes('waiting for SIGINT')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - started, interrupted });
    });
  });
}

async function check(label, args, statuses) {
  const r = await runCli(args);
  out.runs++;
  const key = `${r.status ?? r.signal}`;
  out.statuses[key] = (out.statuses[key] ?? 0) + 1;
  if (r.signal !== null || !statuses.includes(r.status)) {
    fail(`${label}: status ${r.status} signal ${r.signal} after ${r.ms} ms\n${r.stdout.slice(-500)}\n${r.stderr.slice(-500)}`);
  }
  return r;
}

const fifo = path.join(dir, 'fifo');
spawnSync('mkfifo', [fifo]);
const sock = path.join(dir, 'sock');
const server = net.createServer();
await new Promise((r) => server.listen(sock, r));
fs.symlinkSync(fifo, path.join(dir, 'to-fifo'));
const specials = { fifo, socket: sock, '/dev/null': '/dev/null', '/dev/zero': '/dev/zero', 'symlink to the fifo': path.join(dir, 'to-fifo') };
const block = ['/dev/loop0', '/dev/sda', '/dev/vda'].find((d) => fs.existsSync(d));
if (block) specials['block device'] = block;
// A directory holding only special files: walked, nothing to do.
const holder = path.join(dir, 'holder');
fs.mkdirSync(holder);
spawnSync('mkfifo', [path.join(holder, 'pipe')]);
fs.symlinkSync(fifo, path.join(holder, 'link'));
fs.symlinkSync('/dev/zero', path.join(holder, 'zero'));
const list = path.join(dir, 'list');
fs.writeFileSync(list, `${Object.values(specials).join('\n')}\n`);

const commands = ['stat', 'touch', 'evict', 'lock'];
const cases = [];
for (const command of commands) {
  for (const [name, target] of Object.entries(specials)) cases.push([`${command} ${name}`, [command, target], [1]]);
  cases.push([`${command} /proc/self/status (a regular file of size 0)`, [command, '/proc/self/status'], [0]]);
  cases.push([`${command} a directory of special files`, [command, holder], [0]]);
  cases.push([`${command} a directory of special files --follow`, [command, '--follow', holder], [0, 1]]);
  cases.push([`${command} --files-from a list of special files`, [command, '--files-from', list], [1]]);
}
for (const [label, args, statuses] of cases) {
  const r = await check(label, args, statuses);
  if (statuses.length === 1 && statuses[0] === 1 && !/Not a regular file/.test(r.stderr)) fail(`${label}: no "Not a regular file" on stderr: ${r.stderr.slice(0, 300)}`);
}
out.direct = cases.length;

// A directory entry flipped between a regular file and a FIFO (hard links of both) while walked.
const flipped = path.join(dir, 'flipped');
fs.mkdirSync(flipped);
const regular = path.join(dir, 'regular');
fs.writeFileSync(regular, Buffer.alloc(64 * 1024, 1));
const victim = path.join(flipped, 'victim');
fs.linkSync(regular, victim);
fs.writeFileSync(path.join(flipped, 'steady'), Buffer.alloc(4096, 2));
const flipper = spawn('sh', ['-c', `while :; do ln -f "${fifo}" "${victim}"; ln -f "${regular}" "${victim}"; done`], { stdio: 'ignore' });
let swapRuns = 0;
for (let i = 0; i < rounds * 5; i++) {
  for (const command of commands) {
    await check(`${command} of a directory whose entry flips to a FIFO`, [command, flipped], [0, 1]);
    swapRuns++;
  }
}
out.swapRuns = swapRuns;
const exited = new Promise((r) => flipper.once('exit', r));
flipper.kill('SIGKILL');
await exited;
await new Promise((r) => server.close(r));
fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
console.log(JSON.stringify(out));
if (out.failures.length > 0) process.exitCode = 1;
