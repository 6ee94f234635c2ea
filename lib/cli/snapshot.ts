// Snapshots of page-cache residency (`pagewise stat --json --pages`) and re-warming
// from them (`pagewise touch --from FILE`): save which pages of a set of files are
// resident, and after a restart read exactly those back (the happycache idea).
import * as fs from 'node:fs';
import { UsageError } from './args';

/** Resident pages as runs [first, end) of page numbers from the start of the file. */
export type PageRuns = Array<[number, number]>;

export interface SnapshotFile {
  path: string;
  size: number;
  resident: PageRuns;
}

export interface Snapshot {
  pageSize: number;
  files: SnapshotFile[];
}

/** Runs of resident pages (bit 0 set) of a mincore vector whose page 0 is page `first` of the file. */
export function residentRuns(pages: Uint8Array, first = 0): PageRuns {
  const runs: PageRuns = [];
  let i = 0;
  while (i < pages.length) {
    if (!(pages[i] & 1)) {
      i++;
      continue;
    }
    let j = i;
    while (j < pages.length && pages[j] & 1) j++;
    runs.push([first + i, first + j]);
    i = j;
  }
  return runs;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Read a `stat --json --pages` document ('-' = standard input). */
export function readSnapshot(source: string): Snapshot {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(source === '-' ? 0 : source, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read the snapshot '${source}': ${(err as Error).message}`);
  }
  const bad = (why: string) => new UsageError(`'${source}' is not a snapshot from 'pagewise stat --json --pages': ${why}`);
  const d = doc as { pageSize?: unknown; files?: unknown };
  if (typeof d !== 'object' || d === null || !isCount(d.pageSize) || d.pageSize === 0 || !Array.isArray(d.files)) throw bad('no pageSize / files');
  const files: SnapshotFile[] = [];
  for (const f of d.files as Array<{ path?: unknown; size?: unknown; resident?: unknown }>) {
    if (typeof f?.path !== 'string' || !isCount(f.size)) throw bad('a file without path / size');
    if (!Array.isArray(f.resident)) throw bad(`${f.path} has no 'resident' page runs (stat was run without --pages)`);
    const runs: PageRuns = [];
    for (const r of f.resident as unknown[]) {
      if (!Array.isArray(r) || r.length !== 2 || !isCount(r[0]) || !isCount(r[1]) || r[1] <= r[0]) throw bad(`${f.path} has a run that is not [first, end)`);
      runs.push([r[0], r[1]]);
    }
    files.push({ path: f.path, size: f.size, resident: runs });
  }
  return { pageSize: d.pageSize, files };
}
