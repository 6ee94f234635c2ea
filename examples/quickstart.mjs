// pagewise in one minute: map memory, watch residency, free it lazily, let the
// kernel take it back. Run after `npm ci`:  node examples/quickstart.mjs
import { backend, map, pageSize } from '../dist/index.mjs';

const pages = 8;
const m = map(pages * pageSize); // anonymous, private, zero-filled

const show = (label) => {
  const r = m.residency();
  const strip = Array.from(r.pages, (p) => (p ? '#' : '.')).join('');
  console.log(`${label.padEnd(38)} [${strip}] ${r.resident}/${r.total} resident, first byte ${m.buffer[0]}`);
};

console.log(`backend: ${backend}, page size: ${pageSize} bytes\n`);
show('fresh mapping (nothing touched)');

m.buffer.fill(42); // first touch faults every page in
show('after writing 42 everywhere');

m.advise('free'); // MADV_FREE: the kernel may take the pages whenever it needs memory
show("after advise('free')  (still there)");

m.buffer[3 * pageSize] = 42; // a write after FREE keeps that page
m.advise('pageout'); // reclaim now: clean lazy-free pages are discarded
show("after advise('pageout')");
console.log(`page 3 was written after FREE, so it kept its data: ${m.buffer[3 * pageSize]}`);

const advised = m.advise('dontneed', { offset: 100, length: 2 * pageSize });
console.log(`\ndestructive advice rounds inward: asked for bytes 100..${100 + 2 * pageSize}, advised`, advised);

m.close(); // detaches m.buffer (length 0) and unmaps
