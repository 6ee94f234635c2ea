// Output straight to a file descriptor (fs.writeSync) for `pagewise stat`: Node builds
// process.stdout lazily, and building it loads the whole stream machinery, a measurable
// part of a short command's start-up. The stream is still used when the descriptor cannot
// take the text now (EAGAIN: a non-blocking pipe or terminal), and for isTTY / columns.
import * as fs from 'node:fs';
import type { CliStream } from './run';

export function fdStream(fd: number, stream: () => NodeJS.WriteStream): CliStream {
  let fallback: NodeJS.WriteStream | undefined;
  return {
    write(chunk: string | Uint8Array): boolean {
      if (fallback !== undefined) return fallback.write(chunk);
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      let done = 0;
      while (done < bytes.length) {
        try {
          done += fs.writeSync(fd, bytes, done, bytes.length - done);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // `pagewise stat dir | head`: the reader is gone; end quietly, as for the stream.
          if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
          if (code !== 'EAGAIN') throw err;
          fallback = stream();
          // The stream may write later: it gets bytes of its own, not the caller's buffer.
          return fallback.write(Buffer.from(bytes.subarray(done)));
        }
      }
      return true;
    },
    /** The descriptor while text still goes to it directly; undefined once the stream took over (its queue comes first). */
    get fd(): number | undefined {
      return fallback === undefined ? fd : undefined;
    },
    get isTTY(): boolean {
      return stream().isTTY === true;
    },
    get columns(): number | undefined {
      return stream().columns;
    },
  };
}
