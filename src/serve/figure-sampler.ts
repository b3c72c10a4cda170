/**
 * Feeds the live figures what the gateway does not see: each isolated app's memory, as its last
 * heartbeat reported it, every `intervalMs` (and at once when an app's figures are asked for);
 * and frees the rings of apps gone quiet.
 */
import type { AppFigureSource } from '../admin/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AppFigures } from './app-figures.js';

export interface FigureSamplerOptions {
  readonly figures: AppFigures;
  readonly runtime: Pick<Runtime, 'names' | 'isolation'>;
  /** @default 10000 */
  readonly intervalMs?: number;
}

export interface FigureSampler {
  /** What the admin API reads: an app's series carries its memory of this moment. */
  readonly source: AppFigureSource;
  stop(): void;
}

/** Samples now and then every `intervalMs` until stopped. */
export function startFigureSampler(options: FigureSamplerOptions): FigureSampler {
  const { figures, runtime } = options;
  const sampleOne = (name: string): void => {
    const mb = runtime.isolation(name)?.memoryMb;
    if (mb !== undefined) figures.memory(name, mb);
  };
  const sample = (): void => {
    for (const name of runtime.names()) sampleOne(name);
    figures.sweep();
  };
  sample();
  const timer = setInterval(sample, options.intervalMs ?? 10_000);
  timer.unref();
  return {
    source: {
      series(app) {
        sampleOne(app);
        return figures.series(app);
      },
      summary: (apps) => figures.summary(apps),
    },
    stop: () => clearInterval(timer),
  };
}
