// An http service that caches rendered JSON pages in a VolatileCache the way one would
// with lru-cache: an async fetchMethod (concurrent requests for one page render it once),
// a ttl with stale-while-revalidate, and prom-client metrics labelled with the cache's
// name. Each response sends the cached bytes themselves (no copy) and releaseAfter()
// releases the handle when the response is done, however slowly the client reads.
//
//   node examples/cache-service.mjs               serve on :8080 (GET /page/<n>, /metrics)
//   node examples/cache-service.mjs --self-test   start on a free port, load it (concurrent
//                                                 requests, a slow reader), check every body
//                                                 and the metrics, print a summary, exit
// Run `npm ci` first (builds the addon and dist/). prom-client is a peer dependency.
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { collectMetrics, releaseAfter, VolatileCache } from 'pagewise';

const MiB = 1024 * 1024;
let renders = 0;

/** "Rendering" page n: JSON of 4 KiB (even n) or 200 KiB (odd n), after a 20 ms "database" wait. */
async function render(n, signal) {
  await sleep(20, undefined, { signal });
  renders++;
  const rows = n % 2 === 0 ? 40 : 2000;
  const items = Array.from({ length: rows }, (_, i) => ({ id: i, page: n, title: `item ${i} of page ${n}`.padEnd(60, '.') }));
  return JSON.stringify({ page: n, items });
}

export function startService(port = 8080) {
  const cache = new VolatileCache({
    name: 'pages', // labels its metrics (and its memory mapping) across restarts
    budget: 64 * MiB,
    ttl: 60_000,
    allowStale: true, // a stale page is served at once while it is rendered again
    fetchMethod: (key, _stale, { signal }) => render(Number(key), signal),
  });
  const registry = new Registry();
  const metrics = collectMetrics({ registry, caches: [cache] });
  const server = http.createServer(async (req, res) => {
    const page = /^\/page\/(\d+)$/.exec(req.url ?? '');
    try {
      if (page) {
        const h = await cache.fetch(page[1]);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': h.bytes.length, 'x-cache': h.outcome });
        res.end(h.bytes); // the cached bytes, no copy...
        releaseAfter(res, h); // ...released once the response has finished (or failed)
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(await registry.metrics());
      } else {
        res.writeHead(404).end();
      }
    } catch (err) {
      res.writeHead(500).end(String(err?.message ?? err));
    }
  });
  server.listen(port);
  return {
    server,
    cache,
    close() {
      metrics.close();
      server.close();
      cache.close();
    },
  };
}

function get(port, path, { slow = false } = {}) {
  return new Promise((resolve, reject) => {
    http
      .get({ port, path, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => {
          chunks.push(c);
          if (slow) {
            // A slow client: pause after every chunk, so the response stays in flight for a while.
            res.pause();
            setTimeout(() => res.resume(), 30);
          }
        });
        res.on('end', () => resolve({ status: res.statusCode, outcome: res.headers['x-cache'], body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function selfTest() {
  const service = startService(0);
  await new Promise((r) => service.server.once('listening', r));
  const { port } = service.server.address();
  const pages = [0, 1, 2, 3];
  const expected = await Promise.all(pages.map((n) => render(n)));
  renders = 0;
  let wrong = 0;
  const check = (n, r) => {
    if (r.status !== 200 || r.body !== expected[n]) wrong++;
  };
  // 50 concurrent requests for each of 4 pages, and a slow reader of a 200 KiB page.
  const results = await Promise.all([
    ...pages.flatMap((n) => Array.from({ length: 50 }, () => get(port, `/page/${n}`).then((r) => ({ n, r })))),
    get(port, '/page/1', { slow: true }).then((r) => ({ n: 1, r })),
  ]);
  for (const { n, r } of results) check(n, r);
  const again = await get(port, '/page/3');
  check(3, again);
  const metrics = (await get(port, '/metrics')).body;
  const entries = /^pagewise_cache_entries\{cache="pages"\} (\d+)$/m.exec(metrics)?.[1];
  // Every handle was released by releaseAfter once its response finished.
  await sleep(50);
  const { handles } = service.cache.stats;
  console.log(`responses: ${results.length + 1}, wrong bodies: ${wrong}, renders: ${renders} for ${pages.length} pages`);
  console.log(`second request of page 3: ${again.outcome}`);
  console.log(`metrics: pagewise_cache_entries{cache="pages"} ${entries}`);
  console.log(`handles still held: ${handles}`);
  service.close();
  if (wrong !== 0 || renders !== pages.length || entries !== String(pages.length) || handles !== 0) process.exitCode = 1;
}

if (process.argv.includes('--self-test')) await selfTest();
else {
  startService(8080);
  console.log('serving on http://localhost:8080 (GET /page/<n>, /metrics)');
}
