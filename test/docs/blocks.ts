// Reads the fenced code blocks of a Markdown file and runs them the way test/docs.test.ts
// describes (the conventions are documented there). Also used by test/package.test.ts to run
// the README's commands from a project that installed the packed tarball.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

export interface Block {
  /** The Markdown file, relative to the repository. */
  file: string;
  /** Line of the opening fence (1-based). */
  line: number;
  /** The fence's info string ('js', 'sh', '' ...). */
  lang: string;
  code: string;
  /** `<!-- not run: REASON -->` right before the fence. */
  notRun?: string;
  /** `<!-- native only: REASON -->` right before the fence. */
  nativeOnly?: string;
  kind: 'module' | 'shell' | 'transcript' | 'other';
}

const MODULE_LANGS = new Set(['js', 'mjs', 'javascript', 'ts', 'typescript']);
const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console']);

export function readBlocks(file: string, root: string): Block[] {
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end].trimStart().startsWith(fence)) end++;
    const code = lines
      .slice(i + 1, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join('\n');
    // The HTML comments right before the fence (blank lines between are allowed).
    const markers: string[] = [];
    for (let j = i - 1; j >= 0; j--) {
      const t = lines[j].trim();
      if (t === '') continue;
      const comment = /^<!--\s*(.*?)\s*-->$/.exec(t);
      if (!comment) break;
      markers.push(comment[1]);
    }
    const marker = (name: string) => {
      for (const m of markers) {
        const hit = new RegExp(`^${name}:\\s*(.*)$`, 's').exec(m);
        if (hit) return hit[1].trim();
      }
      return undefined;
    };
    let kind: Block['kind'] = 'other';
    if (MODULE_LANGS.has(lang)) kind = 'module';
    else if (SHELL_LANGS.has(lang) || lang === '') kind = /^\s*\$ /.test(code.split('\n').find((l) => l.trim() !== '') ?? '') ? 'transcript' : SHELL_LANGS.has(lang) ? 'shell' : 'other';
    blocks.push({ file, line: i + 1, lang, code, notRun: marker('not run'), nativeOnly: marker('native only'), kind });
    i = end;
  }
  return blocks;
}

/** A block's code with each `// → EXPECTED` line turned into a check (same line numbers). */
export function withChecks(block: Block): string {
  return block.code
    .split('\n')
    .map((line, i) => {
      // `code; // words → EXPECTED`: what follows the arrow in the line's comment.
      const arrow = /^(.*?)\/\/[^→]*→(.*)$/.exec(line);
      if (!arrow || arrow[1].trim() === '') return line;
      const expected = arrow[2].trim();
      const code = arrow[1].replace(/;?\s*$/, '');
      const where = JSON.stringify(`${block.file}:${block.line + 1 + i}`);
      const declared = /^\s*(?:const|let|var|using)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=/.exec(code);
      if (declared) return `${code}; __doc.check(${where}, ${declared[1]}, ${JSON.stringify(expected)});`;
      const indent = /^\s*/.exec(code)![0];
      return `${indent}__doc.check(${where}, (${code.trim()}), ${JSON.stringify(expected)});`;
    })
    .join('\n');
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a module block (TypeScript is transpiled first) in `cwd`, where 'pagewise' resolves. */
export function runModule(block: Block, cwd: string, env: NodeJS.ProcessEnv): RunResult {
  let source = withChecks(block);
  if (block.lang === 'ts' || block.lang === 'typescript') {
    source = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  }
  const file = path.join(cwd, `block-${block.line}.mjs`);
  fs.writeFileSync(file, source);
  const r = spawnSync(process.execPath, ['--import', path.join(__dirname, 'runtime.mjs'), file], { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr + (r.error ? String(r.error) : '') };
}

/** Shell commands of a block: one per line (a trailing `\` continues it), comments and blanks dropped. */
export function shellCommands(code: string): Array<{ command: string; expected?: string }> {
  const out: Array<{ command: string; expected?: string }> = [];
  let pending = '';
  for (const raw of code.split('\n')) {
    if (raw.trim().startsWith('#') || (raw.trim() === '' && pending === '')) continue;
    if (raw.trimEnd().endsWith('\\')) {
      pending += `${raw.trimEnd().slice(0, -1)} `;
      continue;
    }
    const line = pending + raw;
    pending = '';
    // `command   # words → TEXT`: what follows the arrow in the comment is the expected output.
    const arrow = /^(.*?)\s#[^→]*→(.*)$/.exec(line);
    out.push(arrow ? { command: arrow[1].trim(), expected: arrow[2].trim() } : { command: line.trim() });
  }
  return out;
}

/** `…` in expected output matches any text; the rest literally (trailing blanks ignored). */
export function outputMatches(actual: string, expected: string): boolean {
  const norm = (s: string) => s.split('\n').map((l) => l.trimEnd()).join('\n').trim();
  const pattern = norm(expected)
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*?');
  return new RegExp(`^${pattern}$`).test(norm(actual));
}

export function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv): RunResult {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `${command} 2>&1`], { cwd, env, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr + (r.error ? String(r.error) : '') };
}

/** `$ command` lines and the output that follows each. */
export function transcript(code: string): Array<{ command: string; expected: string }> {
  const steps: Array<{ command: string; expected: string }> = [];
  for (const line of code.split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: '' });
    else if (steps.length > 0) steps[steps.length - 1].expected += `${line}\n`;
  }
  return steps;
}

/**
 * A directory where the blocks run: `node_modules/pagewise` is `packageDir`, `bin/` holds
 * `pagewise` (the package's CLI) and an `npx` that runs what it is given from there, and the
 * files the blocks name exist (see test/docs.test.ts).
 */
export function workspace(dir: string, packageDir: string): { env: (base: NodeJS.ProcessEnv) => NodeJS.ProcessEnv } {
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const link = path.join(dir, 'node_modules', 'pagewise');
  if (!fs.existsSync(link)) fs.symlinkSync(packageDir, link);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'pagewise'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(packageDir, 'dist/cli/main.js')}" "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'npx'), `#!/bin/sh\n[ "$1" = pagewise ] || { echo "doc test: npx runs only pagewise here" >&2; exit 127; }\nexec "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'node'), `#!/bin/sh\nexec "${process.execPath}" "$@"\n`, { mode: 0o755 });
  const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  const files: Record<string, Uint8Array> = {
    'data.bin': pattern(64 << 10, 1),
    'data.db': pattern(64 << 10, 2),
    'log.bin': pattern(4 << 10, 3),
    'big.bin': pattern(1 << 20, 4),
    'hot.idx': pattern(64 << 10, 5),
    'db/a.db': pattern(32 << 10, 6),
    'db/b.db': pattern(16 << 10, 7),
    'db/index/c.idx': pattern(8 << 10, 8),
  };
  for (const [name, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  return { env: (base) => ({ ...base, PATH: `${bin}:${base.PATH ?? ''}` }) };
}

/** Stop what a block left running in the background: every process named by a *.pid file in `dir`. */
export async function stopDaemons(dir: string): Promise<number[]> {
  const stopped: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.pid')) continue;
    const pid = Number(fs.readFileSync(path.join(dir, name), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue; // already gone
    }
    stopped.push(pid);
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return stopped;
}
