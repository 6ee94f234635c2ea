// A mapping's buffer sent to a worker with postMessage, with and without a
// transfer list. Node marks the ArrayBuffers of addon-owned memory (external
// buffers with a finalizer) untransferable: on Node 20 a transfer list
// holding one is ignored and the memory is copied; since Node 21 (nodejs/node
// PR #47604) postMessage throws a DataCloneError instead. Either way the
// sender keeps its view; after close() in the sender it reads zeros.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pagewise } from '../../lib/index';

const pw = pagewise;
const PAGE = pw.pageSize;
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

let worker: Worker;
beforeAll(() => {
  worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', (msg) => {
       const v = msg && msg.v;
       let first = null, kind = typeof v;
       if (v instanceof ArrayBuffer) { kind = 'ArrayBuffer'; first = new Uint8Array(v)[0]; new Uint8Array(v)[0] = 0x99; }
       else if (ArrayBuffer.isView(v)) { kind = v.constructor.name; first = v[0]; v[0] = 0x99; }
       else if (v && typeof v === 'object') kind = JSON.stringify(v);
       parentPort.postMessage({ kind, length: v && v.byteLength, first });
     });`,
    { eval: true },
  );
});
afterAll(async () => {
  await worker.terminate();
});

function roundTrip(msg: unknown, transfer?: ArrayBuffer[]): Promise<{ kind: string; length: number; first: number } | { threw: Error }> {
  return new Promise((resolve) => {
    const onMessage = (reply: { kind: string; length: number; first: number }) => resolve(reply);
    worker.once('message', onMessage);
    try {
      worker.postMessage(msg, transfer);
    } catch (err) {
      worker.off('message', onMessage);
      resolve({ threw: err as Error });
    }
  });
}

describe('postMessage of a mapping buffer', () => {
  it('without a transfer list: the worker gets a copy; the mapping is untouched', async () => {
    using m = pw.map(2 * PAGE);
    m.buffer.fill(7);
    const reply = await roundTrip({ v: m.buffer });
    expect(reply).toEqual({ kind: 'Uint8Array', length: 2 * PAGE, first: 7 });
    expect(m.buffer[0]).toBe(7); // the worker wrote 0x99 into its copy only
    const part = m.view(PAGE, 10);
    expect(await roundTrip({ v: part })).toEqual({ kind: 'Uint8Array', length: 10, first: 7 });
  });

  it.skipIf(pw.kind !== 'native')(
    `with a transfer list: ${NODE_MAJOR >= 21 ? 'DataCloneError' : 'copied, not transferred'} on Node ${NODE_MAJOR}; the sender keeps its view, which reads zeros after close() (simulator: window buffers are plain ArrayBuffers, see docs/RELIABILITY.md)`,
    async () => {
      const m = pw.map(PAGE);
      const view = m.buffer;
      view.fill(5);
      for (const msg of [{ v: view }, { v: view.buffer }]) {
        const reply = await roundTrip(msg, [view.buffer as ArrayBuffer]);
        if (NODE_MAJOR >= 21) {
          expect('threw' in reply && reply.threw.name).toBe('DataCloneError');
        } else {
          expect(reply).toMatchObject({ length: PAGE, first: 5 });
        }
        expect(view.length).toBe(PAGE); // not detached: the memory never left this thread
        expect(view[0]).toBe(5);
      }
      const local = structuredClone(view.buffer as ArrayBuffer);
      m.close();
      // close() lets go of the memory but leaves the view attached (docs/RELIABILITY.md): zeros now.
      expect(view.length).toBe(PAGE);
      expect(view[0]).toBe(0);
      expect(new Uint8Array(local)[0]).toBe(5); // copies outlive the mapping
      // A detached view cannot be sent at all: Node's DataCloneError, no crash.
      const other = pw.map(PAGE);
      const detached = other.buffer;
      other.detachView(detached);
      const after = await roundTrip({ v: detached });
      expect('threw' in after && after.threw.name).toBe('DataCloneError');
      other.close();
    },
  );

  it.skipIf(pw.kind !== 'simulator')(
    'with a transfer list on the simulator: the bytes move to the worker, the sender\'s view detaches, the mapping keeps working (zeros there)',
    async () => {
      using m = pw.map(2 * PAGE);
      const view = m.view(0, PAGE);
      view.fill(5);
      const reply = await roundTrip({ v: view }, [view.buffer as ArrayBuffer]);
      expect(reply).toMatchObject({ length: PAGE, first: 5 });
      expect(view.length).toBe(0);
      expect(m.buffer[0]).toBe(0); // the simulator gave the page fresh memory
      m.buffer[0] = 9;
      m.advise('dontneed');
      expect(m.buffer[0]).toBe(0);
      expect(m.residency().total).toBe(2);
    },
  );

  it('the Mapping object itself clones to its public fields only; the memory is not shared', async () => {
    using m = pw.map(PAGE);
    const reply = await roundTrip({ v: m });
    expect(JSON.parse((reply as { kind: string }).kind)).toEqual({ kind: 'anonymous', shared: false });
  });

  it('mappings made and closed in a worker, and a worker terminated mid-work, do not disturb this thread', async () => {
    using mine = pw.map(PAGE);
    mine.buffer.fill(3);
    const dist = require.resolve('../../dist/index.js');
    for (let i = 0; i < 4; i++) {
      const w = new Worker(
        `const pw = require(${JSON.stringify(dist)});
         const { parentPort } = require('node:worker_threads');
         const m = pw.map(${64 * PAGE});
         m.buffer.fill(1);
         m.populate().catch(() => {});
         const view = m.buffer;
         parentPort.postMessage(view);
         if (${i} % 2) m.close();
         setInterval(() => {}, 1000);`,
        { eval: true },
      );
      const copy = await new Promise<Uint8Array>((resolve) => w.once('message', resolve));
      await w.terminate();
      expect(copy.length).toBe(64 * PAGE);
      expect(copy[0]).toBe(1);
    }
    expect(mine.buffer.every((b) => b === 3)).toBe(true);
  });
});
