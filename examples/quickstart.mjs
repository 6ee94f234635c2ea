// pagewise in one minute: map memory, watch residency, free it lazily, let the
// kernel take it back. Shipped in the package:
//   node node_modules/pagewise/examples/quickstart.mjs    (in a clone, after `npm ci`: node examples/quickstart.mjs)
import { backend, map, pageSize } from 'pagewise';

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

// A write after FREE makes that page dirty again, so the kernel keeps it. Write a value the
// page does not hold yet: only a real change is a write anyone (the kernel, or the
// reference simulator on other systems) can tell from "nothing happened".
m.buffer[3 * pageSize] = 7;
m.advise('pageout'); // reclaim now: clean lazy-free pages are discarded
show("after advise('pageout')");
console.log(`page 3 was written (7) after FREE, so it kept its data: ${m.buffer[3 * pageSize]} ${m.buffer[3 * pageSize + 1]} (the rest of the page kept 42 too)`);
console.log(`page 0 was not written again: ${m.buffer[0] === 0 ? 'it was dropped and reads as 0' : `it still holds ${m.buffer[0]} (the kernel did not take it this time)`}`);

const advised = m.advise('dontneed', { offset: 100, length: 2 * pageSize });
console.log(`\ndestructive advice rounds inward: asked for bytes 100..${100 + 2 * pageSize}, advised`, advised);

m.close(); // detaches m.buffer (length 0) and unmaps
