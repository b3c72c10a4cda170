/**
 * Feeds the live figures what the gateway does not see: each isolated app's memory, as its last
 * heartbeat reported it, every `intervalMs` (and at once when an app's figures are asked for);
 * frees the rings of apps gone quiet, and forgets a removed app's at once (as its log lines go).
 */
import type { EventEmitter } from 'node:events';
import type { AdminEventMap, AppFigureSource } from '../admin/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { StatusEvent } from '../runtime/view.js';
import type { AppFigures } from './app-figures.js';

export interface FigureSamplerOptions {
  readonly figures: AppFigures;
  readonly runtime: Pick<Runtime, 'names' | 'isolation'>;
  /** @default 10000 */
  readonly intervalMs?: number;
  /** Status events: an `orphaned` app's figures are dropped. */
  readonly events?: EventEmitter<AdminEventMap>;
}

export interface FigureSampler {
  /** What the admin API reads: an app's raw slots carry its memory of this moment. */
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
  const onStatus = (event: StatusEvent): void => {
    if (event.status === 'orphaned') figures.drop(event.app);
  };
  options.events?.on('status', onStatus);
  return {
    source: {
      raw(app) {
        sampleOne(app);
        return figures.raw(app);
      },
      rawSummary: (apps) => figures.rawSummary(apps),
      seriesOf: (raw) => figures.seriesOf(raw),
      summaryOf: (raw) => figures.summaryOf(raw),
    },
    stop: () => {
      clearInterval(timer);
      options.events?.off('status', onStatus);
    },
  };
}
