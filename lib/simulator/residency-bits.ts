// The simulator's residencyBits(): residency() of at most 32 pages folded into a
// number, bit i = page i, as native/mincore.cc answers it (the public API asks
// for it on small ranges, so both backends run the same code above).
import { type BackendMapping, RESIDENCY_BITS } from '../backend';
import { outOfRange } from '../errors';

export function residencyBits(mapping: Pick<BackendMapping, 'residency'>, offset: number, length: number): number {
  const pages = mapping.residency(offset, length);
  if (pages.length > RESIDENCY_BITS) throw outOfRange('length', `at most ${RESIDENCY_BITS} pages`, length);
  let bits = 0;
  for (let i = 0; i < pages.length; i++) bits |= (pages[i] & 1) << i;
  return bits >>> 0;
}
