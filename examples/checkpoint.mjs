// Incremental checkpoints of a large in-memory state: the first checkpoint writes
// everything, every later one appends only the pages written since the one before
// (mapping.trackWrites(): userfaultfd write-protect on Linux 6.7+, no signal
// handlers, writes proceed as usual). docs/WRITE-TRACKING.md.
//
//   node examples/checkpoint.mjs [MiB] [percent of pages written per round]
//
// Reuse: import { Checkpointer, restore } from './checkpoint.mjs'.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { backend, map, pageSize } from 'pagewise';

/**
 * Checkpoints of `mapping` into `dir`: full() writes an image of the whole state (image.bin)
 * and starts an empty log (log.bin); incremental() appends one record to the log holding only
 * the pages written since the checkpoint before: a header (record length, run count, then the
 * offset and length of every run, 64-bit little-endian) followed by the bytes of the runs, in
 * one sequential write. restore() replays the image and the log.
 */
export class Checkpointer {
  #mapping;
  #tracker;
  #dir;
  #log = -1;
  #logEnd = 0;

  constructor(mapping, dir) {
    this.#mapping = mapping;
    this.#dir = dir;
    this.#tracker = mapping.trackWrites(); // from here on, every write is recorded
  }

  /** Write the whole state and start a new log. Returns the bytes written. */
  full() {
    this.#tracker.reset();
    const image = fs.openSync(path.join(this.#dir, 'image.bin'), 'w');
    let bytes = 0;
    try {
      // Views are limited in length (the engine's ArrayBuffer limit): write in parts of at most 1 GiB.
      for (let at = 0; at < this.#mapping.length; at += 1 << 30) {
        const view = this.#mapping.view(at, Math.min(1 << 30, this.#mapping.length - at));
        bytes += writeAll(image, [view], at);
      }
      fs.fsyncSync(image);
    } finally {
      fs.closeSync(image);
    }
    if (this.#log >= 0) fs.closeSync(this.#log);
    this.#log = fs.openSync(path.join(this.#dir, 'log.bin'), 'w');
    this.#logEnd = 0;
    return bytes;
  }

  /** Append the pages written since the last checkpoint to the log. Returns the bytes written. */
  incremental() {
    if (this.#log < 0) throw new Error('write a full checkpoint first');
    const runs = this.#tracker.written();
    // Re-arm before copying: a write from here on counts for the next checkpoint
    // (the bytes copied below may already include it, which does no harm).
    this.#tracker.reset();
    const header = new BigUint64Array(2 + 2 * runs.length);
    let data = 0;
    runs.forEach(({ offset, length }, i) => {
      header[2 + 2 * i] = BigInt(offset);
      header[3 + 2 * i] = BigInt(length);
      data += length;
    });
    header[0] = BigInt(header.byteLength + data);
    header[1] = BigInt(runs.length);
    const parts = [new Uint8Array(header.buffer)];
    for (const { offset, length } of runs) parts.push(this.#mapping.view(offset, length));
    const bytes = writeAll(this.#log, parts, this.#logEnd);
    fs.fsyncSync(this.#log);
    this.#logEnd += bytes;
    return bytes;
  }

  close() {
    this.#tracker.close();
    if (this.#log >= 0) fs.closeSync(this.#log);
    this.#log = -1;
  }
}

/** The state the checkpoints in `dir` hold: the image with every log record applied in order. */
export function restore(dir) {
  const state = fs.readFileSync(path.join(dir, 'image.bin'));
  const log = fs.readFileSync(path.join(dir, 'log.bin'));
  for (let at = 0; at < log.length; ) {
    const length = Number(log.readBigUInt64LE(at));
    const count = Number(log.readBigUInt64LE(at + 8));
    let data = at + 16 + 16 * count;
    for (let i = 0; i < count; i++) {
      const offset = Number(log.readBigUInt64LE(at + 16 + 16 * i));
      const len = Number(log.readBigUInt64LE(at + 24 + 16 * i));
      log.copy(state, offset, data, data + len);
      data += len;
    }
    at += length;
  }
  return state;
}

/** fs.writevSync until every byte of `parts` is at `position` onward; returns the bytes written. */
function writeAll(fd, parts, position) {
  let total = parts.reduce((n, p) => n + p.byteLength, 0);
  const want = total;
  const pending = [...parts];
  while (total > 0) {
    let n = fs.writevSync(fd, pending, position);
    position += n;
    total -= n;
    // A short write: drop what was written and go on from there.
    while (n > 0 && pending.length > 0 && n >= pending[0].byteLength) n -= pending.shift().byteLength;
    if (n > 0) pending[0] = pending[0].subarray(n);
  }
  return want;
}

/** Write `percent` % of the pages of `mapping` (spread at random). */
export function touch(mapping, percent, round) {
  const pages = mapping.length / pageSize;
  const count = Math.max(1, Math.round((pages * percent) / 100));
  for (let i = 0; i < count; i++) {
    const p = crypto.randomInt(pages);
    mapping.view(p * pageSize, 8).fill(round);
  }
}


function main() {
  const mib = Number(process.argv[2] ?? 64);
  const percent = Number(process.argv[3] ?? 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-checkpoint-'));
  const state = map(mib << 20);
  try {
    crypto.randomFillSync(state.view(0, Math.min(state.length, 1 << 30)));
    const cp = new Checkpointer(state, dir);
    let t0 = process.hrtime.bigint();
    const full = cp.full();
    const fullMs = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`backend: ${backend}; state ${mib} MiB, ${percent}% of the pages written per round`);
    console.log(`full checkpoint: ${full} bytes in ${fullMs.toFixed(1)} ms`);
    for (let round = 1; round <= 3; round++) {
      touch(state, percent, round);
      t0 = process.hrtime.bigint();
      const bytes = cp.incremental();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const same = Buffer.compare(restore(dir), state.view(0, state.length)) === 0;
      console.log(
        `incremental checkpoint ${round}: ${bytes} bytes (${((100 * bytes) / full).toFixed(2)}% of full) in ${ms.toFixed(1)} ms; ` +
          `image + log restore the state: ${same ? 'yes' : 'NO'}`,
      );
    }
    cp.close();
  } finally {
    state.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
