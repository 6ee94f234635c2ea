// mapFile(file, { watch: true }): notice that the file shrank (issue 14). An
// inotify watch (fs.watch: IN_MODIFY / IN_ATTRIB, non-persistent, so it never
// keeps the process alive) re-checks the size on every change and detaches the
// views that now reach past the end, so later JavaScript accesses through them
// see an empty view instead of raising SIGBUS.
//
// It narrows the window, it cannot close it: between the truncation and the
// event (one trip through the event loop at best) any access to those bytes still
// raises SIGBUS, and new views can be made over them. mapping.read() and sealed
// memory (createSharedMemory) are the guarantees.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';

export interface TruncationEvent {
  /** The file's size now, in bytes. */
  size: number;
  /** Bytes of the mapping still backed by the file (from offset 0 of the mapping; 0 if none). */
  mappedBytes: number;
  /** Views detached by this check. */
  detachedViews: number;
}

interface TruncationWatchEvents {
  truncate: [TruncationEvent];
}

/** What the watch needs of its mapping (lib/mapping.ts supplies it). */
interface WatchedMapping {
  /** Detach every view reaching past the file's new end; returns how many. */
  shrunk(size: number): { mappedBytes: number; detachedViews: number } | undefined;
}

/** Emits 'truncate' when the mapped file shrinks below the end of the mapping. */
export class TruncationWatch extends EventEmitter<TruncationWatchEvents> {
  #fd: number;
  #watcher: fs.FSWatcher | undefined;
  readonly #target: WatchedMapping;
  #lastSize: number;

  /** @internal fd: a descriptor of the mapped file that the watch owns (closed by close()). */
  constructor(fd: number, target: WatchedMapping) {
    super();
    this.#fd = fd;
    this.#target = target;
    this.#lastSize = fs.fstatSync(fd).size;
    // /proc/self/fd/N: inotify follows the link to the file itself (renames and deleted files included).
    this.#watcher = fs.watch(`/proc/self/fd/${fd}`, { persistent: false }, () => this.check());
    this.#watcher.on('error', () => this.#stopWatching());
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Re-check the size now (the watch does it on every change). Returns the event
   * emitted, or undefined if the file did not shrink below the mapping.
   */
  check(): TruncationEvent | undefined {
    if (this.#fd < 0) return undefined;
    let size: number;
    try {
      size = fs.fstatSync(this.#fd).size;
    } catch {
      return undefined;
    }
    const shrank = size < this.#lastSize;
    this.#lastSize = size;
    if (!shrank) return undefined;
    const outcome = this.#target.shrunk(size);
    if (outcome === undefined) return undefined;
    const event: TruncationEvent = { size, ...outcome };
    this.emit('truncate', event);
    return event;
  }

  /** Stop watching and close the descriptor. Idempotent; the mapping's close() calls it. */
  close(): void {
    if (this.#fd < 0) return;
    this.#stopWatching();
    const fd = this.#fd;
    this.#fd = -1;
    try {
      fs.closeSync(fd);
    } catch {
      // already gone
    }
  }

  #stopWatching(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
