// Following a memory-pressure source (lib/pressure.ts's watcher, or any emitter of
// 'pressure' events): shared by the arena and the cache.
import { invalidArgType } from '../errors';
import type { PressureEvent, PressureLevel, PressureSource } from '../pressure';

export type { PressureEvent, PressureLevel, PressureSource } from '../pressure';
export const PRESSURE_LEVELS: readonly PressureLevel[] = ['moderate', 'critical'];

/** Listen to `source` (if any) with `handle`; returns how to stop. Validates the shape. */
export function listenToPressure(
  name: string,
  source: unknown,
  handle: (level: PressureLevel) => void,
): (() => void) | undefined {
  if (source === undefined) return undefined;
  const s = source as PressureSource;
  if (typeof s !== 'object' || s === null || typeof s.on !== 'function' || typeof s.off !== 'function') {
    throw invalidArgType(name, 'an object with on() and off() (a PressureSource)', source);
  }
  const listener = (e: PressureEvent) => {
    // A listener must not throw into the emitter: unknown levels are ignored.
    if (e !== null && typeof e === 'object' && (e.level === 'moderate' || e.level === 'critical')) handle(e.level);
  };
  s.on('pressure', listener);
  return () => {
    s.off('pressure', listener);
  };
}
