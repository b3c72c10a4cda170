/**
 * Feeds the live figures what the gateway does not see: each isolated app's memory, as its last
 * heartbeat reported it, every `intervalMs`; and frees the rings of apps gone quiet.
 */
import type { Runtime } from '../runtime/runtime.js';
import type { AppFigures } from './app-figures.js';

export interface FigureSamplerOptions {
  readonly figures: AppFigures;
  readonly runtime: Pick<Runtime, 'names' | 'isolation'>;
  /** @default 10000 (an isolated app's heartbeat comes about this often) */
  readonly intervalMs?: number;
}

/** Samples now and then every `intervalMs`; returns the function that stops it. */
export function startFigureSampler(options: FigureSamplerOptions): () => void {
  const { figures, runtime } = options;
  const sample = (): void => {
    for (const name of runtime.names()) {
      const mb = runtime.isolation(name)?.memoryMb;
      if (mb !== undefined) figures.memory(name, mb);
    }
    figures.sweep();
  };
  sample();
  const timer = setInterval(sample, options.intervalMs ?? 10_000);
  timer.unref();
  return () => clearInterval(timer);
}
