// Does the cache-under-pressure workload (`pagewise demo`, test/pressure.test.ts) survive its
// memory cgroup, with the memory-pressure listener on and off? Runs the volatile child N times
// in a row for each variant under the running Node and counts survivals (exit 0, no corrupt
// entry) and OOM kills. Standalone: needs a writable memory cgroup.
//   node bench/pressure-survival.mjs [runs=20] [limitMiB=256]
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const demo = require(path.join(ROOT, 'dist', 'cli', 'demo.js'));
const runs = Number(process.argv[2] ?? 20);
const limitMiB = Number(process.argv[3] ?? 256);
const support = demo.findMemoryCgroup();
if (support.version === 0) {
  console.log(`pressure-survival: ${support.reason}: nothing measured`);
  process.exit(0);
}
for (const listener of ['on', 'off']) {
  let survived = 0;
  let killed = 0;
  const intact = [];
  const events = [];
  for (let i = 0; i < runs; i++) {
    const r = await demo.runChildInCgroup(support, 'volatile', limitMiB, {
      ...process.env,
      PAGEWISE_BACKEND: 'native',
      PAGEWISE_DEMO_LISTENER: listener,
    });
    if (r.code === 0 && r.report !== undefined && r.report.corrupt === 0) survived++;
    if (r.signal === 'SIGKILL') killed++;
    if (r.report !== undefined) intact.push(r.report.intact);
    if (r.report?.pressureEvents) events.push(`${r.report.pressureEvents.moderate}/${r.report.pressureEvents.critical}`);
    if (process.env.VERBOSE) console.log(JSON.stringify(r));
  }
  console.log(
    `${process.version} listener ${listener}: ${survived}/${runs} survived, ${killed} OOM-killed; ` +
      `intact entries per run ${intact.join(',')}${events.length ? `; events moderate/critical ${events.join(',')}` : ''}`,
  );
}
