// mapping.buffer over a mapping larger than 4 GiB: whole on engines whose
// ArrayBuffers may exceed 4 GiB (V8 12.4+: Node 22+), else the window rule
// (ERR_MAPPING_TOO_LARGE; view() reaches every byte). The addon finds out at
// load (native/limits.cc); the oracle here is Node's own buffer.constants.MAX_LENGTH.
import { constants as bufferConstants } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { onKernel, PAGE, pw } from './helpers';

const engineAllows = bufferConstants.MAX_LENGTH > 2 ** 32;
const LENGTH = 2 ** 32 + 2 * PAGE;

describe.skipIf(!onKernel)('a mapping larger than 4 GiB (native: the simulator holds at most 2 GiB)', () => {
  it.runIf(engineAllows)(`buffer covers it whole on this engine (MAX_LENGTH ${bufferConstants.MAX_LENGTH})`, () => {
    const m = pw.map(LENGTH, { noreserve: true });
    try {
      expect(pw.backend.maxViewLength).toBeGreaterThan(2 ** 32);
      const whole = m.buffer;
      expect(whole.length).toBe(LENGTH);
      expect(whole.buffer.byteLength).toBe(LENGTH);
      whole[LENGTH - 1] = 9;
      whole[2 ** 32] = 8;
      expect(m.view(2 ** 32, 2 * PAGE)[0]).toBe(8);
      expect(m.view(2 ** 32, 2 * PAGE)[2 * PAGE - 1]).toBe(9);
      expect(Array.from(m.residency({ offset: 2 ** 32 - PAGE, length: 3 * PAGE }).pages)).toEqual([0, 1, 1]);
      expect(m.buffer).toBe(whole); // cached while the length is unchanged
      // view() without a length is also whole now.
      expect(m.view(PAGE).length).toBe(LENGTH - PAGE);
      m.close();
      expect(whole[LENGTH - 1]).toBe(0); // close() released the memory: the old view reads zeros
    } finally {
      m.close();
    }
  });

  it.runIf(!engineAllows)(`buffer throws ERR_MAPPING_TOO_LARGE on this engine (MAX_LENGTH ${bufferConstants.MAX_LENGTH}); views reach every byte`, () => {
    const m = pw.map(LENGTH, { noreserve: true });
    try {
      expect(pw.backend.maxViewLength).toBe(2 ** 32);
      expect(() => m.buffer).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_TOO_LARGE' }));
      expect(m.view().length).toBe(2 ** 32);
      const tail = m.view(2 ** 32 - PAGE);
      expect(tail.length).toBe(3 * PAGE);
      tail[3 * PAGE - 1] = 9;
      expect(Array.from(m.residency({ offset: 2 ** 32 - PAGE, length: 3 * PAGE }).pages)).toEqual([0, 0, 1]);
    } finally {
      m.close();
    }
  });
});
