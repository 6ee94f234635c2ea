// `pagewise evict`: posix_fadvise(POSIX_FADV_DONTNEED) over files or a --range, then
// report what stayed resident (dirty, mapped or locked pages).
import type { FileResidency } from '../../api';
import { clipRange, formatBytes, formatPercent } from '../args';
import { EXIT_FAILED, EXIT_OK, type Run, errorCount, fail, inDirectories, out, plural, showPath, withOpenFile } from '../run';
import { residency } from './residency';

export function evictCommand(run: Run): number {
  const { pw } = run;
  let files = 0;
  let bytes = 0;
  let cachedAfter = 0;
  let totalAfter = 0;
  let unknownAfter = 0;
  for (const target of run.files) {
    try {
      withOpenFile(target.path, (fd, size) => {
      const { offset, length } = clipRange(run.range, size);
      if (run.range === undefined) pw.evict(fd);
      else if (length > 0) pw.evict(fd, { offset, length });
      files++;
      bytes += length;
      // What stayed: dirty pages (until written back), pages mapped or locked by some process.
      let after: FileResidency | undefined;
      if (length > 0) {
        try {
          after = residency(run, fd, target.path, run.range === undefined ? undefined : { offset, length });
          cachedAfter += after.cached;
          totalAfter += after.total;
        } catch {
          unknownAfter++; // evicted, but this process may not see residency (files it neither owns nor can write)
        }
      }
      if (run.verbose) {
        const left = after === undefined ? (length > 0 ? 'residency unknown' : 'nothing to evict') : `${after.cached}/${after.total} pages still resident`;
        out(run, `evicted ${showPath(target.path)} (${formatBytes(length)}): ${left}`);
      }
      });
    } catch (err) {
      fail(run, target.path, err);
    }
  }
  if (!run.quiet) out(
    run,
    `evicted ${plural(files, 'file')}${inDirectories(run)}` +
      `: ${formatBytes(bytes)}` +
      (totalAfter > 0 || unknownAfter === 0
        ? `; still resident ${formatBytes(cachedAfter * pw.pageSize)}` +
          ` (${formatPercent(totalAfter === 0 ? 0 : (100 * cachedAfter) / totalAfter)}), ${cachedAfter}/${totalAfter} pages`
        : '') +
      (unknownAfter > 0 ? `; what stayed is unknown for ${plural(unknownAfter, 'file')} you neither own nor can write` : '') +
      errorCount(run),
  );
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}
