// A node:http service that caches rendered items in a VolatileCache, listens to memory
// pressure, and exports Prometheus metrics. Run it under a memory limit and watch: RSS
// climbs past the limit (MADV_FREE'd pages still count there), effective memory stays
// under it, and the figures say why (LazyFree).
//
//   node examples/pressure-service.mjs                 serve on :8080 (GET /item/<n>, /metrics, /memory)
//   node examples/pressure-service.mjs --demo 256      run it in a fresh 256 MiB memory cgroup
//                                                      (needs a writable cgroup: root or a delegated one),
//                                                      load it for 20 s and print a table every second
//                                                      (--seconds N: for N s)
// Shipped in the package (node node_modules/pagewise/examples/pressure-service.mjs); in a clone run
// `npm ci` first (builds the addon and dist/). prom-client is optional: without it /metrics says so.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectMetrics, memoryUsage, VolatileCache, watchMemoryPressure } from 'pagewise';

const MiB = 1024 * 1024;
const ITEM = 256 * 1024;
const args = process.argv.slice(2);

/** "Rendering" an item: 256 KiB that depend on its id (expensive in real life). */
function render(id, into) {
  const words = new Uint32Array(into.buffer, into.byteOffset, into.byteLength / 4);
  let x = id * 2654435761;
  for (let i = 0; i < words.length; i++) words[i] = x = (x ^ (x << 13) ^ (x >>> 17) ^ i) >>> 0;
  return into;
}

function serve(port) {
  // The cache listens to the watcher: on 'moderate' it makes its unpinned entries volatile now
  // and evicts down to its low watermark, on 'critical' it purges every unpinned entry
  // (VolatileCache.handlePressure) — before the OOM killer has to look.
  const pressure = watchMemoryPressure();
  // A 1 GiB budget: far more than the container holds. Unpinned items are MADV_FREE'd, so
  // the kernel takes them back under pressure instead of OOM-killing the service.
  const cache = new VolatileCache({ budget: 1024 * MiB, arenaSize: 1024 * MiB, pressure });
  const scratch = new Uint8Array(ITEM); // produce() output is copied: one buffer, no garbage
  let metrics;
  let metricsError;
  try {
    metrics = collectMetrics({ pressure, caches: { items: cache }, arenas: { items: cache.arena } });
  } catch (err) {
    metricsError = err.message; // prom-client not installed
  }
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const item = /^\/item\/(\d+)$/.exec(url.pathname);
    if (item) {
      const id = Number(item[1]);
      const h = cache.get(id, (k) => render(k, scratch));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-cache': h.outcome });
      res.end(Buffer.from(h.bytes)); // copied out: the handle can be released now
      h.release();
    } else if (url.pathname === '/metrics') {
      if (metrics === undefined) {
        res.writeHead(501).end(`${metricsError}\n`);
        return;
      }
      const { register } = await import('prom-client');
      res.writeHead(200, { 'content-type': register.contentType });
      res.end(await register.metrics());
    } else if (url.pathname === '/memory') {
      const u = memoryUsage();
      const s = cache.stats;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          rssMiB: u.rss / MiB,
          effectiveMiB: u.effective / MiB,
          lazyFreeMiB: u.lazyFree / MiB,
          cacheEntries: s.entries,
          cacheMiB: s.bytes / MiB,
          hits: s.hits,
          misses: s.misses,
          purged: s.purged,
          pressure: pressure.counts,
          pressureSources: pressure.sources.map((x) => `${x.kind}: ${x.detail}`),
        }),
      );
    } else res.writeHead(404).end();
  });
  server.listen(port, () => console.log(`listening on :${server.address().port} (pressure sources: ${pressure.supported ? pressure.sources.map((s) => s.kind).join(', ') : pressure.reason})`));
  return server;
}

/** --demo: the service in a child cgroup with a limit, loaded from here. */
async function demo(limitMiB, seconds) {
  // The cgroups this process is in: pagewise's own helper (in the package, not in its public API).
  const { ownCgroups } = await import(new URL('../dist/cgroup.js', import.meta.url).href);
  const parent = ownCgroups().v1;
  const v2 = ownCgroups().v2;
  let dir;
  let limitFile;
  if (parent !== undefined) {
    dir = path.join(parent, `pressure-example-${process.pid}`);
    limitFile = 'memory.limit_in_bytes';
  } else if (v2 !== undefined && fs.existsSync(path.join(v2, 'cgroup.subtree_control'))) {
    dir = path.join(v2, `pressure-example-${process.pid}`);
    limitFile = 'memory.max';
  }
  try {
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, limitFile), String(limitMiB * MiB));
  } catch (err) {
    console.log(`cannot make a memory cgroup here (${err.message}): run without --demo and limit the service yourself`);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  // The service picks a free port and says which on its first line.
  const child = spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs'), process.execPath, self, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve) => {
    let text = '';
    const onData = (chunk) => {
      text += chunk;
      const m = /listening on :(\d+)/.exec(text);
      if (m === null) return;
      child.stdout.off('data', onData);
      process.stdout.write(text);
      child.stdout.pipe(process.stdout);
      resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.once('exit', () => resolve(undefined));
  });
  const get = (p) =>
    new Promise((resolve, reject) => {
      http
        .get({ port, path: p, agent: false }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        })
        .on('error', reject);
    });
  if (port === undefined) {
    console.log('the service exited before it listened');
    fs.rmdirSync(dir);
    process.exitCode = 1;
    return;
  }
  console.log(`limit ${limitMiB} MiB; requesting ever new items (256 KiB each), then old ones again\n`);
  console.log('  s   rss MiB  effective MiB  lazyFree MiB  cached MiB  hits  misses  purged  pressure (mod/crit)');
  const t0 = Date.now();
  let next = 0;
  let lastPrint = 0;
  let killed = false;
  child.on('exit', (code, signal) => {
    killed = signal === 'SIGKILL';
    if (killed) console.log(`\nthe service was killed (${signal}): OOM`);
  });
  while (Date.now() - t0 < seconds * 1000 && child.exitCode === null && !killed) {
    // Mostly new items (the cache keeps growing), sometimes an old one (hit, or purged and re-rendered).
    const id = Math.random() < 0.8 ? next++ : Math.floor(Math.random() * Math.max(1, next));
    try {
      await get(`/item/${id}`);
    } catch {
      break;
    }
    if (Date.now() - lastPrint >= 1000) {
      lastPrint = Date.now();
      const m = JSON.parse((await get('/memory')).toString());
      const f = (x) => String(Math.round(x)).padStart(8);
      console.log(
        `${String(Math.round((Date.now() - t0) / 1000)).padStart(3)} ${f(m.rssMiB)} ${f(m.effectiveMiB).padStart(14)} ${f(m.lazyFreeMiB).padStart(13)} ` +
          `${f(m.cacheMiB).padStart(11)} ${String(m.hits).padStart(5)} ${String(m.misses).padStart(7)} ${String(m.purged).padStart(7)}  ${m.pressure.moderate}/${m.pressure.critical}`,
      );
    }
  }
  if (!killed) {
    const m = JSON.parse((await get('/memory')).toString());
    console.log(`\nsurvived. rss ${Math.round(m.rssMiB)} MiB (limit ${limitMiB}), effective ${Math.round(m.effectiveMiB)} MiB: the difference is LazyFree,`);
    console.log('memory the kernel takes back whenever it needs it. Pressure sources:');
    for (const s of m.pressureSources) console.log(`  ${s}`);
    child.kill('SIGTERM');
  }
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
  for (let i = 0; i < 100; i++) {
    try {
      fs.rmdirSync(dir);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const demoAt = args.indexOf('--demo');
const secondsAt = args.indexOf('--seconds');
if (demoAt >= 0) await demo(Number(args[demoAt + 1] ?? 256), secondsAt >= 0 ? Number(args[secondsAt + 1]) : 20);
else {
  const portAt = args.indexOf('--port');
  serve(portAt >= 0 ? Number(args[portAt + 1]) : 8080);
}
