// A file truncated under its mapping, run as a child process so that a signal
// would be observed rather than end the test run.
//
//   node test/hardening/truncate-child.mjs api     -> every API path; prints JSON outcomes; exit 0
//   node test/hardening/truncate-child.mjs touch   -> reads the buffer past the new end (the
//                                                    documented hazard: dies by SIGBUS)
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const pw = require('../../dist/index.js');
const PAGE = pw.pageSize;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewise-trunc-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

async function outcome(fn) {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    if (!(err instanceof Error) || typeof err.code !== 'string') return `UNTYPED ${String(err)}`;
    return err.code;
  }
}

const mode = process.argv[2] ?? 'api';
if (mode === 'touch') {
  const file = path.join(dir, 'touch');
  fs.writeFileSync(file, Buffer.alloc(8 * PAGE, 1));
  const m = pw.mapFile(file);
  const b = m.buffer;
  fs.truncateSync(file, PAGE);
  // The process dies below without running its exit handler: remove the directory now (the
  // mapping keeps the truncated file itself alive).
  fs.rmSync(dir, { recursive: true, force: true });
  console.log('reading past the new end');
  console.log(b[4 * PAGE]); // SIGBUS
  process.exit(0);
}

const results = {};
const cases = [];
for (const shared of [false, true]) {
  for (const newSize of [0, 2 * PAGE, 2 * PAGE + 100]) cases.push({ shared, newSize });
}
for (const { shared, newSize } of cases) {
  const file = path.join(dir, `f-${shared}-${newSize}`);
  fs.writeFileSync(file, Buffer.alloc(8 * PAGE + 10, 7));
  const m = pw.mapFile(file, { mode: shared ? 'shared' : 'private' });
  const fd = fs.openSync(file, 'r');
  fs.truncateSync(file, newSize);
  const past = { offset: 4 * PAGE };
  const r = {};
  r['populate'] = await outcome(() => m.populate());
  r['populate read past'] = await outcome(() => m.populate({ ...past, mode: 'read' }));
  r['populate write past'] = await outcome(() => m.populate({ ...past, mode: 'write' }));
  for (const advice of pw.ADVICE_NAMES) r[`advise ${advice}`] = await outcome(() => m.advise(advice, past));
  r['residency'] = await outcome(() => m.residency());
  r['flush'] = await outcome(() => m.flush({ invalidate: true }));
  r['flushSync'] = await outcome(() => m.flushSync());
  r['lock'] = await outcome(() => m.lock());
  r['lock onFault'] = await outcome(() => m.lock({ onFault: true }));
  r['unlock'] = await outcome(() => m.unlock());
  r['protect read'] = await outcome(() => m.protect('read', past));
  r['protect read-write'] = await outcome(() => m.protect('read-write'));
  r['buffer (no access)'] = await outcome(() => m.buffer.length);
  r['view (no access)'] = await outcome(() => m.view(5 * PAGE, 10).length);
  r['resize'] = await outcome(() => m.resize(PAGE));
  r['fileResidency'] = await outcome(() => pw.fileResidency(file, { pages: true, offset: 0, length: 8 * PAGE }));
  r['fileResidency cachestat'] = await outcome(() => pw.fileResidency(fd));
  r['evict'] = await outcome(() => pw.evict(file, { offset: 0, length: 8 * PAGE }));
  r['prefetch'] = await outcome(() => pw.prefetch(fd, { offset: 4 * PAGE, length: 8 * PAGE }));
  r['mapFile old length'] = await outcome(() => pw.mapFile(file, { length: 8 * PAGE }).close());
  r['mapFile again'] = await outcome(() => pw.mapFile(file).close());
  // Bytes inside the new end stay readable through the mapping.
  r['read inside new end'] = newSize === 0 ? 'n/a' : await outcome(() => m.buffer[newSize - 1]);
  r['close'] = await outcome(() => m.close());
  fs.closeSync(fd);
  results[`${shared ? 'shared' : 'private'} -> ${newSize}`] = r;
}
console.log(JSON.stringify(results));
