// Which backend the package uses: the native addon when it loads, else the
// reference simulator (with one warning). PAGEWISE_BACKEND=native|simulator forces one.
import type { Backend } from './backend';
import { invalidArgValue } from './errors';
import { loadNativeBackend } from './native';
import { SimulatorBackend } from './simulator';

export function selectBackend(env: NodeJS.ProcessEnv = process.env): Backend {
  const forced = env.PAGEWISE_BACKEND;
  if (forced === 'native') return loadNativeBackend();
  if (forced === 'simulator') return new SimulatorBackend();
  if (forced !== undefined && forced !== '') {
    throw invalidArgValue('PAGEWISE_BACKEND', forced, "must be 'native' or 'simulator'");
  }
  try {
    return loadNativeBackend();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // One prefix: the reasons from lib/native.ts do not repeat it.
    process.emitWarning(`pagewise uses the reference simulator: ${why}`, {
      code: 'PAGEWISE_SIMULATED',
    });
    return new SimulatorBackend();
  }
}
