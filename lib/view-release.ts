// When the memory behind a view can be handed to someone else.
//
// Detaching a view is not the end of its memory's use: Node's own threadpool work
// (crypto.randomFill, fs.write, zlib) keeps the raw pointer it read at the call,
// and keeps only the JavaScript object (the view, hence its ArrayBuffer) alive
// until its callback. The external backing store, by contrast, is released the
// moment a buffer is detached, so its finalizer says nothing about such work.
// The collection of the ArrayBuffer object does: nothing can reach the memory
// through it any more.
import { invalidArgType } from './errors';

const registry = new FinalizationRegistry<() => void>((resolve) => resolve());

/**
 * Resolves once the ArrayBuffer behind `view` has been garbage-collected: no
 * JavaScript code and no Node async operation started on it can still read or
 * write its memory. Holds no reference to the view itself; it never resolves
 * while anything (the caller included) keeps the view or its buffer reachable.
 */
export function whenViewReleased(view: Uint8Array): Promise<void> {
  if (!(view instanceof Uint8Array)) throw invalidArgType('view', 'an instance of Uint8Array', view);
  const buffer = view.buffer;
  return new Promise<void>((resolve) => registry.register(buffer, resolve));
}
