// The package's default Pagewise instance, in a module of its own so that the
// volatile layer (lib/volatile/) can use it without importing lib/index.ts (which
// re-exports the arena: an import cycle).
import { Pagewise } from './api';
import { selectBackend } from './select';

export const defaultPagewise: Pagewise = new Pagewise(selectBackend());
