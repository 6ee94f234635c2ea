// `pagewise touch`: read files (or --range, or the pages a --from snapshot recorded) into
// the page cache through a mapping and MADV_POPULATE_READ, off the event loop, with a
// progress bar on a terminal.
import type { Mapping } from '../../mapping';
import { formatBytes } from '../args';
import { failureOf, type Failure } from '../files';
import type { Snapshot } from '../snapshot';
import { EXIT_FAILED, EXIT_OK, type Run, alignedRange, errorCount, inDirectories, out, plural, reportFailure, showPath, withOpenFile } from '../run';

/** Bytes populated per call: the progress bar moves between calls. */
export const TOUCH_CHUNK = 64 * 2 ** 20;

/**
 * Populate [offset, offset + length) of the mapping, reading only the pages not in the page
 * cache yet (mincore first, then MADV_POPULATE_READ over each run of missing pages).
 * Returns the bytes that were resident already.
 */
async function populateMissing(m: Mapping, offset: number, length: number): Promise<number> {
  const page = m.pageSize;
  const { pages } = m.residency({ offset, length });
  const bytesOf = (from: number, to: number): number => Math.min(to * page, length) - from * page;
  let resident = 0;
  let i = 0;
  while (i < pages.length) {
    if (pages[i] & 1) {
      i++;
      continue;
    }
    // A run of missing pages; short resident islands inside it are populated through
    // (cheap: they are only mapped) rather than costing one call each.
    let j = i;
    for (;;) {
      while (j < pages.length && !(pages[j] & 1)) j++;
      let k = j;
      while (k < pages.length && pages[k] & 1 && k - j < POPULATE_GAP) k++;
      if (k < pages.length && !(pages[k] & 1) && k > j) j = k;
      else break;
    }
    await m.populate({ offset: offset + i * page, length: bytesOf(i, j), mode: 'read' });
    i = j;
  }
  for (let p = 0; p < pages.length; p++) if (pages[p] & 1) resident += bytesOf(p, p + 1);
  return resident;
}

/** Resident pages between two missing runs that are populated through rather than skipped. */
const POPULATE_GAP = 32;

/**
 * The byte ranges of a file to read: the --range (or the whole file), or with --from the
 * runs of pages the snapshot recorded as resident; page-aligned and clipped to `size`.
 */
function touchRanges(run: Run, size: number, saved: Array<[number, number]> | undefined, savedPageSize: number): Array<{ offset: number; length: number }> {
  if (saved === undefined) {
    const r = alignedRange(run, size);
    return r.length === 0 ? [] : [r];
  }
  const ranges: Array<{ offset: number; length: number }> = [];
  for (const [first, end] of saved) {
    const page = run.pw.pageSize;
    const offset = Math.floor((first * savedPageSize) / page) * page;
    const stop = Math.min(Math.ceil((end * savedPageSize) / page) * page, size);
    if (stop > offset) ranges.push({ offset, length: stop - offset });
  }
  return ranges;
}

export async function touchCommand(run: Run, progress: boolean, snapshot?: Snapshot): Promise<number> {
  const { pw, io } = run;
  const started = process.hrtime.bigint();
  const saved = new Map(snapshot?.files.map((f) => [f.path, f.resident]));
  const savedPageSize = snapshot?.pageSize ?? pw.pageSize;
  const plan = run.files.map((t) => {
    const runs = snapshot === undefined ? undefined : (saved.get(t.path) ?? []);
    return { target: t, runs, length: touchRanges(run, t.size, runs, savedPageSize).reduce((a, r) => a + r.length, 0) };
  });
  const totalBytes = plan.reduce((a, p) => a + p.length, 0);
  // cli-progress is loaded only when a bar is drawn (start-up time of the other commands).
  const bar =
    progress && io.stdout.isTTY === true
      ? new (await import('cli-progress')).SingleBar({
          stream: io.stdout as unknown as NodeJS.WritableStream,
          format: 'touch [{bar}] {percentage}% | {done} / {all} | {file}',
          hideCursor: true,
          clearOnComplete: true,
          barsize: 30,
        })
      : undefined;
  const payload = (file?: string) => ({ done: formatBytes(progressed), all: formatBytes(totalBytes), ...(file === undefined ? {} : { file }) });
  let progressed = 0; // bytes the bar has moved over (touched, or skipped by a failure)
  let planned = 0; // bytes of the files handled so far, as planned
  let touchedBytes = 0;
  let alreadyResident = 0; // bytes that were in the page cache already (not read again)
  let files = 0;
  const lines: string[] = [];
  const deferred: Failure[] = []; // failures met while the bar is drawn, reported once it is gone
  bar?.start(Math.max(totalBytes, 1), 0, payload(''));
  try {
    for (const p of plan) {
      let touched = 0;
      try {
        await withOpenFile(p.target.path, async (fd, size) => {
          // Map what the file holds now: a file that shrank since it was listed must not be mapped past its end.
          for (const { offset, length } of touchRanges(run, size, p.runs, savedPageSize)) {
            const m = pw.mapFile(fd, { offset, length });
            try {
              for (let pos = 0; pos < length; pos += TOUCH_CHUNK) {
                const n = Math.min(TOUCH_CHUNK, length - pos);
                bar?.update(progressed, payload(showPath(p.target.path)));
                alreadyResident += await populateMissing(m, pos, n);
                touched += n;
                progressed += n;
              }
            } finally {
              m.close();
            }
          }
        });
        files++;
        touchedBytes += touched;
        if (run.verbose) lines.push(`touched ${showPath(p.target.path)} (${formatBytes(touched)})`);
      } catch (err) {
        touchedBytes += touched;
        const f = failureOf(p.target.path, err);
        if ((err as { code?: string }).code === 'EFAULT') f.reason = 'the file shrank while it was being read';
        run.failures.push(f);
        if (bar) deferred.push(f);
        else reportFailure(io, f);
      }
      planned += p.length;
      progressed = Math.max(progressed, planned);
      bar?.update(progressed, payload());
    }
  } finally {
    bar?.stop();
  }
  for (const f of deferred) reportFailure(io, f);
  for (const line of lines) out(run, line);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = seconds > 0 ? ` (${formatBytes(Math.round(touchedBytes / seconds))}/s)` : '';
  if (!run.quiet) {
    const already = alreadyResident > 0 ? ` (${formatBytes(alreadyResident)} of it was resident already and not read again)` : '';
    out(run, `touched ${plural(files, 'file')}${inDirectories(run)}: ${formatBytes(touchedBytes)} in ${seconds.toFixed(2)} s${rate}${already}${errorCount(run)}`);
  }
  return run.failures.length > 0 ? EXIT_FAILED : EXIT_OK;
}
