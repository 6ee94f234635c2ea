// The reference simulator: a pure-TypeScript model of Linux memory management,
// used when the native addon cannot load (or PAGEWISE_BACKEND=simulator) and as
// the oracle of the differential tests. docs/SIMULATOR.md describes the model, the
// kernel facts it follows, and every divergence from the kernel.
//
//   backend.ts     SimulatorBackend: map(), file residency / fadvise, memory limit and reclaim
//   mapping.ts     SimMapping: the operations on one mapping
//   page-cache.ts  the page cache of files shared by their mappings
//   state.ts       page and VMA state bits
//   extents.ts     the memory itself: page-aligned extents, each its own ArrayBuffer
export { SimulatorBackend } from './backend';
