// Readers of the kernel's per-process reports under /proc/self (one home for each).
import * as fs from 'node:fs';

/** LazyFree of /proc/self/smaps_rollup in bytes, or undefined. */
export function readLazyFree(): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps_rollup', 'latin1');
  } catch {
    return undefined;
  }
  const m = /^LazyFree:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}
