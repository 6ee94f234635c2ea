// Issue 22: volatile bytes that Node's own I/O still holds. Each case runs in a child
// (node-io-child.mjs) so an abort (zlib's CHECK on a detached input) fails the test
// instead of ending the runner. Clients on loopback pause 150–390 ms and read slowly
// while the arena is flushed, purged and put under critical pressure; every byte of
// every body and every async result is compared with what was written.
import { describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';
import { CHILD_TEST_TIMEOUT_MS, runChild, why } from './child';

interface Result {
  scenario: string;
  backend: string;
  checked: number;
  wrong: number;
  failures: string[];
}

function run(scenario: string, mib: number, checks: number): void {
  const r = runChild<Result>('node-io-child.mjs', [scenario, String(mib)]);
  expect(r.signal, why(r)).toBeNull();
  expect(r.status, why(r)).toBe(0);
  const s = r.json as Result;
  expect(s.backend).toBe(pagewise.kind);
  expect(s.failures).toEqual([]);
  expect(s.wrong).toBe(0);
  expect(s.checked).toBe(checks);
}

describe('volatile bytes held by Node I/O: never a wrong byte, never an abort (issue 22)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  for (const mib of [4, 16]) {
    it(`node:http, ${mib} MiB bodies, slow clients: res.end(h.bytes); h.release()`, () => run('http-obvious', mib, 6));
    it(`node:http, ${mib} MiB bodies, slow clients: releaseAfter(res, h)`, () => run('http-helper', mib, 6));
    it(`raw net, ${mib} MiB bodies, slow clients: socket.end(h.bytes); h.release()`, () => run('net-obvious', mib, 6));
    it(`raw net, ${mib} MiB bodies, slow clients: releaseAfter(socket, h)`, () => run('net-helper', mib, 6));
  }
  it('unpin / free / close / release / delete while zlib, crypto.randomFill, fs.write, FileHandle.write and a slow socket hold the bytes', () =>
    run('async', 4, 3 * 6 + 3 * 2 + 2));
});
