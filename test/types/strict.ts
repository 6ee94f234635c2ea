// Compiled by test/hygiene.test.ts with `tsc --strict` (not run): what must and must not
// compile for a user of the package and for the option key lists.
import { memoryUsage } from '../../lib/index';
import { pagewiseError } from '../../lib/errors';
import { optionKeys } from '../../lib/validate';

// memoryUsage() needs no narrowing on the common path (it throws ERR_MEMORY_USAGE_UNSUPPORTED instead).
export const effective: number = memoryUsage().effective;
export const perMapping: number = memoryUsage().mappings.reduce((a, m) => a + m.rss, 0);

interface Two {
  a?: number;
  b?: string;
}
export const both = optionKeys<Two>()(['a', 'b'] as const);
// @ts-expect-error a list that misses one of the interface's keys does not compile
export const missing = optionKeys<Two>()(['a'] as const);
// @ts-expect-error nor does a key the interface does not have
export const extra = optionKeys<Two>()(['a', 'b', 'c'] as const);

export const registered = pagewiseError('ERR_ARENA_FULL', 'a registered code compiles');
// @ts-expect-error an unregistered code does not
export const unregistered = pagewiseError('ERR_NO_SUCH_CODE', 'an unknown code does not compile');
