// releaseAfter(stream, holder): let go of cached or arena bytes once a stream is done
// with them. Safety does not depend on it (the arena keeps a span as it is while any
// view of it is reachable, docs/ARENA.md), but releasing on completion is what lets the
// span become volatile as soon as the write is over, and it reads as what it means.
import { finished } from 'node:stream';
import { invalidArgType } from '../errors';

/** Something to release: a CacheHandle, anything with release(), or a function. */
export type Releasable = { release(): void } | (() => void);

/**
 * Call `holder.release()` (or `holder()`) exactly once, when `stream` has finished,
 * closed or errored — an http.ServerResponse, a net.Socket, any Writable, Readable or
 * Duplex (node:stream's finished() decides). A stream that is already finished or
 * destroyed releases on the next tick. Typical use:
 *
 *   const h = cache.get(key, render);
 *   res.end(h.bytes);
 *   releaseAfter(res, h);
 */
export function releaseAfter(stream: NodeJS.ReadableStream | NodeJS.WritableStream, holder: Releasable): void {
  if (typeof stream !== 'object' || stream === null || typeof (stream as { on?: unknown }).on !== 'function') {
    throw invalidArgType('stream', 'a stream (Readable, Writable, http.ServerResponse, net.Socket)', stream);
  }
  let release: () => void;
  if (typeof holder === 'function') release = holder;
  else if (typeof holder === 'object' && holder !== null && typeof holder.release === 'function') release = () => holder.release();
  else throw invalidArgType('holder', 'a function or an object with a release() method', holder);
  let done = false;
  // finished() leaves its listeners attached after calling back: remove them then.
  const cleanup = finished(stream, () => {
    if (done) return;
    done = true;
    queueMicrotask(cleanup);
    release();
  });
}
