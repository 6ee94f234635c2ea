// mapFile(file, { watch: true }): the mapping notices that its file shrank (issue 14).
import { once } from 'node:events';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ErrnoError, TruncationEvent } from '../lib/index';
import { PAGE, pattern, pw, tempFile } from './helpers';

/** The next 'truncate' event, or a failure after 20 s (inotify is asynchronous; under load it may take a while). */
async function nextTruncate(watch: NonNullable<ReturnType<typeof pw.mapFile>['truncation']>): Promise<TruncationEvent> {
  const timeout = AbortSignal.timeout(20_000);
  const [event] = (await once(watch, 'truncate', { signal: timeout })) as [TruncationEvent];
  return event;
}

describe('mapFile { watch: true }', () => {
  it('detaches the views reaching past the new end and emits truncate; views before it stay', async () => {
    const content = pattern(6 * PAGE);
    const file = tempFile(content);
    using m = pw.mapFile(file, { watch: true });
    const head = m.view(0, PAGE);
    const tail = m.view(3 * PAGE, PAGE);
    const last = m.view(5 * PAGE, PAGE); // views over disjoint pages: independent on both backends
    const watch = m.truncation!;
    expect(watch).toBeDefined();
    const event = nextTruncate(watch);
    fs.truncateSync(file, 2 * PAGE + 10);
    const e = await event;
    expect(e.size).toBe(2 * PAGE + 10);
    expect(e.mappedBytes).toBe(2 * PAGE + 10);
    expect(e.detachedViews).toBe(2);
    // Only after the event: touching the tail before it would raise SIGBUS.
    expect(tail.length).toBe(0);
    expect(last.length).toBe(0);
    expect(head.length).toBe(PAGE);
    expect(Buffer.from(head).equals(Buffer.from(content.subarray(0, PAGE)))).toBe(true);
    // read() stays the safe way to the bytes that are left.
    expect(Buffer.from(m.readSync(0, 2 * PAGE + 10)).equals(Buffer.from(content.subarray(0, 2 * PAGE + 10)))).toBe(true);
    expect((() => { try { m.readSync(3 * PAGE, 1); } catch (err) { return (err as ErrnoError).code; } })()).toBe('EFAULT');
  });

  it('check() re-checks at once; growing or shrinking within the last page emits nothing', () => {
    const file = tempFile(pattern(4 * PAGE));
    using m = pw.mapFile(file, { offset: PAGE + 5, length: 2 * PAGE, watch: true });
    const events: TruncationEvent[] = [];
    m.truncation!.on('truncate', (e) => events.push(e));
    fs.truncateSync(file, 8 * PAGE);
    expect(m.truncation!.check()).toBeUndefined();
    fs.truncateSync(file, 3 * PAGE + 6); // the mapping ends at 3 * PAGE + 5: still backed
    expect(m.truncation!.check()).toBeUndefined();
    const view = m.view(PAGE, PAGE - 5);
    fs.truncateSync(file, 2 * PAGE);
    const e = m.truncation!.check();
    expect(e).toEqual({ size: 2 * PAGE, mappedBytes: PAGE - 5, detachedViews: 1 });
    expect(view.length).toBe(0);
    expect(events).toEqual([e]);
  });

  it('close() stops the watch and closes its descriptor; without the option there is none; arguments are checked', () => {
    const file = tempFile(pattern(2 * PAGE));
    const m = pw.mapFile(file, { watch: true });
    const watch = m.truncation!;
    m.close();
    expect(watch.closed).toBe(true);
    expect(watch.check()).toBeUndefined();
    using plain = pw.mapFile(file);
    expect(plain.truncation).toBeUndefined();
    expect(() => pw.mapFile(file, { watch: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
