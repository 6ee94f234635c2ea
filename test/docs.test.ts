// Every fenced code block of README.md and docs/*.md is run, or says why not (issue 25).
//
// The conventions (read by test/docs/blocks.ts and test/docs/runtime.mjs):
//
// - A block is skipped only with `<!-- not run: REASON -->` on the line(s) right before its fence
//   (REASON must say why). `<!-- native only: REASON -->` runs it in the native project only.
// - ```js / ```ts blocks run as ES modules (`node block.mjs`; TypeScript is transpiled first)
//   on the project's backend, in a fresh directory where `import 'pagewise'` is this checkout.
//   A line whose comment holds an arrow (`expr; // → EXPECTED`, or `// words → EXPECTED`) is
//   checked: its value (or, on a `const x = ...` line, x) must match EXPECTED: `64`, `'free'`, `true`, `number` (any number), `Uint8Array(64)`,
//   `{ resident: 64, total, ... }` (key `total` present, `...` = other keys allowed),
//   `[number, ...]`, `A | B`. The reader's own functions an example calls (`render`, `send`,
//   `regenerate`, `decodeInto`, `expensiveResult`, `id`, `url`, `data`, `req` (an http request), a slow writable `res` /
//   `stream`) are stand-ins defined in test/docs/runtime.mjs; any other undeclared name fails.
// - ```sh blocks run line by line with bash, each command must exit 0; an arrow in a command's
//   comment (`cmd  # → TEXT` or `cmd  # words → TEXT`) checks its output (`…` matches any text). `npx pagewise …` / `pagewise …` run this checkout's built CLI;
//   `node node_modules/pagewise/…` this checkout's files.
// - A block whose first line starts with `$ ` (```sh or no language) is a transcript: each
//   `$ command` runs with bash (stderr merged into stdout) and must print the lines that follow
//   it; `…` in them matches any text. The exit status is not checked (refusals are shown too).
// - Shell blocks and transcripts run in the native project only: the CLI's file commands need
//   the kernel (on the simulator they exit 69, as docs/CLI.md shows).
// - Any other block (a diagram, an excerpt of output, JSON) must be marked `not run`.
// - The working directory holds: data.bin, data.db, hot.idx (64 KiB each), log.bin (4 KiB),
//   big.bin (1 MiB), db/a.db, db/b.db, db/index/c.idx. A process a block leaves in the
//   background with a pid file (`lock --daemon --pid-file app.pid`) is stopped afterwards.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Block, outputMatches, readBlocks, runModule, runShell, shellCommands, stopDaemons, transcript, workspace } from './docs/blocks';
import { onKernel, pw } from './helpers';

const root = path.join(__dirname, '..');
const haveDist = fs.existsSync(path.join(root, 'dist', 'index.js'));
const files = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const blocks = files.flatMap((f) => readBlocks(f, root));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-docs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function place(block: Block): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = path.join(tmp, `${block.file.replace(/\W/g, '_')}-${block.line}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  return { dir, env: workspace(dir, root).env({ ...process.env, PAGEWISE_BACKEND: pw.kind }) };
}

describe('the doc blocks', () => {
  it('were found, and each is runnable or says why not', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(5);
    const unexplained = blocks
      .filter((b) => (b.notRun !== undefined ? b.notRun.length < 10 : b.kind === 'other'))
      .map((b) => `${b.file}:${b.line} (\`\`\`${b.lang}): neither code nor a transcript, and no <!-- not run: why --> before it`);
    expect(unexplained).toEqual([]);
  });

  it('show no pattern that is unsafe to copy', () => {
    for (const b of blocks) {
      // A volatile handle released (or an arena buffer freed) while Node may still be writing its bytes out:
      // write(h.bytes) / end(h.bytes) followed by release() in the same block.
      const early = /\.(?:write|end)\(\s*(\w+)\.bytes[\s\S]*?\b\1\.(?:release|free)\(\)/.exec(b.code);
      expect(early?.[0], `${b.file}:${b.line}: releases a handle whose bytes a stream may still hold (use releaseAfter)`).toBeUndefined();
      expect(b.code, `${b.file}:${b.line}: kill -9 / killall / pkill`).not.toMatch(/\bkill\s+-9\b|\bkillall\b|\bpkill\b/);
      expect(b.code, `${b.file}:${b.line}: rm -rf of a variable or /`).not.toMatch(/rm\s+-rf?\s+(\/(\s|$)|\$)/);
    }
  });
});

describe.skipIf(!haveDist)('the harness itself', () => {
  const synthetic = (code: string, lang = 'js'): Block => ({ file: 'synthetic.md', line: 1, lang, code, kind: 'module' });
  it('fails a block whose → comment is wrong, or that throws, and passes a right one', () => {
    const { dir, env } = place(synthetic(''));
    const ok = runModule(
      synthetic("import { map, pageSize } from 'pagewise';\nconst m = map(2 * pageSize); // → { buffer: Uint8Array(8192), ... }\nm.residency(); // → { pages: Uint8Array(2), resident: 0, total: 2, offset: 0 }\n'a'; // → 'b' | 'a'\n[1, 2]; // → [number, ...]"),
      dir,
      env,
    );
    expect(ok.status, ok.stderr).toBe(0);
    const wrong = runModule(synthetic("import { pageSize } from 'pagewise';\npageSize; // → 4095\n({ a: 1, b: 2 }); // → { a: 1 }"), dir, env);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('doc-check failed');
    expect(wrong.stderr).toContain('synthetic.md:3: expected 4095, got 4096');
    expect(wrong.stderr).toContain('synthetic.md:4: expected { a: 1 }, got { a: 1, b: 2 }');
    expect(runModule(synthetic('notDefinedAnywhere();'), dir, env).stderr).toMatch(/ReferenceError: notDefinedAnywhere is not defined/);
    const typed = runModule(synthetic("const n: number = 3; // → 3\nusing d = { [Symbol.dispose]() { console.log('disposed'); } };", 'ts'), dir, env);
    expect([typed.status, typed.stdout.trim()]).toEqual([0, 'disposed']);
  });
  it('matches transcripts with … and nothing else', () => {
    expect(outputMatches('locked 3 files by process 42\n', 'locked 3 files by process …')).toBe(true);
    expect(outputMatches('locked 4 files by process 42', 'locked 3 files by process …')).toBe(false);
    expect(outputMatches('a\nb\nc', 'a\n…\nc')).toBe(true);
    expect(outputMatches('a.c', 'abc')).toBe(false);
    expect(shellCommands('# a comment\necho a \\\n  b   # joins → a b\nls -l  # lists\n')).toEqual([
      { command: 'echo a    b', expected: 'a b' },
      { command: 'ls -l  # lists' },
    ]);
  });
});

for (const block of blocks) {
  const name = `${block.file}:${block.line} (${block.lang || 'no language'})`;
  if (block.notRun !== undefined || block.kind === 'other') continue;
  const native = block.kind !== 'module' || block.nativeOnly !== undefined;
  describe.skipIf(!haveDist || (native && !onKernel))(name, () => {
    if (block.kind === 'module') {
      it('runs and prints what its comments say', () => {
        const { dir, env } = place(block);
        const r = runModule(block, dir, env);
        expect(r.stderr).not.toMatch(/doc-check failed/);
        expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      });
    } else if (block.kind === 'shell') {
      it('runs every command', async () => {
        const { dir, env } = place(block);
        try {
          for (const step of shellCommands(block.code)) {
            const r = runShell(step.command, dir, env);
            expect(r.status, `${step.command}\n${r.stdout}${r.stderr}`).toBe(0);
            if (step.expected !== undefined) expect(outputMatches(r.stdout, step.expected), `${step.command}: expected ${step.expected}, got ${r.stdout}`).toBe(true);
          }
        } finally {
          await stopDaemons(dir);
        }
      });
    } else {
      it('prints what the transcript shows', async () => {
        const { dir, env } = place(block);
        try {
          for (const step of transcript(block.code)) {
            const r = runShell(step.command, dir, env);
            expect(outputMatches(r.stdout, step.expected), `$ ${step.command}\nexpected:\n${step.expected}\nprinted:\n${r.stdout}${r.stderr}`).toBe(true);
          }
        } finally {
          await stopDaemons(dir);
        }
      });
    }
  });
}
