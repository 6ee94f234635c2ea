// The native backend: the addon built from native/*.cc (binding.gyp target
// `pagewise`), loaded with node-gyp-build from prebuilds/ or build/.
//
// The addon's objects already implement BackendMapping (NativeMapping is an
// N-API ObjectWrap), so this file only adapts map()'s request object to the
// addon's positional arguments. The addon keeps only the checks that protect
// memory (mapping open, range inside it, argument types it reads), each a short
// coded error, and reports kernel failures as `{ errno, syscall }` only: the
// public API turns those into Node-style errors (lib/errors.ts kernelError).
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { Backend, BackendMapping, MapRequest, RawFileResidency } from './backend';
import { pagewiseError } from './errors';

/** The addon's exports (native/addon.cc). */
export interface NativeAddon {
  readonly pageSize: number;
  /** The longest view this engine accepts, probed at load (native/limits.cc): 2^32, or 2^53 - 1 on V8 12.4+ (Node 22+, Deno). */
  readonly maxViewLength: number;
  /** The numbers of the bound adviseArgs / residencyBitsArgs calls (native/mapping.cc). */
  readonly callArgs?: Float64Array;
  supports(advice: number): boolean;
  map(
    length: number,
    protection: number,
    shared: boolean,
    fd: number,
    offset: number,
    populate: boolean,
    noreserve: boolean,
    hugePageShift: number,
  ): BackendMapping;
  fileResidency(fd: number, offset: number, length: number, wantPages: boolean): RawFileResidency;
  fadvise(fd: number, offset: number, length: number, advice: number): void;
  accessMode(fd: number): 'read' | 'write' | 'read-write';
  createMemfd(name: string, size: number, sealGrow: boolean): number;
  seals(fd: number): number;
  /** prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME) over an empty range succeeds (native/pressure.cc). */
  supportsAnonName?(): boolean;
  setAnonName?(address: bigint, length: number, name: string): void;
  // Also `cli` (native/cli/): the command line's calls, typed where they are used (lib/cli/stat/native.ts).
}

let cached: NativeAddon | undefined;

/** Loads (once) and returns the raw addon. Throws a clear Error when it cannot. */
export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    throw pagewiseError(
      'ERR_PAGEWISE_NATIVE_UNAVAILABLE',
      `the native backend needs Linux (this is ${process.platform})`,
    );
  }
  const root = path.join(__dirname, '..');
  let addon: NativeAddon;
  try {
    const load = createRequire(__filename)('node-gyp-build') as (dir: string) => NativeAddon;
    addon = load(root);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).trim();
    const e = pagewiseError(
      'ERR_PAGEWISE_NATIVE_UNAVAILABLE',
      `cannot load the native addon from ${root} (${why}); build it with \`npm rebuild pagewise\` (needs a C++ toolchain and Python)`,
    );
    (e as Error & { cause?: unknown }).cause = err;
    throw e;
  }
  if (typeof addon.map !== 'function' || typeof addon.pageSize !== 'number') {
    throw pagewiseError('ERR_PAGEWISE_NATIVE_UNAVAILABLE', `the addon in ${root} is not a Linux build`);
  }
  probeExternalBuffers(addon);
  cached = addon;
  return addon;
}

/**
 * Views of a mapping are external ArrayBuffers. Electron's V8 memory sandbox refuses
 * them, which would make every mapping useless: find out once, at load, so that the
 * package falls back to the simulator with the reason instead.
 */
function probeExternalBuffers(addon: NativeAddon): void {
  try {
    const probe = addon.map(addon.pageSize, 3, false, -1, 0, false, false, 0);
    try {
      probe.view(0, 1);
    } finally {
      probe.close();
    }
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw pagewiseError(
      'ERR_PAGEWISE_NATIVE_UNAVAILABLE',
      `the native addon loaded but cannot expose mapped memory to JavaScript (${why}); ` +
        'external ArrayBuffers are refused here (Electron\'s V8 sandbox?)',
    );
  }
}

/** The Backend over the kernel. Throws (code ERR_PAGEWISE_NATIVE_UNAVAILABLE) when the addon cannot load. */
export function loadNativeBackend(): Backend {
  const addon = loadNativeAddon();
  return {
    kind: 'native',
    pageSize: addon.pageSize,
    maxViewLength: addon.maxViewLength,
    callArgs: addon.callArgs instanceof Float64Array ? addon.callArgs : undefined,
    supports: (advice: number) => addon.supports(advice),
    map: (request: MapRequest): BackendMapping =>
      addon.map(
        request.length,
        request.protection,
        request.shared,
        request.file ? request.file.fd : -1,
        request.file ? request.file.offset : 0,
        request.populate,
        request.noreserve,
        request.hugePageShift,
      ),
    fileResidency: (fd: number, offset: number, length: number, wantPages: boolean) =>
      addon.fileResidency(fd, offset, length, wantPages),
    fadvise: (fd: number, offset: number, length: number, advice: number) => addon.fadvise(fd, offset, length, advice),
    accessMode: (fd: number) => addon.accessMode(fd),
    createMemfd: (name: string, size: number, sealGrow: boolean) => addon.createMemfd(name, size, sealGrow),
    seals: (fd: number) => addon.seals(fd),
    supportsMappingNames: () => (anonNames ??= addon.supportsAnonName?.() === true),
    nameMapping: (region: BackendMapping, name: string): boolean => {
      if (!(anonNames ??= addon.supportsAnonName?.() === true) || region.address === undefined) return false;
      try {
        addon.setAnonName!(region.address, region.length, name);
        return true;
      } catch {
        return false; // e.g. EBADF for shared (shmem) memory: a name is a label, never a failure
      }
    },
  };
}

/** Whether this kernel names anonymous mappings (CONFIG_ANON_VMA_NAME), probed once. */
let anonNames: boolean | undefined;
