// The addon must load wherever Node 20 runs: glibc 2.28 (RHEL 8) and RHEL 8's
// libstdc++ (GCC 8). Reads the versioned symbols the built addon (the same
// binding.gyp as the prebuild) needs, with scripts/elf-versions.mjs.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onKernel } from './helpers';
import { readmeRequirement, readmeShape } from './readme-requirement';

const root = path.resolve(__dirname, '..');
const require = createRequire(__filename);

describe.skipIf(!onKernel)('addon symbol versions (the native project: it reads the addon file)', async () => {
  const { glibcRequirement, versionedImports } = await import('../scripts/elf-versions.mjs');
  const addon = (require('node-gyp-build') as { path(dir: string): string }).path(root);

  it('needs nothing newer than GLIBC_2.28, GLIBCXX_3.4.25 and CXXABI_1.3.11', () => {
    const need = glibcRequirement(addon);
    expect(need.tooNew).toEqual([]);
    expect(need.glibc).toBe('2.28'); // fcntl64 is 2.28: the floor is reached, not passed
  });

  it("the README's version requirements are the addon's (the same binding.gyp as the prebuild)", () => {
    expect(readmeRequirement(fs.readFileSync(path.join(root, 'README.md'), 'utf8'))).toEqual(readmeShape(glibcRequirement(addon)));
  });

  it('reads what objdump -T reads (when binutils are installed)', (ctx) => {
    const imports = versionedImports(addon) as Array<{ symbol: string; version: string; file: string }>;
    expect(imports).toContainEqual({ symbol: 'madvise', version: 'GLIBC_2.2.5', file: 'libc.so.6' });
    let dump: string;
    try {
      dump = execFileSync('objdump', ['-T', addon], { encoding: 'utf8' });
    } catch {
      ctx.skip(); // no binutils here: the reader is the only source
      return;
    }
    const fromObjdump = dump
      .split('\n')
      .map((l) => /\*UND\*\s+\S+\s+\(?([A-Z]+_[\d.]+)\)?\s+(\S+)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${m[2]}@${m[1]}`)
      .sort();
    expect(imports.map((i) => `${i.symbol}@${i.version}`).sort()).toEqual(fromObjdump);
  });
});
