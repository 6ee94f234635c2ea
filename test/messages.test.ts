// Counts in error messages read as English: "1 byte", "1 page", never "(1 pages)" (issue 25).
import { describe, expect, it } from 'vitest';
import { VolatileArena } from '../lib/index';
import { PAGE, pw } from './helpers';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a throw');
}

describe('singular counts in messages', () => {
  it('a one-byte copy that cannot be made: "copied 0 of 1 byte"', () => {
    using m = pw.map(2 * PAGE);
    m.protect('none', { offset: 0, length: PAGE });
    expect(message(() => m.readSync(0, 1))).toBe(
      'EFAULT: bad address in system call argument, process_vm_readv (copied 0 of 1 byte: a page past the end of the file, or one that cannot be read)',
    );
    expect(message(() => m.writeSync(0, new Uint8Array(1)))).toMatch(/\(copied 0 of 1 byte: /);
    expect(message(() => m.readSync(0, 2))).toMatch(/\(copied 0 of 2 bytes: /);
  });

  it('a one-byte typed array shown in an argument error: "Uint8Array(1 byte)"', () => {
    using m = pw.map(PAGE);
    expect(message(() => m.detachView(new Uint8Array(1)))).toMatch(/not a live view of this mapping\. Received Uint8Array\(1 byte\)$/);
    expect(message(() => m.detachView(new Uint8Array(2)))).toMatch(/Received Uint8Array\(2 bytes\)$/);
  });

  it('a full arena asked for one byte: "Cannot allocate 1 byte (1 page)"', () => {
    using arena = new VolatileArena({ size: 2 * PAGE, pagewise: pw });
    const b = arena.alloc(2 * PAGE);
    expect(message(() => arena.alloc(1))).toMatch(/^Cannot allocate 1 byte \(1 page\): the arena has 0 bytes free, the largest free span is 0 bytes/);
    b.free();
    const c = arena.alloc(PAGE);
    expect(message(() => arena.alloc(PAGE + 1))).toMatch(new RegExp(`^Cannot allocate ${PAGE + 1} bytes \\(2 pages\\): the arena has ${PAGE} bytes free`));
    c.free();
  });
});
