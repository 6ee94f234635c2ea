// Runs the CLI's main() in-process with string sinks for stdout and stderr (shared by the
// CLI test files).
import { main } from '../lib/cli/main';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sink(isTTY = false, columns?: number) {
  const chunks: string[] = [];
  const stream = { write: (s: string) => chunks.push(String(s)) > 0, isTTY, ...(columns === undefined ? {} : { columns }) };
  return { chunks, stream };
}

export async function runCli(
  argv: string[],
  options: { tty?: boolean; columns?: number; signal?: AbortSignal } = {},
): Promise<CliResult> {
  const out = sink(options.tty, options.columns);
  const err = sink();
  const code = await main(argv, { stdout: out.stream, stderr: err.stream, signal: options.signal });
  return { code, stdout: out.chunks.join(''), stderr: err.chunks.join('') };
}
